/**
 * The webhook source: an `@effect/platform` HTTP app that verifies Stripe's signature over the raw
 * body, appends the event to the log (concurrent requests grouped into one append), and answers
 * 200 only once the event is committed. Also `GET /healthz`, `GET /readyz` and `GET /metrics`.
 *
 * Answers: 200 stored (or already stored); 400 missing, malformed or wrong signature, stale
 * timestamp, a body that is not JSON or not a Stripe event (nothing stored); 413 a body over the
 * limit; 503 the log is unavailable (Stripe retries).
 *
 * @since 0.1.0
 */
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { CheckpointStore } from "@stripe-sync/core/CheckpointStore"
import type * as Event from "@stripe-sync/core/Event"
import { EventLog, type HorizonHolder } from "@stripe-sync/core/EventLog"
import * as PipelineMetrics from "@stripe-sync/core/PipelineMetrics"
import {
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  Metric,
  MetricBoundaries,
  Redacted,
  Runtime,
  type Scope,
  Stream
} from "effect"
import { render } from "./internal/prometheus.js"
import * as StripeEvent from "./StripeEvent.js"

/** Why a request was refused (the `reason` label of the rejected counter). */
export type RejectReason =
  | "missing_signature"
  | "malformed_signature"
  | "bad_signature"
  | "stale_timestamp"
  | "invalid_json"
  | "invalid_event"
  | "too_large"
  | "unreadable"
  | "unavailable"

/** A signature that does not prove the body came from Stripe with one of our secrets. */
export class SignatureError extends Data.TaggedError("SignatureError")<{
  readonly reason: "missing_signature" | "malformed_signature" | "bad_signature" | "stale_timestamp"
  readonly message: string
}> {}

/** `Stripe-Signature` for a payload: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">` (for tests and tools). */
export const sign = (
  payload: string | Uint8Array,
  secret: Redacted.Redacted<string> | string,
  timestamp: number
) =>
  `t=${timestamp},v1=${hmac(typeof secret === "string" ? secret : Redacted.value(secret), timestamp, payload)}`

const hmac = (secret: string | KeyObject, timestamp: number | string, payload: string | Uint8Array): string =>
  createHmac("sha256", secret).update(`${timestamp}.`).update(payload).digest("hex")

/** Each secret imported once as a key (importing it on every request costs more than the HMAC). */
const keys = new WeakMap<Redacted.Redacted<string>, KeyObject>()
const keyOf = (secret: Redacted.Redacted<string>): KeyObject => {
  let key = keys.get(secret)
  if (key === undefined) {
    key = createSecretKey(Buffer.from(Redacted.value(secret), "utf8"))
    keys.set(secret, key)
  }
  return key
}

const hexPattern = /^[0-9a-f]{64}$/

/**
 * Verifies a `Stripe-Signature` header over the raw body, as Stripe documents it: the `t` timestamp
 * signed with the body (`"<t>.<body>"`, HMAC-SHA256, hex), compared timing-safe with every `v1`
 * signature of the header against every secret (several during a rotation), and the timestamp no
 * older than `toleranceSeconds` (0 turns the check off). Returns the timestamp.
 *
 * @since 0.1.0
 */
export const verifySignature = (
  body: Uint8Array,
  header: string | undefined,
  secrets: ReadonlyArray<Redacted.Redacted<string>>,
  options: { readonly toleranceSeconds: number; readonly nowSeconds: number }
): Either.Either<number, SignatureError> => {
  if (header === undefined || header.trim().length === 0) {
    return Either.left(
      new SignatureError({ reason: "missing_signature", message: "no Stripe-Signature header" })
    )
  }
  let timestamp: string | undefined
  const signatures: Array<Buffer> = []
  for (const part of header.split(",")) {
    const eq = part.indexOf("=")
    if (eq <= 0) continue
    const key = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (key === "t") timestamp = value
    else if (key === "v1" && hexPattern.test(value)) signatures.push(Buffer.from(value, "hex"))
  }
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) {
    return Either.left(
      new SignatureError({
        reason: "malformed_signature",
        message: "the Stripe-Signature header has no timestamp"
      })
    )
  }
  if (signatures.length === 0) {
    return Either.left(
      new SignatureError({
        reason: "malformed_signature",
        message: "the Stripe-Signature header has no v1 signature"
      })
    )
  }
  let matched = false
  for (const secret of secrets) {
    const expected = Buffer.from(hmac(keyOf(secret), timestamp, body), "hex")
    // Every candidate is compared (no early exit), each comparison in constant time.
    for (const signature of signatures) if (timingSafeEqual(expected, signature)) matched = true
  }
  if (!matched) {
    return Either.left(
      new SignatureError({
        reason: "bad_signature",
        message: "no signature matches the body with any configured webhook secret"
      })
    )
  }
  const t = Number(timestamp)
  if (options.toleranceSeconds > 0 && options.nowSeconds - t > options.toleranceSeconds) {
    return Either.left(
      new SignatureError({
        reason: "stale_timestamp",
        message: `the signature's timestamp is ${options.nowSeconds - t} s old (tolerance ${options.toleranceSeconds} s)`
      })
    )
  }
  return Either.right(t)
}

