import * as Http from "node:http"
import * as HttpServer from "@effect/platform/HttpServer"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { EventLog, LogPosition, Memory } from "@stripe-sync/core"
import { EventLogError } from "@stripe-sync/core/PipelineError"
import { Effect, Either, Layer, Redacted, Stream } from "effect"
import * as Webhook from "../src/Webhook.js"

const secret = Redacted.make("whsec_test_current")
const oldSecret = Redacted.make("whsec_test_previous")
const platform = "acct_platform"
const now = () => Math.floor(Date.now() / 1000)

let counter = 0
const stripeEvent = (overrides: Record<string, unknown> = {}) => ({
  id: `evt_test_${++counter}`,
  object: "event",
  api_version: "2026-10-28.endive",
  created: 1_700_000_000 + counter,
  type: "customer.updated",
  livemode: false,
  pending_webhooks: 1,
  data: { object: { id: `cus_${counter}`, object: "customer", email: `c${counter}@example.com` } },
  ...overrides
})

const baseUrl = HttpServer.addressFormattedWith((url) => Effect.succeed(url))

interface Sent {
  readonly status: number
  readonly body: string
}

const post = (
  body: string,
  headers: Record<string, string>,
  path = "/webhooks"
): Effect.Effect<Sent, never, HttpServer.HttpServer> =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async () => {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body
      })
      return { status: res.status, body: await res.text() }
    })
  )

const get = (path: string) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async () => {
      const res = await fetch(`${url}${path}`)
      return { status: res.status, body: await res.text() }
    })
  )

const signed = (payload: string, options: { secret?: Redacted.Redacted<string>; t?: number } = {}) =>
  post(payload, { "stripe-signature": Webhook.sign(payload, options.secret ?? secret, options.t ?? now()) })

/** Every event in the log (the memory log is final at once). */
const logged = Effect.gen(function* () {
  const log = yield* EventLog.EventLog
  const page = yield* log.read(LogPosition.zero, { limit: 100_000 })
  return page.events
})

const reason = (sent: Sent): string => (JSON.parse(sent.body) as { error: { reason: string } }).error.reason

