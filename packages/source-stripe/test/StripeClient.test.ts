import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Redacted, TestClock } from "effect"
import * as RateLimit from "../src/internal/rateLimit.js"
import * as StripeClient from "../src/StripeClient.js"

interface Scripted {
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
}
interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

const DATE = "Tue, 03 Mar 2026 10:00:00 GMT"
const DATE_TS = Math.floor(Date.parse(DATE) / 1000)
const KEY = "sk_test_51SecretKeyThatMustNeverShow"

let server: Server
let base = ""
let script: Array<Scripted> = []
let seen: Array<Seen> = []

const ok = (body: unknown): Scripted => ({ status: 200, body })
const fail = (status: number, type: string, headers?: Record<string, string>, code?: string): Scripted => ({
  status,
  body: { error: { type, message: `failure ${status}`, ...(code ? { code } : {}) } },
  ...(headers ? { headers } : {})
})

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers })
    const next = script.shift() ?? ok({ object: "list", data: [], has_more: false, url: "/v1/x" })
    res.writeHead(next.status, {
      "content-type": "application/json",
      date: DATE,
      "request-id": `req_${seen.length}`,
      ...next.headers
    })
    res.end(JSON.stringify(next.body))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))
beforeEach(() => {
  script = []
  seen = []
})

const client = (options: Partial<StripeClient.Options> = {}) =>
  StripeClient.make({
    apiKey: Redacted.make(KEY),
    apiBase: base,
    rateLimit: 1000,
    endpointRateLimit: 1000,
    retry: { maxAttempts: 4, baseDelay: "1 millis", maxDelay: "5 millis" },
    ...options
  })

