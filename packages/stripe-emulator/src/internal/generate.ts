/**
 * Deterministic generation of an account's objects from a seed. Sizes scale linearly with `scale`
 * (see {@link plannedCounts}); `created` times are spread over three years before `epoch`, with about
 * one object in ten sharing its second with the previous object of its type.
 */
import type { Account, StripeObject } from "../Store.js"
import {
  creditNoteLinesUrl,
  embeddedList,
  invoiceDefaults,
  invoiceLinesUrl,
  make,
  subscriptionDefaults,
  subscriptionItemsUrl
} from "./objects.js"
import type { Rng } from "./prng.js"

const YEAR = 365 * 24 * 3600
const DAY = 24 * 3600

/** Customers and base catalog sizes for a scale; everything else derives from them. */
export const plannedCounts = (scale: number) => ({
  customers: Math.max(3, Math.round(400 * scale)),
  products: Math.max(6, Math.round(20 * scale)),
  coupons: Math.max(3, Math.round(10 * scale)),
  taxRates: 5,
  payouts: Math.max(3, Math.round(10 * scale)),
  transfers: Math.max(2, Math.round(5 * scale))
})

const FIRST = ["Jenny", "Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"]
const LAST = [
  "Rosen",
  "Lovelace",
  "Hopper",
  "Turing",
  "Torvalds",
  "Liskov",
  "Thompson",
  "Hamilton",
  "Ritchie",
  "Allen"
]

export interface GenerateOptions {
  readonly rng: Rng
  readonly account: Account
  readonly scale: number
  /** Unix seconds: every generated `created` is before it. */
  readonly epoch: number
  /** Connected account ids (platform only: transfers go to them). */
  readonly destinations: ReadonlyArray<string>
}

