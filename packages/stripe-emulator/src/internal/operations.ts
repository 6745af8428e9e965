/**
 * Changes that follow Stripe's state machines, each recording the events Stripe records. Shared by
 * the API handlers and the change driver. Objects are replaced, never mutated.
 */
import { invalidRequest, resourceMissing, StripeApiError } from "../Router.js"
import type { Account, StripeObject } from "../Store.js"
import type { EmulatorCore } from "./core.js"
import { eventPrefix } from "./core.js"
import {
  embeddedList,
  invoiceDefaults,
  invoiceLinesUrl,
  make,
  subscriptionDefaults,
  subscriptionItemsUrl
} from "./objects.js"

export type Req = string | null

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

/** Stripe's `previous_attributes`: old values of changed top-level fields; nested objects only by changed keys. */
export const previousAttributes = (before: StripeObject, after: StripeObject): Record<string, unknown> => {
  const prev: Record<string, unknown> = {}
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  for (const k of keys) {
    const a = before[k]
    const b = after[k]
    if (a === b) continue
    if (isRecord(a) && isRecord(b) && a.object !== "list") {
      const sub: Record<string, unknown> = {}
      for (const kk of new Set([...Object.keys(a), ...Object.keys(b)]))
        if (JSON.stringify(a[kk]) !== JSON.stringify(b[kk])) sub[kk] = a[kk] ?? null
      if (Object.keys(sub).length > 0) prev[k] = sub
    } else if (JSON.stringify(a) !== JSON.stringify(b)) prev[k] = a ?? null
  }
  return prev
}

export const get = (account: Account, type: string, id: string): StripeObject => {
  const o = account.collection(type).get(id)
  if (o === undefined) throw resourceMissing(type, id)
  return o
}

export const create = (
  core: EmulatorCore,
  account: Account,
  o: StripeObject,
  req: Req,
  emit = true
): StripeObject => {
  account.collection(o.object).insert(o)
  if (emit) core.emit(account, `${eventPrefix(o.object)}.created`, o, undefined, req)
  return o
}

/** Replaces the object and records `<type>.updated` with `previous_attributes` (no event when nothing changed). */
export const update = (
  core: EmulatorCore,
  account: Account,
  before: StripeObject,
  changes: Record<string, unknown>,
  req: Req,
  eventType?: string
): StripeObject => {
  const after = { ...before, ...changes } as StripeObject
  const prev = previousAttributes(before, after)
  if (Object.keys(prev).length === 0) return before
  account.collection(before.object).replace(after)
  core.emit(account, eventType ?? `${eventPrefix(before.object)}.updated`, after, prev, req)
  return after
}

export const remove = (core: EmulatorCore, account: Account, o: StripeObject, req: Req, emit = true) => {
  account.collection(o.object).remove(o.id)
  account.deleted.set(o.id, o)
  if (emit) core.emit(account, `${eventPrefix(o.object)}.deleted`, o, undefined, req)
  return { id: o.id, object: o.object, deleted: true }
}