/** The outcome of one readiness check. */
export interface CheckResult {
  readonly ok: boolean
  readonly detail?: string | undefined
}

/** A named readiness check (`/readyz` is 200 when every check is ok). */
export interface ReadinessCheck {
  readonly name: string
  readonly check: Effect.Effect<CheckResult>
}

/** How far behind the log's head a projection is. */
export interface ProjectionLag {
  readonly projection: string
  /** Events between the projection's checkpoint and the head of the log (at most). */
  readonly events: number
}

/**
 * Options of the webhook app.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Webhook signing secrets (`whsec_…`); an event signed with any of them is accepted (rotation). */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** The account of the API key (GET /v1/account): the account of events without `account`. */
  readonly platformAccountId: string
  /** Path of the webhook route (default `/webhooks`). */
  readonly path?: string | undefined
  /** Oldest accepted signature timestamp, in seconds (default 300; 0 turns the check off). */
  readonly toleranceSeconds?: number | undefined
  /** Largest accepted body in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number | undefined
  /** Events per append at most (default 500). */
  readonly maxBatchSize?: number | undefined
  /** How long the first request of a batch waits for others to join it (default 2 ms). */
  readonly lingerMillis?: number | undefined
  /** Appends in flight at once (default 2). */
  readonly appendConcurrency?: number | undefined
  /** How long a request waits for its event to be stored before answering 503 (default 10 s). */
  readonly appendTimeout?: Duration.DurationInput | undefined
  /** Readiness checks beside the database (e.g. "projections running"). */
  readonly readiness?: ReadonlyArray<ReadinessCheck> | undefined
  /** A server span per request (default false: the webhook route is hot, and spans cost). */
  readonly tracing?: boolean | undefined
  /** Projection lag for `/metrics` (e.g. `checkpointLag` provided with the sink). */
  readonly projectionLag?: Effect.Effect<ReadonlyArray<ProjectionLag>> | undefined
}

/** Requests to the webhook route. */
export const eventsReceived = Metric.counter("stripe_sync_webhook_requests_total", {
  description: "Webhook requests received",
  incremental: true
})

/** Webhook events acknowledged with 200 (stored now or already stored). */
export const eventsAcknowledged = Metric.counter("stripe_sync_webhook_acknowledged_total", {
  description: "Webhook events acknowledged after being committed to the log",
  incremental: true
})

/** Refused requests, tagged by `reason`. */
export const eventsRejected = Metric.counter("stripe_sync_webhook_rejected_total", {
  description: "Webhook requests refused, by reason",
  incremental: true
})

/** Time from receipt to the answer of an acknowledged webhook. */
export const ackDuration = Metric.timerWithBoundaries(
  "stripe_sync_webhook_ack_milliseconds",
  MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 16 }).values,
  "Time from receipt of a webhook to its acknowledgement"
)

/** Events per grouped append. */
export const batchSize = Metric.histogram(
  "stripe_sync_webhook_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 11 }),
  "Webhook events per append"
)

const rejectedWith = (reason: RejectReason) => eventsRejected.pipe(Metric.tagged("reason", reason))
const appendedMetric = PipelineMetrics.eventsAppended.pipe(Metric.tagged("source", "webhook"))
const skippedMetric = PipelineMetrics.eventsSkipped.pipe(Metric.tagged("source", "webhook"))
const appendDurationMetric = PipelineMetrics.appendDuration.pipe(Metric.tagged("source", "webhook"))

class LogUnavailable extends Data.TaggedError("LogUnavailable")<{ readonly message: string }> {}

