/**
 * Random changes that follow Stripe's state machines, for load and correctness tests: create, update
 * and delete customers; several updates of one customer within one second; products and prices;
 * invoices created, finalized, paid (payment intent, charge, invoice and subscription change in the
 * same second), voided or deleted as drafts; subscriptions created and canceled; refunds and disputes.
 * Every change records the events Stripe records, so they reach `/v1/events` and webhooks.
 */
import type { EmulatorHandle, EmulatorState } from "./Emulator.js"
import * as Ops from "./internal/operations.js"
import { Rng } from "./internal/prng.js"
import type { Account, StripeObject } from "./Store.js"

export type ChangeKind =
  | "customer.create"
  | "customer.update"
  | "customer.burst"
  | "customer.delete"
  | "product.create"
  | "product.update"
  | "product.delete"
  | "price.create"
  | "invoice.create"
  | "invoice.pay"
  | "invoice.void"
  | "invoice.delete_draft"
  | "subscription.create"
  | "subscription.update"
  | "subscription.cancel"
  | "charge.refund"
  | "charge.dispute"

export const defaultWeights: Readonly<Record<ChangeKind, number>> = {
  "customer.create": 10,
  "customer.update": 15,
  "customer.burst": 5,
  "customer.delete": 3,
  "product.create": 3,
  "product.update": 4,
  "product.delete": 2,
  "price.create": 3,
  "invoice.create": 8,
  "invoice.pay": 10,
  "invoice.void": 3,
  "invoice.delete_draft": 3,
  "subscription.create": 6,
  "subscription.update": 6,
  "subscription.cancel": 4,
  "charge.refund": 4,
  "charge.dispute": 2
}

export interface ChangeDriverOptions {
  /** Seed of the driver's choices (default "changes"). */
  readonly seed?: string | number
  /** Changes per second for {@link start} (default 10). */
  readonly ratePerSecond?: number
  /** Relative weights by kind; kinds absent or 0 never happen. Default {@link defaultWeights}. */
  readonly weights?: Partial<Record<ChangeKind, number>>
  /** Accounts to change (default: the platform only); "all" includes connected accounts. */
  readonly accounts?: "platform" | "all" | ReadonlyArray<string>
}

export interface AppliedChange {
  readonly kind: ChangeKind
  readonly account: string
  readonly objectId: string
}

export interface Driver {
  /** Applies one change now; undefined when the chosen kind had nothing to act on. */
  step(): AppliedChange | undefined
  /** Applies `n` changes (attempts) now. */
  steps(n: number): Array<AppliedChange>
  readonly applied: ReadonlyArray<AppliedChange>
}

export interface RunningDriver extends Driver {
  stop(): void
}

const stateOf = (e: EmulatorHandle | EmulatorState): EmulatorState => ("state" in e ? e.state : e)