export const generateAccount = (o: GenerateOptions): void => {
  const { rng, account, epoch } = o
  const counts = plannedCounts(o.scale)
  const out = new Map<string, Array<StripeObject>>()
  const add = (obj: StripeObject) => {
    let a = out.get(obj.object)
    if (a === undefined) {
      a = []
      out.set(obj.object, a)
    }
    a.push(obj)
    return obj
  }
  // `created` generator: uniform in [from, to], but ~10% reuse the previous value of the same type.
  const lastCreated = new Map<string, number>()
  // Never after `epoch`: an account has no history in the future (a backfill rightly stops at now).
  const at = (type: string, fromWanted: number, toWanted = epoch - 60): number => {
    const to = Math.min(toWanted, epoch - 1)
    const from = Math.min(fromWanted, to)
    const prev = lastCreated.get(type)
    const t =
      prev !== undefined && prev >= from && prev <= to && rng.chance(0.1)
        ? prev
        : rng.int(from, Math.max(from, to))
    lastCreated.set(type, t)
    return t
  }
  const start = epoch - 3 * YEAR

  // Catalog
  const taxRates: Array<StripeObject> = []
  for (let i = 0; i < counts.taxRates; i++) {
    taxRates.push(
      add(
        make("tax_rate", {
          id: rng.id("txr"),
          created: at("tax_rate", start, start + 30 * DAY),
          percentage: [19, 20, 7.25, 8.875, 10][i % 5],
          display_name: i % 2 === 0 ? "VAT" : "Sales tax",
          flat_amount: null
        })
      )
    )
  }
  const products: Array<StripeObject> = []
  const recurring: Array<StripeObject> = []
  const plansById = new Map<string, StripeObject>()
  const oneTime: Array<StripeObject> = []
  for (let i = 0; i < counts.products; i++) {
    const created = at("product", start, epoch - 400 * DAY)
    const id = rng.id("prod")
    const unit = rng.int(1, 200) * 100
    const interval = rng.chance(0.8) ? "month" : "year"
    const rp = add(
      make("price", {
        id: rng.id("price"),
        created: created + rng.int(0, 60),
        product: id,
        unit_amount: unit,
        unit_amount_decimal: String(unit),
        type: "recurring",
        recurring: {
          interval,
          interval_count: 1,
          meter: null,
          trial_period_days: null,
          usage_type: "licensed"
        },
        transform_quantity: null,
        custom_unit_amount: null
      })
    )
    const op = add(
      make("price", {
        id: rng.id("price"),
        created: created + rng.int(0, 60),
        product: id,
        unit_amount: unit * 3,
        unit_amount_decimal: String(unit * 3),
        type: "one_time",
        recurring: null,
        transform_quantity: null,
        custom_unit_amount: null
      })
    )
    const plan = add(
      make("plan", {
        id: rp.id,
        created: rp.created,
        product: id,
        amount: unit,
        amount_decimal: String(unit),
        interval,
        transform_usage: null
      })
    )
    plansById.set(rp.id, plan)
    recurring.push(rp)
    oneTime.push(op)
    products.push(
      add(
        make("product", {
          id,
          created,
          updated: created,
          name: `Product ${i + 1}`,
          description: null,
          default_price: rp.id,
          package_dimensions: null
        })
      )
    )
  }
  // A product without prices (deletable, as Stripe refuses to delete a product with prices).
  add(
    make("product", {
      id: rng.id("prod"),
      created: at("product", start, epoch - DAY),
      updated: epoch - DAY,
      name: "Archived gadget",
      default_price: null,
      package_dimensions: null,
      active: false
    })
  )
  const coupons: Array<StripeObject> = []
  for (let i = 0; i < counts.coupons; i++) {
    const pct = rng.chance(0.7)
    const created = at("coupon", start, epoch - DAY)
    const c = add(
      make("coupon", {
        id: rng.chars(8),
        created,
        percent_off: pct ? rng.pick([5, 10, 15, 20, 25, 50]) : null,
        amount_off: pct ? null : rng.int(1, 50) * 100,
        currency: pct ? null : "usd",
        duration: rng.pick(["once", "repeating", "forever"]),
        duration_in_months: null,
        redeem_by: null,
        name: `Coupon ${i + 1}`
      })
    )
    coupons.push(c)
    add(
      make("promotion_code", {
        id: rng.id("promo"),
        created: created + rng.int(0, DAY),
        code: `CODE${i + 1}${rng.chars(4).toUpperCase()}`,
        promotion: { coupon: c.id, type: "coupon" },
        active: true,
        expires_at: null
      })
    )
  }

  // Customers and what hangs off them
  let invoiceNumber = 0
  const charges: Array<StripeObject> = []
  const addCharge = (
    customer: string,
    created: number,
    amount: number,
    pm: string | null
  ): { pi: StripeObject; ch: StripeObject } => {
    const chId = rng.id("ch")
    const piId = rng.id("pi")
    const txn = add(
      make("balance_transaction", {
        id: rng.id("txn"),
        created,
        amount,
        fee: Math.round(amount * 0.029) + 30,
        net: amount - Math.round(amount * 0.029) - 30,
        source: chId,
        type: "charge",
        reporting_category: "charge",
        available_on: created + 2 * DAY,
        description: null
      })
    )
    const ch = add(
      make("charge", {
        id: chId,
        created,
        amount,
        amount_captured: amount,
        captured: true,
        customer,
        payment_intent: piId,
        payment_method: pm,
        balance_transaction: txn.id,
        description: null,
        receipt_url: null,
        refunds: undefined
      })
    )
    charges.push(ch)
    const pi = add(
      make("payment_intent", {
        id: piId,
        created,
        amount,
        amount_received: amount,
        amount_capturable: 0,
        customer,
        latest_charge: chId,
        payment_method: pm,
        status: "succeeded",
        client_secret: `${piId}_secret_${rng.chars(25)}`,
        description: null,
        last_payment_error: null,
        next_action: null,
        processing: null
      })
    )
    return { pi, ch }
  }

  let bigInvoiceDone = false
  let twelveItemsDone = false
  let bigCheckoutDone = false
  let bigCreditNoteDone = false
  for (let i = 0; i < counts.customers; i++) {
    const created = at("customer", start, epoch - 2 * DAY)
    const id = rng.id("cus")
    const name = `${rng.pick(FIRST)} ${rng.pick(LAST)}`
    const email = `${name.toLowerCase().replace(" ", ".")}.${i}@example.com`
    const pms: Array<string> = []
    const nPm = rng.chance(0.2) ? 2 : rng.chance(0.9) ? 1 : 0
    for (let k = 0; k < nPm; k++) {
      const pm = add(
        make("payment_method", {
          id: rng.id("pm"),
          created: at("payment_method", created, created + 30 * DAY),
          customer: id,
          billing_details: {
            address: { city: null, country: "US", line1: null, line2: null, postal_code: null, state: null },
            email,
            name,
            phone: null,
            tax_id: null
          }
        })
      )
      pms.push(pm.id)
    }
    add(
      make("customer", {
        id,
        created,
        name,
        email,
        description: null,
        invoice_prefix: rng.chars(8).toUpperCase(),
        invoice_settings: {
          custom_fields: null,
          default_payment_method: pms[0] ?? null,
          footer: null,
          rendering_options: null
        },
        shipping: null,
        metadata: rng.chance(0.3) ? { tier: rng.pick(["gold", "silver", "bronze"]) } : {}
      })
    )
    if (rng.chance(0.2)) {
      add(
        make("setup_intent", {
          id: rng.id("seti"),
          created: at("setup_intent", created, created + 30 * DAY),
          customer: id,
          payment_method: pms[0] ?? null,
          status: pms[0] ? "succeeded" : "requires_payment_method",
          client_secret: `seti_${rng.chars(24)}_secret_${rng.chars(25)}`,
          last_setup_error: null,
          next_action: null
        })
      )
    }
    if (rng.chance(0.1)) {
      add(
        make("tax_id", {
          id: rng.id("txi"),
          created: at("tax_id", created, created + 60 * DAY),
          customer: id,
          owner: { customer: id, customer_account: null, type: "customer" },
          value: `DE${rng.int(100000000, 999999999)}`
        })
      )
    }

    const makeInvoice = (
      invCreated: number,
      lineSpecs: ReadonlyArray<{
        price: StripeObject
        quantity: number
        subItem?: string
        invoiceItem?: string
      }>,
      sub: StripeObject | null,
      status: string
    ): StripeObject => {
      const invId = rng.id("in")
      const lines = lineSpecs.map((l) => {
        const amount = (l.price.unit_amount as number) * l.quantity
        return make("line_item", {
          id: rng.id("il"),
          invoice: invId,
          amount,
          subtotal: amount,
          currency: "usd",
          description: `${l.quantity} × Product (at $${((l.price.unit_amount as number) / 100).toFixed(2)})`,
          period: { start: invCreated, end: sub ? invCreated + 30 * DAY : invCreated },
          quantity: l.quantity,
          subscription: sub?.id ?? null,
          parent:
            sub && l.subItem
              ? {
                  type: "subscription_item_details",
                  invoice_item_details: null,
                  subscription_item_details: {
                    invoice_item: null,
                    proration: false,
                    proration_details: { credited_items: null },
                    subscription: sub.id,
                    subscription_item: l.subItem
                  }
                }
              : {
                  type: "invoice_item_details",
                  subscription_item_details: null,
                  invoice_item_details: {
                    invoice_item: l.invoiceItem ?? null,
                    proration: false,
                    proration_details: { credited_items: null },
                    subscription: null
                  }
                },
          pricing: {
            type: "price_details",
            price_details: { price: l.price.id, product: l.price.product },
            unit_amount_decimal: String(l.price.unit_amount)
          }
        })
      })
      const total = lines.reduce((s, l) => s + (l.amount as number), 0)
      const paid = status === "paid"
      const finalized = status !== "draft"
      account.children.set(invId, lines)
      if (paid && total > 0) {
        // paid within the hour, never after the end of the generated history
        addCharge(id, Math.min(invCreated + rng.int(0, 3600), epoch - 60), total, pms[0] ?? null)
      }
      return add(
        make("invoice", {
          ...invoiceDefaults,
          id: invId,
          created: invCreated,
          customer: id,
          customer_email: email,
          customer_name: name,
          status,
          billing_reason: sub ? "subscription_cycle" : "manual",
          collection_method: "charge_automatically",
          amount_due: total,
          amount_paid: paid ? total : 0,
          amount_remaining: paid ? 0 : total,
          subtotal: total,
          subtotal_excluding_tax: total,
          total,
          total_excluding_tax: total,
          number: finalized
            ? `${id.slice(4, 12).toUpperCase()}-${String(++invoiceNumber).padStart(4, "0")}`
            : null,
          effective_at: finalized ? invCreated : null,
          period_start: invCreated,
          period_end: invCreated,
          lines: embeddedList(lines, invoiceLinesUrl(invId)),
          parent: sub
            ? {
                type: "subscription_details",
                quote_details: null,
                subscription_details: { metadata: {}, subscription: sub.id }
              }
            : null,
          status_transitions: {
            finalized_at: finalized ? invCreated : null,
            marked_uncollectible_at: status === "uncollectible" ? invCreated + DAY : null,
            paid_at: paid ? invCreated + 60 : null,
            voided_at: status === "void" ? invCreated + DAY : null
          },
          hosted_invoice_url: null,
          invoice_pdf: null,
          metadata: {}
        })
      )
    }

    // Subscriptions
    const nSubs = rng.chance(0.4) ? 1 : rng.chance(0.1) ? 2 : 0
    for (let s = 0; s < nSubs; s++) {
      const subCreated = at("subscription", created, epoch - DAY)
      const subId = rng.id("sub")
      const nItems = !twelveItemsDone && i >= 2 ? 12 : rng.chance(0.2) ? rng.int(2, 3) : 1
      if (nItems === 12) twelveItemsDone = true
      const used = new Set<string>()
      const items: Array<StripeObject> = []
      for (let k = 0; k < nItems; k++) {
        let price = rng.pick(recurring)
        for (let tries = 0; used.has(price.id) && tries < 20; tries++) price = rng.pick(recurring)
        if (used.has(price.id)) continue
        used.add(price.id)
        items.push(
          make("subscription_item", {
            id: rng.id("si"),
            created: subCreated,
            subscription: subId,
            price,
            plan: plansById.get(price.id) ?? null,
            quantity: rng.chance(0.8) ? 1 : rng.int(2, 10),
            current_period_start: subCreated,
            current_period_end: subCreated + 30 * DAY,
            billing_thresholds: null
          })
        )
      }
      const canceled = rng.chance(0.2)
      const status = canceled
        ? "canceled"
        : rng.pick(["active", "active", "active", "active", "past_due", "trialing"])
      account.children.set(subId, items)
      let sub = make("subscription", {
        ...subscriptionDefaults,
        id: subId,
        created: subCreated,
        customer: id,
        status,
        start_date: subCreated,
        billing_cycle_anchor: subCreated,
        canceled_at: canceled ? subCreated + rng.int(DAY, 200 * DAY) : null,
        ended_at: canceled ? subCreated + rng.int(DAY, 200 * DAY) : null,
        default_payment_method: pms[0] ?? null,
        items: embeddedList(items, subscriptionItemsUrl(subId))
      })
      // Its invoices (each line one subscription item)
      const nInv = rng.int(1, 3)
      let latest: StripeObject | null = null
      for (let k = 0; k < nInv; k++) {
        const invCreated = Math.min(subCreated + k * 30 * DAY, epoch - 120)
        const invStatus =
          k < nInv - 1 ? "paid" : rng.pick(["paid", "paid", "paid", "open", "void", "uncollectible"])
        latest = makeInvoice(
          invCreated,
          items.map((it) => ({
            price: it.price as StripeObject,
            quantity: it.quantity as number,
            subItem: it.id
          })),
          sub,
          invStatus
        )
      }
      if (latest) sub = { ...sub, latest_invoice: latest.id }
      add(sub)
      if (rng.chance(0.1)) {
        add(
          make("subscription_schedule", {
            id: rng.id("sub_sched"),
            created: at("subscription_schedule", subCreated, epoch - DAY),
            customer: id,
            subscription: subId,
            status: canceled ? "released" : "active",
            canceled_at: null,
            completed_at: null,
            released_at: null,
            released_subscription: null,
            current_phase: { start_date: subCreated, end_date: subCreated + YEAR },
            phases: [
              {
                ...(make("subscription_schedule", { id: "" }).phases as Array<Record<string, unknown>>)[0],
                start_date: subCreated,
                end_date: subCreated + YEAR,
                items: items.map((it) => ({
                  billing_thresholds: null,
                  discounts: [],
                  metadata: {},
                  plan: (it.price as StripeObject).id,
                  price: (it.price as StripeObject).id,
                  quantity: it.quantity,
                  tax_rates: []
                }))
              }
            ]
          })
        )
      }
    }
    // One-off invoices from invoice items (some with more than 10 lines, one with exactly 25)
    if (rng.chance(0.5)) {
      const invCreated = at("invoice", created, epoch - 120)
      const nLines = !bigInvoiceDone && i >= 1 ? 25 : rng.chance(0.03) ? rng.int(11, 15) : rng.int(1, 3)
      if (nLines === 25) bigInvoiceDone = true
      const specs = []
      for (let k = 0; k < nLines; k++) {
        const price = rng.pick(oneTime)
        const ii = add(
          make("invoiceitem", {
            id: rng.id("ii"),
            created: invCreated,
            customer: id,
            amount: price.unit_amount,
            currency: "usd",
            description: `Item ${k + 1}`,
            period: { start: invCreated, end: invCreated },
            quantity: 1,
            invoice: null,
            parent: null,
            pricing: {
              type: "price_details",
              price_details: { price: price.id, product: price.product },
              unit_amount_decimal: String(price.unit_amount)
            },
            discounts: [],
            tax_rates: [],
            date: invCreated,
            proration: false,
            test_clock: null
          })
        )
        specs.push({ price, quantity: 1, invoiceItem: ii.id })
      }
      const status = rng.pick(["paid", "paid", "paid", "open", "draft"])
      const inv = makeInvoice(invCreated, specs, null, status)
      const list = out.get("invoiceitem")!
      for (let k = list.length - nLines; k < list.length; k++) list[k] = { ...list[k]!, invoice: inv.id }
      // Credit notes on some paid invoices
      if (status === "paid" && (rng.chance(0.06) || (!bigCreditNoteDone && nLines >= 12))) {
        const cnId = rng.id("cn")
        const invLines = account.children.get(inv.id)!
        const take = !bigCreditNoteDone && nLines >= 12 ? 12 : 1
        if (take === 12) bigCreditNoteDone = true
        const cnLines = invLines.slice(0, take).map((l) =>
          make("credit_note_line_item", {
            id: rng.id("cnli"),
            amount: l.amount,
            description: l.description,
            invoice_line_item: l.id,
            pretax_credit_amounts: [],
            quantity: 1,
            unit_amount: l.amount,
            unit_amount_decimal: String(l.amount)
          })
        )
        account.children.set(cnId, cnLines)
        const amount = cnLines.reduce((s, l) => s + (l.amount as number), 0)
        add(
          make("credit_note", {
            id: cnId,
            created: at("credit_note", inv.created!, epoch - 60),
            customer: id,
            invoice: inv.id,
            amount,
            subtotal: amount,
            subtotal_excluding_tax: amount,
            total: amount,
            total_excluding_tax: amount,
            lines: embeddedList(cnLines, creditNoteLinesUrl(cnId)),
            number: `${inv.number as string}-CN-01`,
            pdf: null,
            type: "post_payment",
            post_payment_amount: amount,
            pre_payment_amount: 0,
            pretax_credit_amounts: [],
            refunds: [],
            shipping_cost: null,
            voided_at: null,
            effective_at: null
          })
        )
      }
    }
    // Standalone payments
    if (rng.chance(0.3))
      addCharge(id, at("charge", created, epoch - 60), rng.int(5, 500) * 100, pms[0] ?? null)
    // Checkout sessions (line items paged by /v1/checkout/sessions/:id/line_items)
    if (rng.chance(0.25)) {
      const csId = `cs_test_${rng.chars(58)}`
      const csCreated = at("checkout.session", created, epoch - 60)
      const n = !bigCheckoutDone ? 12 : rng.int(1, 3)
      bigCheckoutDone = true
      const items = []
      for (let k = 0; k < n; k++) {
        const price = rng.pick(oneTime)
        const amount = price.unit_amount as number
        items.push(
          make("item", {
            id: rng.id("li"),
            price,
            quantity: 1,
            amount_subtotal: amount,
            amount_total: amount,
            description: `Product line ${k + 1}`,
            adjustable_quantity: null
          })
        )
      }
      account.children.set(csId, items)
      const total = items.reduce((s, l) => s + (l.amount_total as number), 0)
      const status = rng.pick(["complete", "complete", "expired", "open"])
      const paid = status === "complete" ? addCharge(id, csCreated + 30, total, pms[0] ?? null) : null
      add(
        make("checkout.session", {
          id: csId,
          created: csCreated,
          customer: id,
          customer_email: email,
          amount_subtotal: total,
          amount_total: total,
          currency: "usd",
          currency_conversion: null,
          expires_at: csCreated + DAY,
          status,
          payment_status: status === "complete" ? "paid" : "unpaid",
          payment_intent: paid?.pi.id ?? null,
          shipping_cost: null,
          total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
          url: status === "open" ? `https://checkout.stripe.com/c/pay/${csId}` : null,
          custom_text: {
            after_submit: null,
            shipping_address: null,
            submit: null,
            terms_of_service_acceptance: null
          }
        })
      )
    }
  }

  // Refunds, disputes, early fraud warnings and reviews on some charges
  for (const ch of charges) {
    const amount = ch.amount as number
    const base = ch.created!
    if (rng.chance(0.05)) {
      const reCreated = at("refund", base, epoch - 30)
      const reId = rng.id("re")
      const txn = add(
        make("balance_transaction", {
          id: rng.id("txn"),
          created: reCreated,
          amount: -amount,
          fee: 0,
          net: -amount,
          source: reId,
          type: "refund",
          reporting_category: "refund",
          available_on: reCreated,
          description: "REFUND FOR CHARGE"
        })
      )
      add(
        make("refund", {
          id: reId,
          created: reCreated,
          amount,
          charge: ch.id,
          payment_intent: ch.payment_intent,
          balance_transaction: txn.id,
          status: "succeeded"
        })
      )
      const list = out.get("charge")!
      const idx = list.indexOf(ch)
      list[idx] = { ...ch, refunded: true, amount_refunded: amount }
    } else if (rng.chance(0.015)) {
      const duCreated = at("dispute", base, epoch - 30)
      add(
        make("dispute", {
          id: rng.id("du"),
          created: duCreated,
          amount,
          charge: ch.id,
          payment_intent: ch.payment_intent,
          status: rng.pick(["needs_response", "under_review", "won", "lost"]),
          evidence_details: {
            due_by: duCreated + 14 * DAY,
            enhanced_eligibility: {},
            has_evidence: false,
            past_due: false,
            submission_count: 0
          }
        })
      )
      const list = out.get("charge")!
      const idx = list.indexOf(ch)
      list[idx] = { ...ch, disputed: true }
    } else if (rng.chance(0.01)) {
      const efwCreated = at("radar.early_fraud_warning", base, epoch - 30)
      add(
        make("radar.early_fraud_warning", {
          id: rng.id("issfr"),
          created: efwCreated,
          charge: ch.id,
          payment_intent: ch.payment_intent
        })
      )
      add(
        make("review", {
          id: rng.id("prv"),
          created: efwCreated,
          charge: ch.id,
          payment_intent: ch.payment_intent,
          open: rng.chance(0.5),
          reason: "rule"
        })
      )
    }
  }
  // Payouts and transfers
  for (let i = 0; i < counts.payouts; i++) {
    const created = at("payout", start, epoch - DAY)
    const amount = rng.int(100, 10000) * 100
    const poId = rng.id("po")
    const txn = add(
      make("balance_transaction", {
        id: rng.id("txn"),
        created,
        amount: -amount,
        fee: 0,
        net: -amount,
        source: poId,
        type: "payout",
        reporting_category: "payout",
        available_on: created,
        description: "STRIPE PAYOUT"
      })
    )
    add(
      make("payout", {
        id: poId,
        created,
        amount,
        arrival_date: created + 2 * DAY,
        balance_transaction: txn.id,
        status: "paid",
        trace_id: null
      })
    )
  }
  if (o.destinations.length > 0) {
    for (let i = 0; i < counts.transfers; i++) {
      const created = at("transfer", start, epoch - DAY)
      const amount = rng.int(10, 1000) * 100
      const trId = rng.id("tr")
      const txn = add(
        make("balance_transaction", {
          id: rng.id("txn"),
          created,
          amount: -amount,
          fee: 0,
          net: -amount,
          source: trId,
          type: "transfer",
          reporting_category: "transfer",
          available_on: created,
          description: null
        })
      )
      add(
        make("transfer", {
          id: trId,
          created,
          amount,
          destination: rng.pick(o.destinations),
          destination_payment: rng.id("py"),
          balance_transaction: txn.id,
          reversals: {
            object: "list",
            data: [],
            has_more: false,
            total_count: 0,
            url: `/v1/transfers/${trId}/reversals`
          }
        })
      )
    }
  }
  for (const [type, objects] of out) account.collection(type).load(objects)
}