const serverLayer = (options: Partial<Webhook.Options> = {}) =>
  Webhook.layer({ secrets: [secret, oldSecret], platformAccountId: platform, ...options }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

describe("Webhook.verifySignature", () => {
  const body = new TextEncoder().encode('{"id":"evt_1"}')
  const verify = (header: string | undefined, nowSeconds = 1_700_000_100, toleranceSeconds = 300) =>
    Webhook.verifySignature(body, header, [secret, oldSecret], { toleranceSeconds, nowSeconds })

  it("accepts a signature by any configured secret, among several v1 values", () => {
    assert.deepStrictEqual(verify(Webhook.sign(body, secret, 1_700_000_000)), Either.right(1_700_000_000))
    assert.deepStrictEqual(verify(Webhook.sign(body, oldSecret, 1_700_000_000)), Either.right(1_700_000_000))
    const other = Webhook.sign(body, "whsec_other", 1_700_000_000).split(",")[1]
    const good = Webhook.sign(body, secret, 1_700_000_000).split(",")[1]
    assert.isTrue(Either.isRight(verify(`t=1700000000,${other},${good},v0=abc`)))
  })

  it("names what is wrong", () => {
    const reasonOf = (e: Either.Either<number, Webhook.SignatureError>) =>
      Either.match(e, { onLeft: (l) => l.reason, onRight: () => "ok" })
    assert.strictEqual(reasonOf(verify(undefined)), "missing_signature")
    assert.strictEqual(reasonOf(verify("")), "missing_signature")
    assert.strictEqual(reasonOf(verify("garbage")), "malformed_signature")
    assert.strictEqual(reasonOf(verify("t=1700000000")), "malformed_signature")
    assert.strictEqual(reasonOf(verify("v1=00")), "malformed_signature")
    assert.strictEqual(reasonOf(verify(Webhook.sign(body, "whsec_other", 1_700_000_000))), "bad_signature")
    // The timestamp is signed: moving it breaks the signature.
    const moved = Webhook.sign(body, secret, 1_700_000_000).replace("t=1700000000", "t=1700000090")
    assert.strictEqual(reasonOf(verify(moved)), "bad_signature")
    assert.strictEqual(reasonOf(verify(Webhook.sign(body, secret, 1_699_999_799))), "stale_timestamp")
    assert.strictEqual(reasonOf(verify(Webhook.sign(body, secret, 1_699_999_800))), "ok")
    assert.strictEqual(reasonOf(verify(Webhook.sign(body, secret, 1_600_000_000), 1_700_000_100, 0)), "ok")
  })
})

describe("Webhook app", () => {
  layer(serverLayer().pipe(Layer.provideMerge(Memory.layer)), { excludeTestServices: true })((it) => {
    it.effect("stores a signed event, then answers 200", () =>
      Effect.gen(function* () {
        const event = stripeEvent()
        const sent = yield* signed(JSON.stringify(event))
        assert.deepStrictEqual(sent, { status: 200, body: '{"received":true}' })
        const stored = (yield* logged).find((e) => e.id === event.id)
        assert.isDefined(stored)
        assert.deepStrictEqual(
          {
            type: stored?.type,
            source: stored?.source,
            accountId: stored?.accountId,
            objectType: stored?.objectType,
            objectId: stored?.objectId,
            versionTs: stored?.versionTs,
            apiVersion: stored?.apiVersion,
            data: stored?.data
          },
          {
            type: "customer.updated",
            source: "webhook",
            accountId: platform,
            objectType: "customer",
            objectId: event.data.object.id,
            versionTs: event.created,
            apiVersion: "2026-10-28.endive",
            data: event.data.object
          }
        )
      })
    )

    it.effect("takes a Connect event's account, and accepts the previous secret (rotation)", () =>
      Effect.gen(function* () {
        const event = stripeEvent({ account: "acct_connected_1" })
        const sent = yield* signed(JSON.stringify(event), { secret: oldSecret })
        assert.strictEqual(sent.status, 200)
        const stored = (yield* logged).find((e) => e.id === event.id)
        assert.strictEqual(stored?.accountId, "acct_connected_1")
      })
    )

    it.effect("stores unknown event types and objects outside the catalog", () =>
      Effect.gen(function* () {
        const unknownType = stripeEvent({ type: "brand_new.thing_happened" })
        const outside = stripeEvent({
          type: "issuing_card.created",
          data: { object: { id: "ic_1", object: "issuing.card", last4: "4242" } }
        })
        assert.strictEqual((yield* signed(JSON.stringify(unknownType))).status, 200)
        assert.strictEqual((yield* signed(JSON.stringify(outside))).status, 200)
        const events = yield* logged
        assert.strictEqual(events.find((e) => e.id === unknownType.id)?.type, "brand_new.thing_happened")
        assert.strictEqual(events.find((e) => e.id === outside.id)?.objectType, "issuing.card")
      })
    )

    it.effect("acknowledges a duplicate delivery and stores the event once", () =>
      Effect.gen(function* () {
        const payload = JSON.stringify(stripeEvent())
        const id = (JSON.parse(payload) as { id: string }).id
        const results = yield* Effect.all([signed(payload), signed(payload), signed(payload)], {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(
          results.map((r) => r.status),
          [200, 200, 200]
        )
        assert.strictEqual((yield* logged).filter((e) => e.id === id).length, 1)
      })
    )

    it.effect("refuses bad input with 400 or 413 and stores nothing", () =>
      Effect.gen(function* () {
        const before = (yield* logged).length
        const event = stripeEvent()
        const payload = JSON.stringify(event)
        const wrong = yield* signed(payload, { secret: Redacted.make("whsec_wrong") })
        assert.deepStrictEqual([wrong.status, reason(wrong)], [400, "bad_signature"])
        const stale = yield* signed(payload, { t: now() - 301 })
        assert.deepStrictEqual([stale.status, reason(stale)], [400, "stale_timestamp"])
        const missing = yield* post(payload, {})
        assert.deepStrictEqual([missing.status, reason(missing)], [400, "missing_signature"])
        const header = Webhook.sign(payload, secret, now())
        const tampered = yield* post(payload.replace(event.data.object.email, "evil@example.com"), {
          "stripe-signature": header
        })
        assert.deepStrictEqual([tampered.status, reason(tampered)], [400, "bad_signature"])
        const notJson = yield* signed('{"id": "evt_x", ')
        assert.deepStrictEqual([notJson.status, reason(notJson)], [400, "invalid_json"])
        const notEvent = yield* signed(JSON.stringify({ id: "cus_1", object: "customer" }))
        assert.deepStrictEqual([notEvent.status, reason(notEvent)], [400, "invalid_event"])
        const big = JSON.stringify(stripeEvent({ padding: "x".repeat(2 * 1024 * 1024) }))
        const tooLarge = yield* signed(big)
        assert.deepStrictEqual([tooLarge.status, reason(tooLarge)], [413, "too_large"])
        assert.strictEqual((yield* logged).length, before)
        // The server still serves after all that.
        assert.strictEqual((yield* signed(JSON.stringify(stripeEvent()))).status, 200)
      })
    )

    it.effect("refuses a chunked body over the limit with 413 while reading it", () =>
      Effect.gen(function* () {
        const url = new URL(yield* baseUrl)
        const status = yield* Effect.async<number>((resume) => {
          const req = Http.request(
            {
              host: url.hostname,
              port: url.port,
              path: "/webhooks",
              method: "POST",
              headers: { "transfer-encoding": "chunked", "stripe-signature": "t=1,v1=00" }
            },
            (res) => {
              res.resume()
              res.on("end", () => resume(Effect.succeed(res.statusCode ?? 0)))
            }
          )
          req.on("error", () => resume(Effect.succeed(-1)))
          const chunk = Buffer.alloc(64 * 1024, "x")
          for (let i = 0; i < 32; i++) req.write(chunk)
          req.end()
        })
        assert.strictEqual(status, 413)
      })
    )

    it.effect("answers /healthz, /readyz and /metrics", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* get("/healthz"), { status: 200, body: "ok" })
        const ready = yield* get("/readyz")
        assert.strictEqual(ready.status, 200)
        assert.deepStrictEqual(JSON.parse(ready.body), {
          ready: true,
          checks: { database: { ok: true } },
          horizonHolders: []
        })
        const metrics = yield* get("/metrics")
        assert.strictEqual(metrics.status, 200)
        assert.match(metrics.body, /# TYPE stripe_sync_webhook_requests_total counter/)
        assert.match(metrics.body, /stripe_sync_webhook_rejected_total\{reason="bad_signature"\} [1-9]/)
        assert.match(metrics.body, /stripe_sync_webhook_rejected_total\{reason="too_large"\} [1-9]/)
        assert.match(metrics.body, /stripe_sync_events_appended_total\{source="webhook"\} [1-9]/)
        assert.match(metrics.body, /stripe_sync_webhook_ack_milliseconds_bucket\{[^}]*le="\+Inf"\} [1-9]/)
      })
    )
  })
})