/** Metadata update with Stripe's rules: "" unsets a key, an empty `metadata` unsets all. */
export const mergeMetadata = (old: unknown, input: unknown): Record<string, string> => {
  if (input === "" || input === undefined) return input === "" ? {} : ((old ?? {}) as Record<string, string>)
  if (!isRecord(input)) throw invalidRequest("Invalid object", "metadata")
  const out: Record<string, string> = { ...((old ?? {}) as Record<string, string>) }
  for (const [k, v] of Object.entries(input)) {
    if (v === "" || v === null) delete out[k]
    else out[k] = String(v)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Customers

export const deleteCustomer = (core: EmulatorCore, account: Account, id: string, req: Req) => {
  const c = get(account, "customer", id)
  for (const s of account.collection("subscription").all())
    if (s.customer === id && s.status !== "canceled" && s.status !== "incomplete_expired")
      cancelSubscription(core, account, s.id, req)
  return remove(core, account, c, req)
}

// ---------------------------------------------------------------------------------------------
// Invoices and payments

/** A succeeded payment: payment intent, charge and balance transaction, with their events. */
export const charge = (
  core: EmulatorCore,
  account: Account,
  customer: string | null,
  amount: number,
  description: string | null,
  req: Req
): { pi: StripeObject; ch: StripeObject } => {
  const now = core.now()
  const rng = core.rng
  const piId = rng.id("pi")
  const chId = rng.id("ch")
  const pm = customer
    ? (((account.find(customer)?.invoice_settings as Record<string, unknown> | undefined)
        ?.default_payment_method as string | null | undefined) ?? null)
    : null
  const piBase = make("payment_intent", {
    id: piId,
    created: now,
    amount,
    amount_received: 0,
    amount_capturable: 0,
    customer,
    description,
    latest_charge: null,
    payment_method: pm,
    status: "requires_confirmation",
    client_secret: `${piId}_secret_${rng.chars(25)}`,
    last_payment_error: null,
    next_action: null,
    processing: null
  })
  create(core, account, piBase, req)
  const fee = Math.round(amount * 0.029) + 30
  const txn = make("balance_transaction", {
    id: rng.id("txn"),
    created: now,
    amount,
    fee,
    net: amount - fee,
    source: chId,
    type: "charge",
    reporting_category: "charge",
    available_on: now + 2 * 86400,
    description
  })
  account.collection("balance_transaction").insert(txn)
  const ch = make("charge", {
    id: chId,
    created: now,
    amount,
    amount_captured: amount,
    captured: true,
    customer,
    description,
    payment_intent: piId,
    payment_method: pm,
    balance_transaction: txn.id,
    receipt_url: null,
    refunds: undefined
  })
  account.collection("charge").insert(ch)
  core.emit(account, "charge.succeeded", ch, undefined, req)
  const pi = update(
    core,
    account,
    piBase,
    { status: "succeeded", amount_received: amount, latest_charge: chId },
    req,
    "payment_intent.succeeded"
  )
  return { pi, ch }
}

const subscriptionOf = (inv: StripeObject): string | null => {
  const parent = inv.parent as Record<string, unknown> | null
  const d = parent?.subscription_details as Record<string, unknown> | null | undefined
  return typeof d?.subscription === "string" ? d.subscription : null
}

export const createInvoice = (
  core: EmulatorCore,
  account: Account,
  customerId: string,
  fields: Record<string, unknown>,
  req: Req,
  sub: StripeObject | null = null,
  lineSpecs: ReadonlyArray<{ price: StripeObject; quantity: number; subItem: string }> = []
): StripeObject => {
  const cus = account.find(customerId, "customer")
  if (cus === undefined) throw resourceMissing("customer", customerId, "customer", 400)
  const now = core.now()
  const id = core.newId("in")
  const lines: Array<StripeObject> = []
  const lineOf = (
    amount: number,
    description: unknown,
    price: StripeObject | null,
    parent: unknown,
    quantity: number
  ) =>
    make("line_item", {
      id: core.newId("il"),
      invoice: id,
      amount,
      subtotal: amount,
      currency: "usd",
      description,
      period: { start: now, end: sub ? now + 30 * 86400 : now },
      quantity,
      subscription: sub?.id ?? null,
      parent,
      pricing: price
        ? {
            type: "price_details",
            price_details: { price: price.id, product: price.product },
            unit_amount_decimal: String(price.unit_amount)
          }
        : null
    })
  for (const l of lineSpecs)
    lines.push(
      lineOf(
        (l.price.unit_amount as number) * l.quantity,
        `${l.quantity} × ${String(l.price.product)}`,
        l.price,
        {
          type: "subscription_item_details",
          invoice_item_details: null,
          subscription_item_details: {
            invoice_item: null,
            proration: false,
            proration_details: { credited_items: null },
            subscription: sub?.id ?? null,
            subscription_item: l.subItem
          }
        },
        l.quantity
      )
    )
  if (sub === null) {
    // Pending invoice items of the customer become the lines
    for (const ii of account.collection("invoiceitem").all().reverse()) {
      if (ii.customer !== customerId || ii.invoice !== null) continue
      const price =
        typeof (ii.pricing as Record<string, Record<string, unknown>> | null)?.price_details?.price ===
        "string"
          ? (account.find(
              (ii.pricing as Record<string, Record<string, string>>).price_details!.price!,
              "price"
            ) ?? null)
          : null
      lines.push(
        lineOf(
          ii.amount as number,
          ii.description,
          price,
          {
            type: "invoice_item_details",
            subscription_item_details: null,
            invoice_item_details: {
              invoice_item: ii.id,
              proration: false,
              proration_details: { credited_items: null },
              subscription: null
            }
          },
          (ii.quantity as number) ?? 1
        )
      )
      account.collection("invoiceitem").replace({ ...ii, invoice: id })
    }
  }
  account.children.set(id, lines)
  const total = lines.reduce((s, l) => s + (l.amount as number), 0)
  const inv = make("invoice", {
    ...invoiceDefaults,
    id,
    created: now,
    customer: customerId,
    customer_email: cus.email ?? null,
    customer_name: cus.name ?? null,
    status: "draft",
    billing_reason: sub ? "subscription_create" : "manual",
    amount_due: total,
    amount_paid: 0,
    amount_remaining: total,
    subtotal: total,
    subtotal_excluding_tax: total,
    total,
    total_excluding_tax: total,
    number: null,
    effective_at: null,
    period_start: now,
    period_end: now,
    lines: embeddedList(lines, invoiceLinesUrl(id)),
    parent: sub
      ? {
          type: "subscription_details",
          quote_details: null,
          subscription_details: { metadata: {}, subscription: sub.id }
        }
      : null,
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    hosted_invoice_url: null,
    invoice_pdf: null,
    metadata: {},
    ...fields
  })
  return create(core, account, inv, req)
}

export const finalizeInvoice = (core: EmulatorCore, account: Account, id: string, req: Req): StripeObject => {
  const inv = get(account, "invoice", id)
  if (inv.status !== "draft")
    throw invalidRequest(
      `This invoice is already finalized, you can't re-finalize a non-draft invoice.`,
      undefined,
      "invoice_not_editable"
    )
  const now = core.now()
  const seq = account.collection("invoice").size
  const after = update(
    core,
    account,
    inv,
    {
      status: "open",
      number: `${inv.id.slice(3, 11).toUpperCase()}-${String(seq).padStart(4, "0")}`,
      effective_at: now,
      status_transitions: { ...(inv.status_transitions as object), finalized_at: now }
    },
    req
  )
  core.emit(account, "invoice.finalized", after, undefined, req)
  return after
}

/** Pays an open invoice: payment intent, charge, invoice and its subscription change in the same second. */
export const payInvoice = (core: EmulatorCore, account: Account, id: string, req: Req): StripeObject => {
  let inv = get(account, "invoice", id)
  if (inv.status === "draft") inv = finalizeInvoice(core, account, id, req)
  if (inv.status !== "open")
    throw invalidRequest(`Invoice is already ${String(inv.status)}`, undefined, "invoice_not_open")
  const amount = inv.amount_remaining as number
  if (amount > 0) charge(core, account, inv.customer as string, amount, `Payment for Invoice`, req)
  const now = core.now()
  const after = update(
    core,
    account,
    inv,
    {
      status: "paid",
      amount_paid: (inv.amount_paid as number) + amount,
      amount_remaining: 0,
      attempted: true,
      attempt_count: (inv.attempt_count as number) + 1,
      status_transitions: { ...(inv.status_transitions as object), paid_at: now }
    },
    req
  )
  core.emit(account, "invoice.paid", after, undefined, req)
  core.emit(account, "invoice.payment_succeeded", after, undefined, req)
  const subId = subscriptionOf(after)
  const sub = subId ? account.collection("subscription").get(subId) : undefined
  if (sub !== undefined && sub.status !== "canceled")
    update(core, account, sub, { status: "active", latest_invoice: after.id }, req)
  return after
}

export const voidInvoice = (core: EmulatorCore, account: Account, id: string, req: Req): StripeObject => {
  const inv = get(account, "invoice", id)
  if (inv.status !== "open")
    throw invalidRequest("You can only void open invoices.", undefined, "invoice_not_open")
  const after = update(
    core,
    account,
    inv,
    {
      status: "void",
      amount_remaining: 0,
      status_transitions: { ...(inv.status_transitions as object), voided_at: core.now() }
    },
    req
  )
  core.emit(account, "invoice.voided", after, undefined, req)
  return after
}

export const deleteInvoice = (core: EmulatorCore, account: Account, id: string, req: Req) => {
  const inv = get(account, "invoice", id)
  if (inv.status !== "draft")
    throw invalidRequest("You can only delete draft invoices.", undefined, "invoice_not_editable")
  for (const ii of account.collection("invoiceitem").all())
    if (ii.invoice === id) account.collection("invoiceitem").replace({ ...ii, invoice: null })
  return remove(core, account, inv, req)
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

export const createSubscription = (
  core: EmulatorCore,
  account: Account,
  customerId: string,
  items: ReadonlyArray<{ price: string; quantity: number }>,
  fields: Record<string, unknown>,
  req: Req
): StripeObject => {
  const cus = account.find(customerId, "customer")
  if (cus === undefined) throw resourceMissing("customer", customerId, "customer", 400)
  if (items.length === 0) throw invalidRequest("Missing required param: items.", "items")
  const now = core.now()
  const id = core.newId("sub")
  const subItems = items.map((it, i) => {
    const price = account.find(it.price, "price")
    if (price === undefined) throw resourceMissing("price", it.price, `items[${i}][price]`, 400)
    if (price.type !== "recurring")
      throw invalidRequest(
        `The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`,
        `items[${i}][price]`
      )
    return make("subscription_item", {
      id: core.newId("si"),
      created: now,
      subscription: id,
      price,
      plan: account.find(price.id, "plan") ?? null,
      quantity: it.quantity,
      current_period_start: now,
      current_period_end: now + 30 * 86400,
      billing_thresholds: null
    })
  })
  account.children.set(id, subItems)
  const sub = make("subscription", {
    ...subscriptionDefaults,
    id,
    created: now,
    customer: customerId,
    status: "active",
    start_date: now,
    billing_cycle_anchor: now,
    default_payment_method:
      ((cus.invoice_settings as Record<string, unknown> | null)?.default_payment_method as string | null) ??
      null,
    items: embeddedList(subItems, subscriptionItemsUrl(id)),
    metadata: {},
    ...fields
  })
  const created = create(core, account, sub, req)
  const inv = createInvoice(
    core,
    account,
    customerId,
    {},
    req,
    created,
    subItems.map((si) => ({
      price: si.price as StripeObject,
      quantity: si.quantity as number,
      subItem: si.id
    }))
  )
  payInvoice(core, account, inv.id, req)
  return account.collection("subscription").get(id)!
}

/** Cancels now: the subscription stays, with status `canceled`; records `customer.subscription.deleted`. */
export const cancelSubscription = (
  core: EmulatorCore,
  account: Account,
  id: string,
  req: Req
): StripeObject => {
  const sub = get(account, "subscription", id)
  if (sub.status === "canceled")
    throw invalidRequest(
      `A canceled subscription can only update its cancellation_details and metadata.`,
      undefined,
      "resource_missing"
    )
  const now = core.now()
  const after = {
    ...sub,
    status: "canceled",
    canceled_at: now,
    ended_at: now,
    cancellation_details: { comment: null, feedback: null, reason: "cancellation_requested" }
  } as StripeObject
  account.collection("subscription").replace(after)
  core.emit(account, "customer.subscription.deleted", after, undefined, req)
  return after
}

// ---------------------------------------------------------------------------------------------
// Refunds and disputes

export const refundCharge = (
  core: EmulatorCore,
  account: Account,
  chargeId: string,
  amount: number | undefined,
  req: Req
): StripeObject => {
  const ch = account.collection("charge").get(chargeId)
  if (ch === undefined) throw resourceMissing("charge", chargeId, "charge", 400)
  const left = (ch.amount as number) - (ch.amount_refunded as number)
  const amt = amount ?? left
  if (left <= 0)
    throw invalidRequest(
      `Charge ${chargeId} has already been refunded.`,
      undefined,
      "charge_already_refunded"
    )
  if (amt > left || amt <= 0)
    throw invalidRequest(
      `Refund amount ($${(amt / 100).toFixed(2)}) is greater than unrefunded amount on charge ($${(left / 100).toFixed(2)})`,
      "amount",
      "amount_too_large"
    )
  const now = core.now()
  const reId = core.newId("re")
  const txn = make("balance_transaction", {
    id: core.newId("txn"),
    created: now,
    amount: -amt,
    fee: 0,
    net: -amt,
    source: reId,
    type: "refund",
    reporting_category: "refund",
    available_on: now,
    description: "REFUND FOR CHARGE"
  })
  account.collection("balance_transaction").insert(txn)
  const re = create(
    core,
    account,
    make("refund", {
      id: reId,
      created: now,
      amount: amt,
      charge: chargeId,
      payment_intent: ch.payment_intent,
      balance_transaction: txn.id,
      status: "succeeded"
    }),
    req
  )
  const refunded = (ch.amount_refunded as number) + amt
  update(
    core,
    account,
    ch,
    { amount_refunded: refunded, refunded: refunded >= (ch.amount as number) },
    req,
    "charge.refunded"
  )
  return re
}

export const disputeCharge = (
  core: EmulatorCore,
  account: Account,
  chargeId: string,
  req: Req
): StripeObject => {
  const ch = get(account, "charge", chargeId)
  if (ch.disputed === true) throw invalidRequest(`Charge ${chargeId} is already disputed.`)
  const now = core.now()
  const du = make("dispute", {
    id: core.newId("du"),
    created: now,
    amount: ch.amount,
    charge: ch.id,
    payment_intent: ch.payment_intent,
    status: "needs_response",
    evidence_details: {
      due_by: now + 14 * 86400,
      enhanced_eligibility: {},
      has_evidence: false,
      past_due: false,
      submission_count: 0
    }
  })
  account.collection("dispute").insert(du)
  core.emit(account, "charge.dispute.created", du, undefined, req)
  update(core, account, ch, { disputed: true }, req)
  return du
}

export const assertDeletableProduct = (account: Account, id: string): void => {
  for (const p of account.collection("price").items)
    if (p.product === id)
      throw invalidRequest(
        "This product cannot be deleted because it has one or more user-created prices.",
        undefined,
        "product_has_prices"
      )
}

export { StripeApiError }