interface Waiter {
  readonly event: Event.Event
  readonly resume: (effect: Effect.Effect<void, LogUnavailable>) => void
}

/**
 * The lag of every registered projection: the head of the log minus its checkpoint's position.
 *
 * @since 0.1.0
 */
export const checkpointLag: Effect.Effect<
  ReadonlyArray<ProjectionLag>,
  unknown,
  EventLog | CheckpointStore
> = Effect.gen(function* () {
  const log = yield* EventLog
  const checkpoints = yield* CheckpointStore
  const head = yield* log.head
  const list = yield* checkpoints.list
  return list.map((c) => ({
    projection: c.projection,
    events: head.position > c.position.position ? Number(head.position - c.position.position) : 0
  }))
})

/**
 * The appender: a request parks its event and waits; the first event of a batch arms a short
 * linger timer, then one append (at most `concurrency` in flight) takes everything waiting, up to
 * `maxBatchSize`, and resumes every request of the batch. Events that arrive while appends are in
 * flight go in the next batch as soon as one ends. Kept in plain JS: this runs for every request.
 */
const makeBatcher = (
  log: EventLog["Type"],
  options: {
    readonly maxBatchSize: number
    readonly lingerMillis: number
    readonly concurrency: number
    readonly timeout: Duration.Duration
  }
) =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const capacity = options.maxBatchSize * 20
    let waiting: Array<Waiter> = []
    let appending = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    let closed = false
    const unavailable = new LogUnavailable({ message: "the event log is unavailable" })
    const full = new LogUnavailable({ message: "too many events waiting for the event log" })

    // One timer per batch, not per request: a hung append fails every request of its batch.
    const appendBatch = (items: ReadonlyArray<Waiter>) =>
      log.append({ events: items.map((w) => w.event) }).pipe(
        Effect.timeoutFail({
          duration: options.timeout,
          onTimeout: () => new LogUnavailable({ message: "timed out waiting for the event log" })
        }),
        Metric.trackDuration(appendDurationMetric),
        Effect.matchCauseEffect({
          onSuccess: (r) =>
            Effect.sync(() => {
              batchSize.unsafeUpdate(items.length, [])
              appendedMetric.unsafeUpdate(r.appended, [])
              skippedMetric.unsafeUpdate(r.skipped, [])
              for (const w of items) w.resume(Effect.void)
            }),
          onFailure: (cause) =>
            Effect.zipRight(
              Effect.logWarning("webhook append failed; answering 503 so Stripe retries", cause),
              Effect.sync(() => {
                for (const w of items) w.resume(Effect.fail(unavailable))
              })
            )
        }),
        Effect.ensuring(
          Effect.sync(() => {
            appending--
            if (waiting.length > 0) flush()
          })
        )
      )

    const flush = () => {
      if (timer !== undefined) {
        clearTimeout(timer)
        timer = undefined
      }
      while (waiting.length > 0 && appending < options.concurrency) {
        let items: Array<Waiter>
        if (waiting.length <= options.maxBatchSize) {
          items = waiting
          waiting = []
        } else {
          items = waiting.slice(0, options.maxBatchSize)
          waiting = waiting.slice(options.maxBatchSize)
        }
        appending++
        runFork(appendBatch(items))
      }
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        if (timer !== undefined) clearTimeout(timer)
        for (const w of waiting) w.resume(Effect.fail(unavailable))
        waiting = []
      })
    )

    return (event: Event.Event): Effect.Effect<void, LogUnavailable> =>
      Effect.async<void, LogUnavailable>((resume) => {
        // Full (the log is far behind) or closing: refuse at once with 503 rather than queue without bound.
        if (closed || waiting.length >= capacity) return resume(Effect.fail(full))
        waiting.push({ event, resume })
        if (appending >= options.concurrency) return
        if (waiting.length >= options.maxBatchSize || options.lingerMillis <= 0) flush()
        else if (timer === undefined) timer = setTimeout(flush, options.lingerMillis)
      })
  })

class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<Record<never, never>> {}

class BodyUnreadable extends Data.TaggedError("BodyUnreadable")<Record<never, never>> {}

/** The Node `IncomingMessage` under a request of `@effect/platform-node`, when that is what serves it. */
interface NodeReadable {
  on(event: "data", listener: (chunk: Buffer) => void): unknown
  on(event: "end" | "error", listener: () => void): unknown
  off(event: "data", listener: (chunk: Buffer) => void): unknown
  off(event: "end" | "error", listener: () => void): unknown
}