/** The memory log with appends that take a while, as a database's do. */
const slowLog = Layer.effect(
  EventLog.EventLog,
  Effect.map(EventLog.EventLog, (log) => ({
    ...log,
    append: (batch: Parameters<typeof log.append>[0]) =>
      Effect.zipRight(Effect.sleep("20 millis"), log.append(batch))
  }))
).pipe(Layer.provideMerge(Memory.layer))

describe("Webhook app, appends taking a while", () => {
  layer(serverLayer().pipe(Layer.provideMerge(slowLog)), { excludeTestServices: true })((it) => {
    it.effect("groups concurrent requests into fewer appends", () =>
      Effect.gen(function* () {
        const events = Array.from({ length: 40 }, () => stripeEvent())
        const results = yield* Effect.forEach(events, (e) => signed(JSON.stringify(e)), {
          concurrency: "unbounded"
        })
        assert.isTrue(results.every((r) => r.status === 200))
        const ids = new Set<string>((yield* logged).map((e) => e.id))
        assert.isTrue(events.every((e) => ids.has(e.id)))
        const metrics = yield* get("/metrics")
        const sum = /stripe_sync_webhook_batch_size_sum (\d+)/.exec(metrics.body)
        const count = /stripe_sync_webhook_batch_size_count (\d+)/.exec(metrics.body)
        assert.isNotNull(sum)
        assert.isNotNull(count)
        // Some batch held more than one event.
        assert.isTrue(Number(sum?.[1]) > Number(count?.[1]))
      })
    )
  })
})

const failingLog = Layer.succeed(EventLog.EventLog, {
  append: () => Effect.fail(new EventLogError({ operation: "append", message: "connection refused" })),
  read: () => Effect.fail(new EventLogError({ operation: "read", message: "connection refused" })),
  head: Effect.fail(new EventLogError({ operation: "head", message: "connection refused" })),
  changes: Stream.empty,
  horizonHolders: Effect.succeed([])
})

describe("Webhook app, log unavailable", () => {
  layer(
    serverLayer({
      readiness: [{ name: "projections", check: Effect.succeed({ ok: false, detail: "not running" }) }],
      projectionLag: Effect.succeed([{ projection: "stripe_tables", events: 42 }])
    }).pipe(Layer.provideMerge(failingLog)),
    { excludeTestServices: true }
  )((it) => {
    it.effect("answers 503 so that Stripe retries", () =>
      Effect.gen(function* () {
        const sent = yield* signed(JSON.stringify(stripeEvent()))
        assert.deepStrictEqual([sent.status, reason(sent)], [503, "unavailable"])
      })
    )

    it.effect("is not ready, says why, and reports the projection lag", () =>
      Effect.gen(function* () {
        const ready = yield* get("/readyz")
        assert.strictEqual(ready.status, 503)
        assert.deepStrictEqual(JSON.parse(ready.body), {
          ready: false,
          checks: {
            database: { ok: false, detail: "connection refused" },
            projections: { ok: false, detail: "not running" }
          },
          horizonHolders: []
        })
        const metrics = yield* get("/metrics")
        assert.match(metrics.body, /stripe_sync_projection_lag_events\{projection="stripe_tables"\} 42/)
      })
    )
  })
})