describe("StripeClient over HTTP", () => {
  it.scopedLive("lists a page with its Date header as versionTs, the pinned version and Stripe-Account", () =>
    Effect.gen(function* () {
      script = [ok({ object: "list", data: [{ id: "cus_1" }], has_more: true, url: "/v1/customers" })]
      const stripe = yield* client()
      const page = yield* stripe.list(
        "/v1/customers",
        { limit: 100, created: { gte: 10, lt: 20 }, expand: ["data.x"] },
        { account: "acct_9" }
      )
      assert.deepStrictEqual(page, {
        data: [{ id: "cus_1" }],
        has_more: true,
        url: "/v1/customers",
        versionTs: DATE_TS
      })
      assert.strictEqual(seen.length, 1)
      assert.strictEqual(seen[0].method, "GET")
      assert.strictEqual(
        decodeURIComponent(seen[0].url),
        "/v1/customers?limit=100&created[gte]=10&created[lt]=20&expand[0]=data.x"
      )
      assert.strictEqual(seen[0].headers["stripe-account"], "acct_9")
      assert.strictEqual(seen[0].headers["stripe-version"], StripeClient.apiVersion)
      assert.strictEqual(seen[0].headers.authorization, `Bearer ${KEY}`)
    })
  )

  it.scopedLive("keeps a query already in the path and appends parameters to it", () =>
    Effect.gen(function* () {
      const stripe = yield* client()
      yield* stripe.list("/v1/subscription_items?subscription=sub_1", { limit: 100, starting_after: "si_2" })
      assert.strictEqual(
        seen[0].url,
        "/v1/subscription_items?subscription=sub_1&limit=100&starting_after=si_2"
      )
      assert.strictEqual(seen[0].headers["stripe-account"], undefined)
    })
  )

  it.scopedLive("retries a 429 and succeeds", () =>
    Effect.gen(function* () {
      script = [fail(429, "invalid_request_error", {}, "rate_limit"), ok({ id: "cus_1", object: "customer" })]
      const stripe = yield* client()
      const r = yield* stripe.retrieve("/v1/customers/cus_1")
      assert.deepStrictEqual(r.body, { id: "cus_1", object: "customer" })
      assert.strictEqual(r.versionTs, DATE_TS)
      assert.strictEqual(r.requestId, "req_2")
      assert.strictEqual(seen.length, 2)
    })
  )

  it.scopedLive("does not retry when Stripe-Should-Retry is false", () =>
    Effect.gen(function* () {
      script = [fail(429, "invalid_request_error", { "stripe-should-retry": "false" }, "rate_limit")]
      const stripe = yield* client()
      const r = yield* Effect.either(stripe.retrieve("/v1/customers/cus_1"))
      assert.isTrue(Either.isLeft(r))
      if (Either.isLeft(r)) {
        assert.strictEqual(r.left._tag, "StripeRateLimited")
        assert.strictEqual(r.left.status, 429)
        assert.strictEqual(r.left.code, "rate_limit")
        assert.strictEqual(r.left.requestId, "req_1")
      }
      assert.strictEqual(seen.length, 1)
    })
  )

  it.scopedLive("retries a 409 when Stripe-Should-Retry is true", () =>
    Effect.gen(function* () {
      script = [fail(409, "idempotency_error", { "stripe-should-retry": "true" }), ok({ id: "cus_1" })]
      const stripe = yield* client()
      const r = yield* stripe.request("POST", "/v1/customers", { name: "A" }, { idempotencyKey: "k1" })
      assert.deepStrictEqual(r.body, { id: "cus_1" })
      assert.strictEqual(seen.length, 2)
      assert.strictEqual(seen[1].headers["idempotency-key"], "k1")
    })
  )

  it.scopedLive("gives up on 5xx after the bounded attempts with StripeServerError", () =>
    Effect.gen(function* () {
      script = Array.from({ length: 10 }, () => fail(500, "api_error"))
      const stripe = yield* client()
      const r = yield* Effect.flip(stripe.list("/v1/charges"))
      assert.strictEqual(r._tag, "StripeServerError")
      assert.strictEqual(r.status, 500)
      assert.strictEqual(r.endpoint, "GET /v1/charges")
      assert.strictEqual(seen.length, 4)
    })
  )

  it.scopedLive("honours Retry-After instead of the backoff", () =>
    Effect.gen(function* () {
      script = [fail(503, "api_error", { "retry-after": "0" }), ok({ id: "x" })]
      // a backoff of an hour would time the test out: Retry-After: 0 retries at once
      const stripe = yield* client({ retry: { maxAttempts: 3, baseDelay: "1 hour", maxDelay: "1 hour" } })
      const r = yield* stripe.retrieve("/v1/balance")
      assert.deepStrictEqual(r.body, { id: "x" })
      assert.strictEqual(seen.length, 2)
    })
  )

  it.scopedLive("fails fast on a bad key with a message that says what to do, without the key", () =>
    Effect.gen(function* () {
      script = [fail(401, "invalid_request_error")]
      const stripe = yield* client()
      const r = yield* Effect.flip(stripe.list("/v1/customers"))
      assert.strictEqual(r._tag, "StripeAuthenticationError")
      assert.include(r.message, "STRIPE_API_KEY")
      assert.notInclude(JSON.stringify(r), KEY)
      assert.strictEqual(seen.length, 1)
    })
  )

  it.scopedLive("types 403, 404 and other 4xx without retrying", () =>
    Effect.gen(function* () {
      script = [
        fail(403, "invalid_request_error"),
        fail(404, "invalid_request_error", {}, "resource_missing"),
        fail(400, "invalid_request_error", {}, "parameter_invalid_integer")
      ]
      const stripe = yield* client()
      const a = yield* Effect.flip(stripe.list("/v1/issuing/cards"))
      const b = yield* Effect.flip(stripe.retrieve("/v1/customers/cus_gone"))
      const c = yield* Effect.flip(stripe.list("/v1/customers", { limit: "x" }))
      assert.deepStrictEqual(
        [a._tag, b._tag, c._tag],
        ["StripePermissionError", "StripeNotFound", "StripeInvalidRequest"]
      )
      assert.strictEqual(b.code, "resource_missing")
      assert.strictEqual(c.code, "parameter_invalid_integer")
      assert.strictEqual(seen.length, 3)
    })
  )

  it.scopedLive("reads a body that arrives in many pieces, split inside multi-byte characters", () =>
    Effect.gen(function* () {
      const names = Array.from({ length: 200 }, (_, i) => `Zoë Ødegård 東京 🚀 ${i}`)
      const body = Buffer.from(
        JSON.stringify({
          object: "list",
          data: names.map((name, i) => ({ id: `cus_${i}`, name })),
          has_more: false
        })
      )
      const pieces = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const s = createServer(async (_req, res) => {
            res.writeHead(200, { "content-type": "application/json", date: DATE })
            // 7-byte pieces, each flushed on its own turn: most end inside a character
            for (let i = 0; i < body.length; i += 7) {
              res.write(body.subarray(i, i + 7))
              await new Promise((resolve) => setImmediate(resolve))
            }
            res.end()
          })
          await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))
          return s
        }),
        (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
      )
      const stripe = yield* client({ apiBase: `http://127.0.0.1:${(pieces.address() as AddressInfo).port}` })
      const page = yield* stripe.list("/v1/customers")
      assert.deepStrictEqual(
        page.data.map((c) => c.name),
        names
      )
      assert.strictEqual(page.versionTs, DATE_TS)
    })
  )

  it.scopedLive("fails a body cut short after the headers with StripeNetworkError, after retrying", () =>
    Effect.gen(function* () {
      let requests = 0
      const cut = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const s = createServer((_req, res) => {
            requests++
            res.writeHead(200, { "content-type": "application/json", "content-length": "1000", date: DATE })
            res.write('{"object":"list","data":[')
            res.socket?.destroy()
          })
          await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))
          return s
        }),
        (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
      )
      const stripe = yield* client({ apiBase: `http://127.0.0.1:${(cut.address() as AddressInfo).port}` })
      const r = yield* Effect.flip(stripe.list("/v1/customers"))
      assert.strictEqual(r._tag, "StripeNetworkError")
      // our 4 attempts, each of which the SDK tries once more (a closed connection), as with its own reading
      assert.strictEqual(requests, 8)
    })
  )

  it.scopedLive("retries network failures, then fails with StripeNetworkError", () =>
    Effect.gen(function* () {
      const closed = createServer()
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve)))
      const port = (closed.address() as AddressInfo).port
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.close(() => resolve())))
      const stripe = yield* client({ apiBase: `http://127.0.0.1:${port}` })
      const r = yield* Effect.flip(stripe.list("/v1/customers"))
      assert.strictEqual(r._tag, "StripeNetworkError")
      assert.notInclude(JSON.stringify(r), KEY)
    })
  )
})