const nodeSource = (request: HttpServerRequest.HttpServerRequest): NodeReadable | undefined => {
  const source: unknown = (request as { readonly source?: unknown }).source
  return typeof source === "object" &&
    source !== null &&
    "on" in source &&
    "off" in source &&
    "readableEnded" in source &&
    source.readableEnded === false
    ? (source as NodeReadable)
    : undefined
}

/** Reads a Node body in one callback per chunk: nothing kept past `max`, the rest drained. */
const readNode = (source: NodeReadable, max: number) =>
  Effect.async<Uint8Array, BodyTooLarge | BodyUnreadable>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= max) chunks.push(chunk)
    }
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    const onEnd = () => {
      cleanup()
      if (size > max) resume(Effect.fail(new BodyTooLarge()))
      else resume(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(new BodyUnreadable()))
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(cleanup)
  })

/** Reads the raw body, refusing it (without buffering past the limit) once it is larger than `max`. */
const readBody = (
  request: HttpServerRequest.HttpServerRequest,
  max: number
): Effect.Effect<Uint8Array, BodyTooLarge | BodyUnreadable> => {
  const length = request.headers["content-length"]
  if (length !== undefined) {
    const n = Number(length)
    if (!Number.isFinite(n) || n > max) return Effect.fail(new BodyTooLarge())
  }
  // On Node, straight from the IncomingMessage (the hot path: no stream machinery per request).
  const source = nodeSource(request)
  if (source !== undefined) return readNode(source, max)
  // Elsewhere: count while reading, keep nothing past the limit, and drain the rest.
  return request.stream.pipe(
    Stream.runFold({ chunks: [] as Array<Uint8Array>, size: 0 }, (acc, chunk) => {
      acc.size += chunk.length
      if (acc.size <= max) acc.chunks.push(chunk)
      return acc
    }),
    Effect.mapError(() => new BodyUnreadable()),
    Effect.flatMap((acc) =>
      acc.size > max ? Effect.fail(new BodyTooLarge()) : Effect.succeed(Buffer.concat(acc.chunks))
    )
  )
}

const json = (status: number, body: unknown) =>
  HttpServerResponse.text(JSON.stringify(body), { status, contentType: "application/json" })

const isPath = (path: string): path is `/${string}` => path.startsWith("/")

const ok = json(200, { received: true })