export const make = (emulator: EmulatorHandle | EmulatorState, options: ChangeDriverOptions = {}): Driver => {
  const core = stateOf(emulator)
  const rng = new Rng(`driver:${String(options.seed ?? "changes")}`)
  const weights = { ...defaultWeights, ...options.weights }
  const kinds = (Object.keys(weights) as Array<ChangeKind>).filter((k) => (weights[k] ?? 0) > 0)
  const total = kinds.reduce((s, k) => s + (weights[k] ?? 0), 0)
  const accounts = (): Array<Account> => {
    const a = options.accounts ?? "platform"
    if (a === "platform") return [core.platform]
    if (a === "all") return [...core.accounts.values()]
    return a.map((id) => core.account(id)).filter((x): x is Account => x !== undefined)
  }
  const applied: Array<AppliedChange> = []
  /** A random live object of a type matching a predicate (samples, then scans from a random point). */
  const pick = (
    account: Account,
    type: string,
    pred: (o: StripeObject) => boolean = () => true
  ): StripeObject | undefined => {
    const items = account.collection(type).items
    if (items.length === 0) return undefined
    for (let i = 0; i < 8; i++) {
      const o = items[rng.int(0, items.length - 1)]!
      if (pred(o)) return o
    }
    const start = rng.int(0, items.length - 1)
    for (let i = 0; i < items.length; i++) {
      const o = items[(start + i) % items.length]!
      if (pred(o)) return o
    }
    return undefined
  }
  const tag = () => ({ driver: rng.chars(6) })
  const apply = (kind: ChangeKind, a: Account): string | undefined => {
    switch (kind) {
      case "customer.create": {
        const id = core.newId("cus")
        Ops.create(
          core,
          a,
          {
            ...(a.collection("customer").items[0] ?? {}),
            id,
            object: "customer",
            created: core.now(),
            name: `Driver ${rng.chars(5)}`,
            email: `driver.${rng.chars(6).toLowerCase()}@example.com`,
            metadata: {},
            invoice_settings: {
              custom_fields: null,
              default_payment_method: null,
              footer: null,
              rendering_options: null
            }
          } as StripeObject,
          null
        )
        return id
      }
      case "customer.update": {
        const c = pick(a, "customer")
        if (!c) return undefined
        Ops.update(core, a, c, { metadata: { ...(c.metadata as object), ...tag() } }, null)
        return c.id
      }
      case "customer.burst": {
        let c = pick(a, "customer")
        if (!c) return undefined
        const n = rng.int(2, 4)
        for (let i = 0; i < n; i++) {
          c = Ops.update(
            core,
            a,
            c,
            { metadata: { ...(c.metadata as object), ...tag(), step: String(i) } },
            null
          )
          if (i === n - 1) c = Ops.update(core, a, c, { description: `burst ${rng.chars(4)}` }, null)
        }
        return c.id
      }
      case "customer.delete": {
        const c = pick(a, "customer")
        if (!c) return undefined
        Ops.deleteCustomer(core, a, c.id, null)
        return c.id
      }
      case "product.create": {
        const now = core.now()
        const id = core.newId("prod")
        Ops.create(
          core,
          a,
          {
            ...(a.collection("product").items[0] ?? {}),
            id,
            object: "product",
            created: now,
            updated: now,
            name: `Driver product ${rng.chars(4)}`,
            default_price: null,
            metadata: {}
          } as StripeObject,
          null
        )
        return id
      }
      case "product.update": {
        const p = pick(a, "product")
        if (!p) return undefined
        Ops.update(
          core,
          a,
          p,
          { metadata: { ...(p.metadata as object), ...tag() }, updated: core.now() },
          null
        )
        return p.id
      }
      case "product.delete": {
        const prices = new Set(a.collection("price").items.map((p) => p.product))
        const p = pick(a, "product", (o) => !prices.has(o.id))
        if (!p) return undefined
        Ops.remove(core, a, p, null)
        return p.id
      }
      case "price.create": {
        const p = pick(a, "product", (o) => o.active !== false)
        const template = a.collection("price").items.find((x) => x.type === "one_time")
        if (!p || !template) return undefined
        const id = core.newId("price")
        const unit = rng.int(1, 100) * 100
        Ops.create(
          core,
          a,
          {
            ...template,
            id,
            created: core.now(),
            product: p.id,
            unit_amount: unit,
            unit_amount_decimal: String(unit),
            metadata: {}
          },
          null
        )
        return id
      }
      case "invoice.create": {
        const c = pick(a, "customer")
        const price = pick(a, "price", (o) => o.type === "one_time" && o.active !== false)
        if (!c || !price) return undefined
        const now = core.now()
        const n = rng.int(1, 3)
        for (let i = 0; i < n; i++)
          a.collection("invoiceitem").insert({
            ...(a.collection("invoiceitem").items[0] ?? {}),
            id: core.newId("ii"),
            object: "invoiceitem",
            created: now,
            date: now,
            customer: c.id,
            amount: price.unit_amount,
            quantity: 1,
            invoice: null,
            description: `Driver item ${i + 1}`,
            pricing: {
              type: "price_details",
              price_details: { price: price.id, product: price.product },
              unit_amount_decimal: String(price.unit_amount)
            },
            metadata: {}
          } as StripeObject)
        const inv = Ops.createInvoice(core, a, c.id, {}, null)
        if (rng.chance(0.6)) Ops.finalizeInvoice(core, a, inv.id, null)
        return inv.id
      }
      case "invoice.pay": {
        const inv = pick(
          a,
          "invoice",
          (o) => o.status === "open" && a.collection("customer").has(o.customer as string)
        )
        if (!inv) return undefined
        Ops.payInvoice(core, a, inv.id, null)
        return inv.id
      }
      case "invoice.void": {
        const inv = pick(a, "invoice", (o) => o.status === "open")
        if (!inv) return undefined
        Ops.voidInvoice(core, a, inv.id, null)
        return inv.id
      }
      case "invoice.delete_draft": {
        const inv = pick(a, "invoice", (o) => o.status === "draft")
        if (!inv) return undefined
        Ops.deleteInvoice(core, a, inv.id, null)
        return inv.id
      }
      case "subscription.create": {
        const c = pick(a, "customer")
        const price = pick(a, "price", (o) => o.type === "recurring" && o.active !== false)
        if (!c || !price) return undefined
        return Ops.createSubscription(core, a, c.id, [{ price: price.id, quantity: rng.int(1, 3) }], {}, null)
          .id
      }
      case "subscription.update": {
        const s = pick(a, "subscription", (o) => o.status !== "canceled")
        if (!s) return undefined
        Ops.update(core, a, s, { metadata: { ...(s.metadata as object), ...tag() } }, null)
        return s.id
      }
      case "subscription.cancel": {
        const s = pick(a, "subscription", (o) => o.status !== "canceled" && o.status !== "incomplete_expired")
        if (!s) return undefined
        Ops.cancelSubscription(core, a, s.id, null)
        return s.id
      }
      case "charge.refund": {
        const ch = pick(
          a,
          "charge",
          (o) =>
            o.refunded !== true && o.disputed !== true && (o.amount_refunded as number) < (o.amount as number)
        )
        if (!ch) return undefined
        const left = (ch.amount as number) - (ch.amount_refunded as number)
        Ops.refundCharge(core, a, ch.id, rng.chance(0.5) ? left : Math.max(1, Math.floor(left / 2)), null)
        return ch.id
      }
      case "charge.dispute": {
        const ch = pick(a, "charge", (o) => o.disputed !== true && o.refunded !== true)
        if (!ch) return undefined
        Ops.disputeCharge(core, a, ch.id, null)
        return ch.id
      }
    }
  }
  const step = (): AppliedChange | undefined => {
    let r = rng.next() * total
    let kind = kinds[kinds.length - 1]!
    for (const k of kinds) {
      r -= weights[k] ?? 0
      if (r < 0) {
        kind = k
        break
      }
    }
    const as = accounts()
    const a = as[rng.int(0, as.length - 1)]!
    const objectId = apply(kind, a)
    if (objectId === undefined) return undefined
    const c = { kind, account: a.id, objectId }
    applied.push(c)
    return c
  }
  return {
    step,
    steps: (n) => {
      const out: Array<AppliedChange> = []
      for (let i = 0; i < n; i++) {
        const c = step()
        if (c) out.push(c)
      }
      return out
    },
    applied
  }
}

/** Applies changes at `ratePerSecond` until stopped. */
export const start = (
  emulator: EmulatorHandle | EmulatorState,
  options: ChangeDriverOptions = {}
): RunningDriver => {
  const d = make(emulator, options)
  const rate = options.ratePerSecond ?? 10
  const tickMs = Math.max(10, Math.min(1000, 1000 / rate))
  const perTick = (rate * tickMs) / 1000
  let carry = 0
  const timer = setInterval(() => {
    carry += perTick
    while (carry >= 1) {
      carry -= 1
      d.step()
    }
  }, tickMs)
  return { ...d, applied: d.applied, stop: () => clearInterval(timer) }
}
