import Stripe from "stripe"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type EmulatorHandle, startEmulator } from "../src/Emulator.js"
import { client } from "./helpers.js"

let emulator: EmulatorHandle
let stripe: Stripe

beforeAll(async () => {
  emulator = await startEmulator({
    seed: "faults",
    scale: 0.05,
    restrictedKeys: { rk_test_readcustomers: ["customers:read"], rk_test_all: ["*:write"] }
  })
  stripe = client(emulator)
})
afterAll(() => emulator.stop())

const failure = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x
  )
  expect(e).toBeInstanceOf(Stripe.errors.StripeError)
  return e as Stripe.errors.StripeError
}

describe("auth", () => {
  it("a missing key is Stripe's 401", async () => {
    const res = await fetch(`${emulator.url}/v1/customers`)
    expect(res.status).toBe(401)
    const body = (await res.json()) as { error: { type: string; message: string } }
    expect(body.error.type).toBe("invalid_request_error")
    expect(body.error.message).toMatch(/You did not provide an API key/)
  })

  it("a malformed key is StripeAuthenticationError", async () => {
    const e = await failure(client(emulator, "pk_test_nope").customers.list())
    expect(e).toBeInstanceOf(Stripe.errors.StripeAuthenticationError)
    expect(e.statusCode).toBe(401)
    expect(e.code).toBe("api_key_invalid")
  })

  it("restricted keys: allowed resources pass, others get Stripe's permission error", async () => {
    const rk = client(emulator, "rk_test_readcustomers")
    expect((await rk.customers.list({ limit: 1 })).data.length).toBe(1)
    const write = await failure(rk.customers.create({ name: "x" }))
    expect(write).toBeInstanceOf(Stripe.errors.StripePermissionError)
    expect(write.statusCode).toBe(403)
    const other = await failure(rk.invoices.list())
    expect(other).toBeInstanceOf(Stripe.errors.StripePermissionError)
    expect(other.message).toMatch(/does not have the required permissions/)
    expect((await client(emulator, "rk_test_all").invoices.list({ limit: 1 })).data.length).toBe(1)
    const unknown = await failure(client(emulator, "rk_test_unknown").customers.list())
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeAuthenticationError)
  })
})

describe("faults", () => {
  it("rate limits answer 429 with Stripe's rate_limit body and Stripe-Should-Retry", async () => {
    emulator.setFaults({ rateLimit: { perSecond: 5 } })
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, () =>
          stripe.customers.list({ limit: 1 }).then(
            () => "ok",
            (e: unknown) => e
          )
        )
      )
      const limited = results.filter(
        (r) => r instanceof Stripe.errors.StripeRateLimitError
      ) as Array<Stripe.errors.StripeRateLimitError>
      // within one second window at most 5 pass (a window boundary may let a few more through)
      expect(limited.length).toBeGreaterThanOrEqual(2)
      expect(limited[0]!.code).toBe("rate_limit")
      expect(limited[0]!.statusCode).toBe(429)
      const res = await fetch(`${emulator.url}/v1/customers`, {
        headers: { authorization: "Bearer sk_test_x" }
      })
      if (res.status === 429) expect(res.headers.get("stripe-should-retry")).toBe("true")
    } finally {
      emulator.setFaults({ rateLimit: null })
    }
  })

  it("scripted faults: 429, 500, 404 and dropped connections on the next requests of a path", async () => {
    emulator.setFaults({
      script: [
        { path: "/v1/invoices", status: 429, times: 1 },
        { path: "/v1/invoices", status: 500, times: 1 },
        { path: "/v1/invoices", status: "drop", times: 1 }
      ]
    })
    const a = await failure(stripe.invoices.list())
    expect(a).toBeInstanceOf(Stripe.errors.StripeRateLimitError)
    const b = await failure(stripe.invoices.list())
    expect(b).toBeInstanceOf(Stripe.errors.StripeAPIError)
    expect(b.statusCode).toBe(500)
    // A dropped connection is retried once by the SDK even with maxNetworkRetries 0: check with fetch
    const dropped = await fetch(`${emulator.url}/v1/invoices`, {
      headers: { authorization: "Bearer sk_test_x" }
    }).then(
      () => "answered",
      () => "dropped"
    )
    expect(dropped).toBe("dropped")
    expect((await stripe.invoices.list({ limit: 1 })).data.length).toBe(1)
    // With retries the SDK gets through a transient 500
    emulator.setFaults({ script: [{ path: "/v1/products", status: 500, times: 1 }] })
    const retrying = client(emulator, "sk_test_x", { maxNetworkRetries: 2 })
    expect((await retrying.products.list({ limit: 1 })).data.length).toBe(1)
  })

  it("404s of unknown ids are StripeInvalidRequestError", async () => {
    const e = await failure(stripe.invoices.retrieve("in_nope"))
    expect(e).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError)
    expect(e.statusCode).toBe(404)
  })

  it("random 5xx at a configured rate, and latency", async () => {
    emulator.setFaults({ errorRate: 1 })
    const e = await failure(stripe.customers.list())
    expect(e.statusCode).toBe(500)
    emulator.setFaults({ errorRate: 0, latencyMs: 60 })
    const t = Date.now()
    await stripe.customers.list({ limit: 1 })
    expect(Date.now() - t).toBeGreaterThanOrEqual(55)
    emulator.setFaults({ reset: true })
  })

  it("control endpoints: faults, stats by path and status, truth scoped by Stripe-Account", async () => {
    const set = await fetch(`${emulator.url}/_emulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ script: [{ path: "/v1/coupons", status: 503, times: 1 }] })
    })
    expect(set.status).toBe(200)
    expect((await failure(stripe.coupons.list())).statusCode).toBe(503)
    await fetch(`${emulator.url}/_emulator/stats/reset`, { method: "POST" })
    await stripe.coupons.list()
    await stripe.coupons.list()
    await failure(stripe.customers.retrieve("cus_nope"))
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as {
      requests: number
      byPath: Record<string, Record<string, number>>
    }
    expect(stats.byPath["/v1/coupons"]).toEqual({ "200": 2 })
    expect(stats.byPath["/v1/customers/:id"]).toEqual({ "404": 1 })
    expect(stats.requests).toBe(3)
    const truth = (await (await fetch(`${emulator.url}/_emulator/truth/customer`)).json()) as {
      data: Array<{ id: string }>
    }
    expect(truth.data.map((c) => c.id)).toEqual(emulator.truth("customer").map((c) => c.id))
  })
})
