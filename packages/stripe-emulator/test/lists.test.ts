import type Stripe from "stripe"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type EmulatorHandle, startEmulator } from "../src/Emulator.js"
import type { StripeObject } from "../src/Store.js"
import { client } from "./helpers.js"

const EPOCH = 1_790_000_000
let emulator: EmulatorHandle
let stripe: Stripe

beforeAll(async () => {
  emulator = await startEmulator({
    seed: "lists",
    scale: 1,
    connectedAccounts: 2,
    connectedScale: 0.1,
    epoch: EPOCH
  })
  stripe = client(emulator)
})
afterAll(() => emulator.stop())

const ids = (xs: ReadonlyArray<{ id: string }>) => xs.map((x) => x.id)
const byStripeOrder = (a: StripeObject, b: StripeObject) =>
  a.created !== b.created ? b.created! - a.created! : a.id < b.id ? 1 : a.id > b.id ? -1 : 0

describe("lists", () => {
  it("holds no history after the epoch: every generated object was created before it", () => {
    for (const type of emulator.state.platform.types()) {
      const late = emulator.truth(type).filter((o) => typeof o.created === "number" && o.created > EPOCH)
      expect(
        late.map((o) => o.id),
        type
      ).toEqual([])
    }
  })

  it("auto-pagination returns every customer exactly once, newest first", async () => {
    const got: Array<Stripe.Customer> = []
    for await (const c of stripe.customers.list({ limit: 100 })) got.push(c)
    const truth = emulator.truth("customer").filter((o) => o.deleted !== true)
    expect(got.length).toBe(truth.length)
    expect(new Set(ids(got)).size).toBe(got.length)
    expect(ids(got)).toEqual(ids([...truth].sort(byStripeOrder)))
    // Some customers share a second
    const seconds = new Set(got.map((c) => c.created))
    expect(seconds.size).toBeLessThan(got.length)
    // created spread over years
    expect(got[0]!.created - got[got.length - 1]!.created).toBeGreaterThan(2 * 365 * 86400)
  })

  it("auto-pagination backwards with ending_before returns the same objects", async () => {
    const all = emulator.truth("invoice").filter((o) => o.deleted !== true)
    const oldest = all[all.length - 1]!
    const got: Array<string> = []
    for await (const inv of stripe.invoices.list({ limit: 100, ending_before: oldest.id })) got.push(inv.id)
    expect(got.length).toBe(all.length - 1)
    expect(new Set(got)).toEqual(new Set(ids(all.slice(0, -1))))
  })

  it("created ranges and cursors agree with a brute-force filter of the truth", async () => {
    const truth = emulator.truth("charge")
    const created = truth.map((o) => o.created!).sort((a, b) => a - b)
    const mid = created[Math.floor(created.length / 2)]!
    const q1 = created[Math.floor(created.length / 4)]!
    const cases: Array<Stripe.RangeQueryParam | number> = [
      { gte: q1, lt: mid },
      { gt: q1, lte: mid },
      { lt: q1 },
      { gte: mid },
      mid
    ]
    for (const range of cases) {
      const expected = truth
        .filter((o) => {
          const t = o.created!
          if (typeof range === "number") return t === range
          return (
            (range.gt === undefined || t > range.gt) &&
            (range.gte === undefined || t >= range.gte) &&
            (range.lt === undefined || t < range.lt) &&
            (range.lte === undefined || t <= range.lte)
          )
        })
        .sort(byStripeOrder)
      const got: Array<string> = []
      for await (const ch of stripe.charges.list({ limit: 7, created: range })) got.push(ch.id)
      expect(got).toEqual(ids(expected))
    }
    // starting_after: the page after any object is the next slice of the order
    const ordered = [...truth].sort(byStripeOrder)
    for (const i of [0, 5, 99, ordered.length - 2]) {
      const page = await stripe.charges.list({ limit: 3, starting_after: ordered[i]!.id })
      expect(ids(page.data)).toEqual(ids(ordered.slice(i + 1, i + 4)))
      expect(page.has_more).toBe(i + 4 < ordered.length)
      const before = await stripe.charges.list({ limit: 3, ending_before: ordered[i + 1]!.id })
      expect(ids(before.data)).toEqual(ids(ordered.slice(Math.max(0, i - 2), i + 1)))
    }
  })

  it("answers list envelopes with url, has_more and the default limit of 10", async () => {
    const page = await stripe.products.list()
    expect(page.object).toBe("list")
    expect(page.url).toBe("/v1/products")
    expect(page.data.length).toBe(10)
    expect(page.has_more).toBe(true)
  })

  it("rejects limits out of 1..100 with Stripe's invalid_request_error and param", async () => {
    for (const limit of [0, 101]) {
      const e = await stripe.customers.list({ limit }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(Error)
      const err = e as Stripe.errors.StripeInvalidRequestError
      expect(err.type).toBe("StripeInvalidRequestError")
      expect(err.param).toBe("limit")
      expect(err.statusCode).toBe(400)
    }
  })

  it("an invoice with 25 lines embeds 10 and pages to 25", async () => {
    const inv = emulator
      .truth("invoice")
      .find((o) => (o.lines as { total_count: number }).total_count === 25)!
    expect(inv).toBeDefined()
    const got = await stripe.invoices.retrieve(inv.id)
    expect(got.lines.data.length).toBe(10)
    expect(got.lines.has_more).toBe(true)
    expect(got.lines.url).toBe(`/v1/invoices/${inv.id}/lines`)
    const lines: Array<string> = []
    for await (const l of stripe.invoices.listLineItems(inv.id, { limit: 4 })) lines.push(l.id)
    expect(lines.length).toBe(25)
    expect(new Set(lines).size).toBe(25)
    expect(lines.slice(0, 10)).toEqual(ids(got.lines.data))
    // Several invoices have more than 10 lines
    expect(
      emulator.truth("invoice").filter((o) => (o.lines as { total_count: number }).total_count > 10).length
    ).toBeGreaterThan(1)
  })

  it("a subscription with 12 items pages them through /v1/subscription_items", async () => {
    const sub = emulator
      .truth("subscription")
      .find((o) => (o.items as { total_count: number }).total_count === 12)!
    const got = await stripe.subscriptions.retrieve(sub.id)
    expect(got.items.data.length).toBe(10)
    expect(got.items.has_more).toBe(true)
    expect(got.items.url).toBe(`/v1/subscription_items?subscription=${sub.id}`)
    const items: Array<string> = []
    for await (const it of stripe.subscriptionItems.list({ subscription: sub.id, limit: 5 }))
      items.push(it.id)
    expect(items.length).toBe(12)
    expect(new Set(items).size).toBe(12)
  })

  it("checkout line items and credit note lines page past 10", async () => {
    const cs = emulator
      .truth("checkout.session")
      .find((o) => (emulator.account().children.get(o.id) ?? []).length === 12)!
    const items: Array<string> = []
    for await (const it of stripe.checkout.sessions.listLineItems(cs.id, { limit: 100 })) items.push(it.id)
    expect(items.length).toBe(12)
    const expanded = await stripe.checkout.sessions.retrieve(cs.id, { expand: ["line_items"] })
    expect(expanded.line_items?.data.length).toBe(10)
    expect(expanded.line_items?.has_more).toBe(true)
    const cn = emulator
      .truth("credit_note")
      .find((o) => (o.lines as { total_count: number }).total_count === 12)!
    const lines: Array<string> = []
    for await (const l of stripe.creditNotes.listLineItems(cn.id)) lines.push(l.id)
    expect(lines.length).toBe(12)
  })

  it("subscriptions exclude canceled ones unless status=all or status=canceled", async () => {
    const truth = emulator.truth("subscription")
    const canceled = truth.filter((o) => o.status === "canceled").length
    expect(canceled).toBeGreaterThan(0)
    const count = async (params: Stripe.SubscriptionListParams) => {
      let n = 0
      for await (const _ of stripe.subscriptions.list({ limit: 100, ...params })) n++
      return n
    }
    expect(await count({})).toBe(truth.length - canceled)
    expect(await count({ status: "all" })).toBe(truth.length)
    expect(await count({ status: "canceled" })).toBe(canceled)
  })

  it("payment methods are listed per customer", async () => {
    const pm = emulator.truth("payment_method")[0]!
    const customer = pm.customer as string
    const expected = emulator.truth("payment_method").filter((o) => o.customer === customer)
    const a = await stripe.paymentMethods.list({ customer })
    const b = await stripe.customers.listPaymentMethods(customer)
    expect(ids(a.data)).toEqual(ids(expected))
    expect(ids(b.data)).toEqual(ids(expected))
    expect((await stripe.paymentMethods.list()).data).toEqual([])
  })

  it("a customer's tax ids are included only when expanded (list and retrieve)", async () => {
    const taxIds = emulator.truth("tax_id")
    const owner = taxIds[0]!.customer as string
    const owned = (customer: string) => taxIds.filter((t) => t.customer === customer)
    const plain = await stripe.customers.list({ limit: 100 })
    expect(plain.data.every((c) => c.tax_ids === undefined)).toBe(true)
    let withTaxIds = 0
    for await (const c of stripe.customers.list({ limit: 100, expand: ["data.tax_ids"] })) {
      const want = owned(c.id)
      expect(ids(c.tax_ids!.data)).toEqual(ids(want.slice(0, 10)))
      expect(c.tax_ids!.has_more).toBe(want.length > 10)
      expect(c.tax_ids!.url).toBe(`/v1/customers/${c.id}/tax_ids`)
      if (want.length > 0) withTaxIds++
    }
    expect(withTaxIds).toBeGreaterThan(0)
    const one = await stripe.customers.retrieve(owner, { expand: ["tax_ids"] })
    expect(ids((one as Stripe.Customer).tax_ids!.data)).toEqual(ids(owned(owner).slice(0, 10)))
  })

  it("retrieves by id, 404s with resource_missing, expands references", async () => {
    const inv = emulator.truth("invoice")[3]!
    const got = await stripe.invoices.retrieve(inv.id, { expand: ["customer"] })
    expect((got.customer as Stripe.Customer).id).toBe(inv.customer)
    expect((got.customer as Stripe.Customer).object).toBe("customer")
    const page = await stripe.invoices.list({ limit: 3, expand: ["data.customer"] })
    for (const i of page.data) expect(typeof i.customer === "object" && i.customer?.object).toBe("customer")
    const e = (await stripe.customers
      .retrieve("cus_missing")
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(e).toBeInstanceOf(Error)
    expect(e.type).toBe("StripeInvalidRequestError")
    expect(e.statusCode).toBe(404)
    expect(e.code).toBe("resource_missing")
    expect(e.message).toBe("No such customer: 'cus_missing'")
    expect(e.requestId).toMatch(/^req_/)
  })

  it("sends Request-Id, Stripe-Version and Date headers", async () => {
    const res = await fetch(`${emulator.url}/v1/customers?limit=1`, {
      headers: { authorization: "Bearer sk_test_x", "stripe-version": "2024-06-20" }
    })
    expect(res.status).toBe(200)
    expect(res.headers.get("request-id")).toMatch(/^req_/)
    expect(res.headers.get("stripe-version")).toBe("2024-06-20")
    expect(res.headers.get("date")).not.toBeNull()
    const res2 = await fetch(`${emulator.url}/v1/customers?limit=1`, {
      headers: { authorization: "Bearer sk_test_x" }
    })
    expect(res2.headers.get("stripe-version")).toBe("2026-10-28.endive")
  })

  it("answers other SDK list endpoints with an empty list or Stripe's not-enabled error", async () => {
    const quotes = await stripe.quotes.list()
    expect(quotes.data).toEqual([])
    expect(quotes.has_more).toBe(false)
    const e = (await stripe.issuing.cards.list().catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(e.type).toBe("StripeInvalidRequestError")
    expect(e.message).toMatch(/not set up to use Issuing/)
    const unknown = await fetch(`${emulator.url}/v1/nope`, { headers: { authorization: "Bearer sk_test_x" } })
    expect(unknown.status).toBe(404)
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(
      /Unrecognized request URL/
    )
  })

  it("scopes everything to Stripe-Account; GET /v1/accounts lists connected accounts", async () => {
    const accounts = await stripe.accounts.list()
    expect(new Set(ids(accounts.data))).toEqual(new Set(emulator.connectedAccountIds))
    const acct = emulator.connectedAccountIds[0]!
    const connected = client(emulator, "sk_test_x", { stripeAccount: acct })
    const theirs: Array<string> = []
    for await (const c of connected.customers.list({ limit: 100 })) theirs.push(c.id)
    expect(theirs).toEqual(ids(emulator.truth("customer", acct)))
    const platformCustomer = emulator.truth("customer")[0]!
    const e = (await connected.customers
      .retrieve(platformCustomer.id)
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(e.statusCode).toBe(404)
    const bad = (await client(emulator, "sk_test_x", { stripeAccount: "acct_nope" })
      .customers.list()
      .catch((x: unknown) => x)) as Stripe.errors.StripeError
    expect(bad.statusCode).toBe(403)
  })

  it("the same seed gives the same ids", async () => {
    const again = await startEmulator({
      seed: "lists",
      scale: 1,
      connectedAccounts: 2,
      connectedScale: 0.1,
      epoch: EPOCH
    })
    try {
      for (const type of ["customer", "invoice", "subscription", "charge", "checkout.session"])
        expect(ids(again.truth(type))).toEqual(ids(emulator.truth(type)))
      expect(again.connectedAccountIds).toEqual(emulator.connectedAccountIds)
      expect(JSON.stringify(again.truth("invoice").slice(0, 20))).toBe(
        JSON.stringify(emulator.truth("invoice").slice(0, 20))
      )
    } finally {
      await again.stop()
    }
    const other = await startEmulator({ seed: "other", scale: 0.05, epoch: EPOCH })
    try {
      expect(ids(other.truth("customer"))).not.toEqual(
        ids(emulator.truth("customer")).slice(0, other.truth("customer").length)
      )
    } finally {
      await other.stop()
    }
  })

  it("generates every resource of the mix with consistent references", () => {
    for (const type of [
      "customer",
      "product",
      "price",
      "plan",
      "coupon",
      "promotion_code",
      "subscription",
      "subscription_schedule",
      "invoice",
      "invoiceitem",
      "credit_note",
      "charge",
      "payment_intent",
      "payment_method",
      "setup_intent",
      "refund",
      "dispute",
      "balance_transaction",
      "payout",
      "transfer",
      "tax_id",
      "tax_rate",
      "checkout.session",
      "radar.early_fraud_warning",
      "review"
    ])
      expect(emulator.truth(type).length, type).toBeGreaterThan(0)
    const account = emulator.account()
    for (const ch of emulator.truth("charge")) {
      expect(account.find(ch.customer as string)?.object).toBe("customer")
      expect(account.find(ch.payment_intent as string)?.object).toBe("payment_intent")
      expect(account.find(ch.balance_transaction as string)?.object).toBe("balance_transaction")
    }
    for (const re of emulator.truth("refund"))
      expect(account.find(re.charge as string)?.amount_refunded).toBe(re.amount)
    for (const sub of emulator.truth("subscription"))
      expect(account.find(sub.customer as string)).toBeDefined()
  })
})