describe("rate limiter", () => {
  it.scoped("holds an account's requests at its rate, shared by every stream, and per endpoint", () =>
    Effect.gen(function* () {
      const limiters = yield* RateLimit.make({ perAccount: 4, perEndpoint: 2 })
      const done: Array<string> = []
      const run = (account: string, endpoint: string, tag: string) =>
        limiters.limit(
          account,
          endpoint,
          Effect.sync(() => done.push(tag))
        )
      // 8 requests on two endpoints of one account, plus 2 on another account
      const fibers = yield* Effect.forkAll(
        [
          ...Array.from({ length: 4 }, (_, i) => run("acct_a", "GET /v1/customers", `a-cus-${i}`)),
          ...Array.from({ length: 4 }, (_, i) => run("acct_a", "GET /v1/charges", `a-ch-${i}`)),
          run("acct_b", "GET /v1/customers", "b-cus-0"),
          run("acct_b", "GET /v1/customers", "b-cus-1")
        ],
        { discard: false }
      )
      yield* Effect.yieldNow({ priority: 1 })
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      // at t=0: the burst of each endpoint bucket (2 each), within acct_a's bucket of 4; acct_b apart
      assert.strictEqual(done.filter((t) => t.startsWith("a-")).length, 4)
      assert.strictEqual(done.filter((t) => t.startsWith("a-cus")).length, 2)
      assert.strictEqual(done.filter((t) => t.startsWith("b-")).length, 2)
      // one endpoint token every 500 ms, one account token every 250 ms
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(done.filter((t) => t.startsWith("a-")).length, 6)
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(done.filter((t) => t.startsWith("a-")).length, 8)
      yield* Fiber.join(fibers)
      assert.strictEqual(done.length, 10)
    })
  )

  it.scoped("never lets an account exceed its rate over a longer run", () =>
    Effect.gen(function* () {
      const limiters = yield* RateLimit.make({ perAccount: 5, perEndpoint: 100 })
      let count = 0
      yield* Effect.forkAll(
        Array.from({ length: 30 }, (_, i) =>
          limiters.limit(
            "platform",
            `GET /v1/e${i % 3}`,
            Effect.sync(() => count++)
          )
        )
      )
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      assert.strictEqual(count, 5) // the burst
      const seenAt: Array<number> = []
      for (let s = 1; s <= 5; s++) {
        yield* TestClock.adjust("1 second")
        seenAt.push(count)
      }
      assert.deepStrictEqual(seenAt, [10, 15, 20, 25, 30])
    })
  )
})

describe("in-flight gate", () => {
  it.effect("runs at most its permits at once, the others in arrival order", () =>
    Effect.gen(function* () {
      const gate = RateLimit.makeGate(2)
      const started: Array<number> = []
      const latches = yield* Effect.forEach([0, 1, 2, 3, 4], () => Deferred.make<void>())
      const fibers = yield* Effect.forEach(latches, (latch, i) =>
        Effect.fork(
          gate.withPermit(
            Effect.zipRight(
              Effect.sync(() => started.push(i)),
              Deferred.await(latch)
            )
          )
        )
      )
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      assert.deepStrictEqual(started, [0, 1])
      assert.deepStrictEqual(gate.state(), { free: 0, waiting: 3 })
      yield* Deferred.succeed(latches[1]!, undefined)
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      assert.deepStrictEqual(started, [0, 1, 2])
      for (const latch of latches) yield* Deferred.succeed(latch, undefined)
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(started, [0, 1, 2, 3, 4])
      assert.deepStrictEqual(gate.state(), { free: 2, waiting: 0 })
    })
  )

  it.effect(
    "an interrupted waiter leaves the queue; a failed or interrupted holder gives its permit back",
    () =>
      Effect.gen(function* () {
        const gate = RateLimit.makeGate(1)
        const hold = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(gate.withPermit(Deferred.await(hold)))
        const waiter = yield* Effect.fork(gate.withPermit(Effect.void))
        for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
        assert.deepStrictEqual(gate.state(), { free: 0, waiting: 1 })
        yield* Fiber.interrupt(waiter)
        assert.deepStrictEqual(gate.state(), { free: 0, waiting: 0 })
        yield* Fiber.interrupt(holder)
        assert.deepStrictEqual(gate.state(), { free: 1, waiting: 0 })
        const failed = yield* Effect.either(gate.withPermit(Effect.fail("boom")))
        assert.isTrue(Either.isLeft(failed))
        assert.deepStrictEqual(gate.state(), { free: 1, waiting: 0 })
      })
  )
})