/**
 * Builds the webhook app: the router of `POST <path>`, `/healthz`, `/readyz` and `/metrics`, with its
 * appender fibers running for the life of the scope.
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<HttpRouter.HttpRouter, never, EventLog | Scope.Scope> =>
  Effect.gen(function* () {
    if (options.secrets.length === 0) return yield* Effect.dieMessage("Webhook.make: no webhook secret given")
    const path = options.path ?? "/webhooks"
    if (!isPath(path)) return yield* Effect.dieMessage(`Webhook.make: the path must start with "/": ${path}`)
    const log = yield* EventLog
    const maxBody = options.maxBodyBytes ?? 1024 * 1024
    const tolerance = options.toleranceSeconds ?? 300
    const timeout = Duration.decode(options.appendTimeout ?? "10 seconds")
    const submit = yield* makeBatcher(log, {
      maxBatchSize: options.maxBatchSize ?? 500,
      lingerMillis: options.lingerMillis ?? 2,
      concurrency: options.appendConcurrency ?? 2,
      timeout
    })

    // Requests in flight; closing the scope waits for them before the appenders stop (graceful shutdown).
    let inFlight = 0
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        const deadline = Date.now() + Duration.toMillis(timeout) + 1000
        while (inFlight > 0 && Date.now() < deadline) yield* Effect.sleep("10 millis")
      })
    )

    const refuseSync = (status: number, reason: RejectReason, message: string) =>
      Effect.as(
        Effect.sync(() => rejectedWith(reason).unsafeUpdate(1, [])),
        json(status, { error: { reason, message } })
      ).pipe(Effect.tap(() => Effect.logDebug(`webhook refused (${status} ${reason}): ${message}`)))

    /** Verifies and converts a body, synchronously: the event, or why it is refused. */
    const decide = (
      body: Uint8Array,
      signature: string | undefined,
      started: number
    ): Either.Either<Event.Event, readonly [number, RejectReason, string]> => {
      const verified = verifySignature(body, signature, options.secrets, {
        toleranceSeconds: tolerance,
        nowSeconds: Math.floor(started / 1000)
      })
      if (Either.isLeft(verified)) return Either.left([400, verified.left.reason, verified.left.message])
      let parsed: unknown
      try {
        parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"))
      } catch {
        return Either.left([400, "invalid_json", "the body is not JSON"])
      }
      try {
        return Either.mapLeft(
          StripeEvent.toEnvelope(parsed, {
            source: "webhook",
            platformAccountId: options.platformAccountId,
            receivedAt: new Date(started)
          }),
          (e) => [400, "invalid_event", e.message] as const
        )
      } catch (e) {
        // The envelope's constructor validates its fields (e.g. an id with spaces).
        return Either.left([400, "invalid_event", e instanceof Error ? e.message : String(e)])
      }
    }

    const handle = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const started = Date.now()
      eventsReceived.unsafeUpdate(1, [])
      return Effect.matchEffect(readBody(request, maxBody), {
        onFailure: (e) =>
          e._tag === "BodyTooLarge"
            ? refuseSync(413, "too_large", `the body is larger than ${maxBody} bytes`)
            : refuseSync(400, "unreadable", "the body could not be read"),
        onSuccess: (body) => {
          const decided = decide(body, request.headers["stripe-signature"], started)
          if (Either.isLeft(decided)) return refuseSync(...decided.left)
          return Effect.matchEffect(submit(decided.right), {
            onFailure: (e) => refuseSync(503, "unavailable", e.message),
            onSuccess: () =>
              Effect.sync(() => {
                eventsAcknowledged.unsafeUpdate(1, [])
                ackDuration.unsafeUpdate(Duration.millis(Date.now() - started), [])
                return ok
              })
          })
        }
      })
    })
    const receive = Effect.suspend(() => {
      inFlight++
      return Effect.ensuring(
        handle,
        Effect.sync(() => {
          inFlight--
        })
      )
    })

    const holders = log.horizonHolders.pipe(
      Effect.timeout("2 seconds"),
      Effect.catchAll(() => Effect.succeed<ReadonlyArray<HorizonHolder>>([]))
    )
    const database: ReadinessCheck = {
      name: "database",
      check: log.head.pipe(
        Effect.timeout("2 seconds"),
        Effect.match({
          onFailure: (e) => ({ ok: false, detail: e._tag === "TimeoutException" ? "timed out" : e.message }),
          onSuccess: () => ({ ok: true })
        })
      )
    }
    const checks = [database, ...(options.readiness ?? [])]
    const readyz = Effect.gen(function* () {
      const results = yield* Effect.forEach(checks, (c) => Effect.map(c.check, (r) => [c.name, r] as const), {
        concurrency: "unbounded"
      })
      const ready = results.every(([, r]) => r.ok)
      const horizon = ready ? yield* holders : []
      return json(ready ? 200 : 503, {
        ready,
        checks: Object.fromEntries(results),
        // Open transactions that hold back every reader of the log (DESIGN.md: the xmin horizon).
        horizonHolders: horizon
      })
    })

    const metrics = Effect.gen(function* () {
      if (options.projectionLag !== undefined) {
        const lags = yield* options.projectionLag
        for (const l of lags) {
          yield* Metric.set(
            PipelineMetrics.projectionLag.pipe(Metric.tagged("projection", l.projection)),
            l.events
          )
        }
      }
      const snapshot = yield* Metric.snapshot
      return HttpServerResponse.text(render(snapshot), {
        contentType: "text/plain; version=0.0.4; charset=utf-8"
      })
    })

    return HttpRouter.empty.pipe(
      HttpRouter.post(path, receive),
      HttpRouter.get("/healthz", Effect.succeed(HttpServerResponse.text("ok"))),
      HttpRouter.get("/readyz", readyz),
      HttpRouter.get("/metrics", metrics)
    )
  })

/**
 * Serves the webhook app on the `HttpServer` provided (e.g. `NodeHttpServer.layer`) for the life of
 * the layer. Closing it stops accepting connections and lets requests in flight finish first.
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<never, never, EventLog | HttpServer.HttpServer> =>
  Layer.unwrapScoped(
    Effect.map(make(options), (router) =>
      options.tracing === true
        ? HttpServer.serve(router)
        : HttpServer.serve(router).pipe(HttpMiddleware.withTracerDisabledWhen(() => true))
    )
  )
