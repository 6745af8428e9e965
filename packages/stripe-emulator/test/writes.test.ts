import type Stripe from "stripe"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as ChangeDriver from "../src/ChangeDriver.js"
import { type EmulatorHandle, startEmulator } from "../src/Emulator.js"
import type { StripeObject } from "../src/Store.js"
import { client } from "./helpers.js"

// A controllable clock: Stripe's `created` and event times are unix seconds from it.
let nowMs = 1_800_000_000_000
let emulator: EmulatorHandle
let stripe: Stripe

beforeAll(async () => {
  emulator = await startEmulator({
    seed: "writes",
    scale: 0.2,
    connectedAccounts: 1,
    connectedScale: 0.05,
    clock: () => nowMs
  })
  stripe = client(emulator)
})
afterAll(() => emulator.stop())

const eventsOf = async (s: Stripe, params: Stripe.EventListParams = {}) => {
  const out: Array<Stripe.Event> = []
  for await (const e of s.events.list({ limit: 100, ...params })) out.push(e)
  return out
}

describe("writes and events", () => {
  it("customer create, update, delete record customer.created, customer.updated with previous_attributes, customer.deleted", async () => {
    nowMs += 10_000
    const t0 = Math.floor(nowMs / 1000)
    const c = await stripe.customers.create({ name: "Ada", email: "ada@example.com", metadata: { a: "1" } })
    expect(c.id).toMatch(/^cus_/)
    expect(c.created).toBe(t0)
    expect(c.metadata).toEqual({ a: "1" })
    const u = await stripe.customers.update(c.id, { name: "Ada L.", metadata: { b: "2" } })
    expect(u.name).toBe("Ada L.")
    expect(u.metadata).toEqual({ a: "1", b: "2" })
    const u2 = await stripe.customers.update(c.id, { metadata: { a: "" } })
    expect(u2.metadata).toEqual({ b: "2" })
    const d = await stripe.customers.del(c.id)
    expect(d).toEqual({ id: c.id, object: "customer", deleted: true })
    expect(await stripe.customers.retrieve(c.id)).toEqual({ id: c.id, object: "customer", deleted: true })

    const events = (await eventsOf(stripe, { created: { gte: t0 } })).filter(
      (e) => (e.data.object as { id: string }).id === c.id
    )
    expect(events.map((e) => e.type)).toEqual([
      "customer.deleted",
      "customer.updated",
      "customer.updated",
      "customer.created"
    ])
    const [deleted, upd2, upd1, created] = events
    expect((created!.data.object as Stripe.Customer).name).toBe("Ada")
    expect(upd1!.data.previous_attributes).toEqual({ name: "Ada", metadata: { b: null } })
    expect((upd1!.data.object as Stripe.Customer).name).toBe("Ada L.")
    expect(upd2!.data.previous_attributes).toEqual({ metadata: { a: "1" } })
    expect((deleted!.data.object as Stripe.Customer).id).toBe(c.id)
    for (const e of events) {
      expect(e.created).toBe(t0)
      expect(e.api_version).toBe("2026-10-28.endive")
      expect(e.request?.id).toMatch(/^req_/)
      expect(await stripe.events.retrieve(e.id)).toEqual(e)
    }
    // The truth marks it deleted
    expect(emulator.truth("customer").find((o) => o.id === c.id)?.deleted).toBe(true)
  })

  it("products, prices, subscriptions and invoices follow Stripe's state machines", async () => {
    nowMs += 10_000
    const t0 = Math.floor(nowMs / 1000)
    const product = await stripe.products.create({ name: "Widget" })
    const price = await stripe.prices.create({
      product: product.id,
      currency: "usd",
      unit_amount: 1500,
      recurring: { interval: "month" }
    })
    expect(price.type).toBe("recurring")
    const customer = await stripe.customers.create({ email: "b@example.com" })
    const sub = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id, quantity: 2 }]
    })
    expect(sub.status).toBe("active")
    expect(sub.items.data[0]!.price.id).toBe(price.id)
    expect(sub.items.data[0]!.quantity).toBe(2)
    const inv = await stripe.invoices.retrieve(sub.latest_invoice as string)
    expect(inv.status).toBe("paid")
    expect(inv.amount_paid).toBe(3000)
    // Deleting a product with prices is refused
    const refused = (await stripe.products
      .del(product.id)
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(refused.type).toBe("StripeInvalidRequestError")
    // Invoice items → draft invoice → finalize → pay
    await stripe.invoiceItems.create({
      customer: customer.id,
      amount: 700,
      currency: "usd",
      description: "setup"
    })
    const draft = await stripe.invoices.create({ customer: customer.id })
    expect(draft.status).toBe("draft")
    expect(draft.lines.data.map((l) => l.amount)).toEqual([700])
    const open = await stripe.invoices.finalizeInvoice(draft.id)
    expect(open.status).toBe("open")
    expect(open.number).not.toBeNull()
    const paid = await stripe.invoices.pay(draft.id)
    expect(paid.status).toBe("paid")
    expect(paid.amount_remaining).toBe(0)
    // A draft invoice can be deleted; a paid one cannot
    const draft2 = await stripe.invoices.create({ customer: customer.id })
    expect(await stripe.invoices.del(draft2.id)).toEqual({ id: draft2.id, object: "invoice", deleted: true })
    const notDraft = (await stripe.invoices
      .del(draft.id)
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(notDraft.type).toBe("StripeInvalidRequestError")
    // Cancel: the subscription stays, status canceled, customer.subscription.deleted recorded
    const canceled = await stripe.subscriptions.cancel(sub.id)
    expect(canceled.status).toBe("canceled")
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe("canceled")

    const types = (await eventsOf(stripe, { created: { gte: t0 } })).reverse().map((e) => e.type)
    expect(types).toEqual([
      "product.created",
      "plan.created",
      "price.created",
      "customer.created",
      "customer.subscription.created",
      "invoice.created",
      "invoice.updated",
      "invoice.finalized",
      "payment_intent.created",
      "charge.succeeded",
      "payment_intent.succeeded",
      "invoice.updated",
      "invoice.paid",
      "invoice.payment_succeeded",
      "customer.subscription.updated",
      "invoiceitem.created",
      "invoice.created",
      "invoice.updated",
      "invoice.finalized",
      "payment_intent.created",
      "charge.succeeded",
      "payment_intent.succeeded",
      "invoice.updated",
      "invoice.paid",
      "invoice.payment_succeeded",
      "invoice.created",
      "invoice.deleted",
      "customer.subscription.deleted"
    ])
  })

  it("GET /v1/events filters by type, types[] and created, and pages", async () => {
    nowMs += 10_000
    const t0 = Math.floor(nowMs / 1000)
    const c = await stripe.customers.create({ name: "x" })
    nowMs += 5_000
    for (let i = 0; i < 12; i++) await stripe.customers.update(c.id, { metadata: { i: String(i) } })
    const updated = await eventsOf(stripe, { type: "customer.updated", created: { gte: t0 } })
    expect(updated.length).toBe(12)
    expect(updated.every((e) => e.type === "customer.updated")).toBe(true)
    const wildcard = await eventsOf(stripe, { type: "customer.*", created: { gte: t0 } })
    expect(wildcard.length).toBe(13)
    const both = await eventsOf(stripe, {
      types: ["customer.created", "customer.updated"],
      created: { gte: t0 }
    })
    expect(both.length).toBe(13)
    const onlyCreated = await eventsOf(stripe, { created: { lt: t0 + 5 }, types: ["customer.created"] })
    expect(onlyCreated[0]!.type).toBe("customer.created")
    const page = await stripe.events.list({ limit: 5, type: "customer.updated", created: { gte: t0 } })
    expect(page.data.length).toBe(5)
    expect(page.has_more).toBe(true)
    // Several changes to one object within one second: same `created`, newest first by id
    expect(new Set(updated.map((e) => e.created)).size).toBe(1)
  })

  it("refunds update the charge and record charge.refunded and refund.created", async () => {
    nowMs += 10_000
    const t0 = Math.floor(nowMs / 1000)
    const ch = emulator.truth("charge").find((o) => o.refunded === false && o.disputed === false)!
    const re = await stripe.refunds.create({ charge: ch.id, amount: 100 })
    expect(re.amount).toBe(100)
    const after = await stripe.charges.retrieve(ch.id)
    expect(after.amount_refunded).toBe(100)
    const types = (await eventsOf(stripe, { created: { gte: t0 } })).map((e) => e.type)
    expect(types).toEqual(["charge.refunded", "refund.created"])
    const refunded = (await eventsOf(stripe, { created: { gte: t0 }, type: "charge.refunded" }))[0]!
    expect(refunded.data.previous_attributes).toEqual({ amount_refunded: 0 })
  })

  it("events of a connected account carry `account` and stay out of the platform's events", async () => {
    nowMs += 10_000
    const t0 = Math.floor(nowMs / 1000)
    const acct = emulator.connectedAccountIds[0]!
    const connected = client(emulator, "sk_test_x", { stripeAccount: acct })
    const c = await connected.customers.create({ name: "Connected" })
    const theirs = await eventsOf(connected, { created: { gte: t0 } })
    expect(theirs.map((e) => [e.type, e.account])).toEqual([["customer.created", acct]])
    expect((await eventsOf(stripe, { created: { gte: t0 } })).length).toBe(0)
    expect(emulator.truth("customer", acct).some((o) => o.id === c.id)).toBe(true)
    expect(emulator.truth("customer").some((o) => o.id === c.id)).toBe(false)
  })

  it("rejects unknown parameters and missing required ones as Stripe does", async () => {
    const e = (await stripe.customers
      .create({ nope: 1 } as Stripe.CustomerCreateParams)
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(e.type).toBe("StripeInvalidRequestError")
    expect(e.param).toBe("nope")
    const m = (await stripe.products
      .create({} as Stripe.ProductCreateParams)
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(m.param).toBe("name")
  })

  it("the change driver applies seeded changes that keep the store consistent", async () => {
    const mk = async () => startEmulator({ seed: "driver", scale: 0.2, clock: () => 1_800_000_000_000 })
    const a = await mk()
    const b = await mk()
    try {
      const da = ChangeDriver.make(a, { seed: 7 })
      const db = ChangeDriver.make(b, { seed: 7 })
      const ca = da.steps(300)
      const cb = db.steps(300)
      expect(ca).toEqual(cb)
      const kinds = new Set(ca.map((c) => c.kind))
      for (const k of [
        "invoice.pay",
        "subscription.cancel",
        "charge.refund",
        "customer.delete",
        "customer.burst"
      ])
        expect(kinds.has(k as ChangeDriver.ChangeKind), k).toBe(true)
      const sa = client(a)
      // Every event's object equals the latest truth for objects changed once
      const events: Array<Stripe.Event> = []
      for await (const e of sa.events.list({ limit: 100 })) events.push(e)
      expect(events.length).toBeGreaterThan(300)
      const latest = new Map<string, Stripe.Event>()
      for (const e of [...events].reverse()) latest.set((e.data.object as { id: string }).id, e)
      for (const [id, e] of latest) {
        const obj = e.data.object as unknown as StripeObject
        const truth = a.truth(obj.object).find((o) => o.id === id)
        if (truth === undefined) continue
        if (truth.deleted === true) expect(e.type.endsWith(".deleted"), `${id} ${e.type}`).toBe(true)
        else if (obj.object !== "dispute" && obj.object !== "payment_intent")
          expect(truth, `${id} ${e.type}`).toEqual(obj)
      }
      // A paid invoice's payment, charge, invoice and subscription changed in the same second
      const paid = ca.find((c) => c.kind === "invoice.pay")!
      const payEvents = events.filter(
        (e) => (e.data.object as { id: string }).id === paid.objectId && e.type === "invoice.paid"
      )
      expect(payEvents.length).toBe(1)
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
