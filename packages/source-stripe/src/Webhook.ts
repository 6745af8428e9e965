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
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
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
  MetricLabel,
  Redacted,
  Runtime,
  type Scope,
  Stream
} from "effect"
import { render } from "./internal/prometheus.js"
import { Appender } from "./internal/webhookAppender.js"
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
    const expected = createHmac("sha256", keyOf(secret)).update(`${timestamp}.`).update(body).digest()
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
  /**
   * How long the first request of a batch waits for others to join it (default 0: an event goes
   * at once when no append is in flight, and the events that arrive meanwhile make the next batch).
   */
  readonly lingerMillis?: number | undefined
  /** Appends in flight at once (default 1: batches grow with the load while one is in flight). */
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
const appendDurationMetric = PipelineMetrics.appendDuration.pipe(Metric.tagged("source", "webhook"))
const noTags: ReadonlyArray<MetricLabel.MetricLabel> = []
// Tagged metrics compute their full tags on every update unless given the same array each time.
const webhookTag = [MetricLabel.make("source", "webhook")]
const eventsAppendedTotal = PipelineMetrics.eventsAppended
const eventsSkippedTotal = PipelineMetrics.eventsSkipped

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

/** The Node `IncomingMessage` under a request of `@effect/platform-node`, when that is what serves it. */
const nodeSource = (request: HttpServerRequest.HttpServerRequest): NodeBody | undefined => {
  const source: unknown = (request as { readonly source?: unknown }).source
  return typeof source === "object" &&
    source !== null &&
    "on" in source &&
    "off" in source &&
    "readableEnded" in source &&
    source.readableEnded === false
    ? (source as NodeBody)
    : undefined
}

const json = (status: number, body: unknown) =>
  HttpServerResponse.text(JSON.stringify(body), { status, contentType: "application/json" })

const isPath = (path: string): path is `/${string}` => path.startsWith("/")

const ok = json(200, { received: true })
const notFound = Effect.succeed(json(404, { error: { reason: "not_found", message: "no such route" } }))
const notAllowed = (allow: string) =>
  Effect.succeed(
    HttpServerResponse.text(
      JSON.stringify({ error: { reason: "method_not_allowed", message: `use ${allow}` } }),
      { status: 405, contentType: "application/json", headers: { allow } }
    )
  )

/**
 * Builds the webhook app: `POST <path>`, `/healthz`, `/readyz` and `/metrics`, with its appender
 * running for the life of the scope.
 *
 * The webhook route is one `Effect.async` per request: the body is read straight from Node's
 * `IncomingMessage` when served by `@effect/platform-node` (a stream elsewhere), verified, converted
 * and queued for the appender in plain callbacks, and the request resumes once with its answer. Every
 * extra step through the fiber runtime per request costs CPU that the server has not got to spare.
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<HttpApp.Default, never, EventLog | Scope.Scope> =>
  Effect.gen(function* () {
    if (options.secrets.length === 0) return yield* Effect.dieMessage("Webhook.make: no webhook secret given")
    const path = options.path ?? "/webhooks"
    if (!isPath(path)) return yield* Effect.dieMessage(`Webhook.make: the path must start with "/": ${path}`)
    const log = yield* EventLog
    const timeout = Duration.decode(options.appendTimeout ?? "10 seconds")
    const maxBatchSize = options.maxBatchSize ?? 500
    const appender = new Appender(
      (events) => Metric.trackDuration(log.append({ events }), appendDurationMetric),
      Runtime.runFork(yield* Effect.runtime<never>()),
      {
        maxBatchSize,
        lingerMillis: options.lingerMillis ?? 0,
        concurrency: options.appendConcurrency ?? 1,
        timeout,
        capacity: maxBatchSize * 20
      },
      (size, r) => {
        batchSize.unsafeUpdate(size, noTags)
        eventsAppendedTotal.unsafeUpdate(r.appended, webhookTag)
        eventsSkippedTotal.unsafeUpdate(r.skipped, webhookTag)
      }
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => appender.close()))

    const receiver = new Receiver({
      secrets: options.secrets,
      platformAccountId: options.platformAccountId,
      toleranceSeconds: options.toleranceSeconds ?? 300,
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      appender
    })
    // Requests in flight; closing the scope waits for them before the appender stops (graceful shutdown).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        const deadline = Date.now() + Duration.toMillis(timeout) + 1000
        while (receiver.inFlight > 0 && Date.now() < deadline) yield* Effect.sleep("10 millis")
      })
    )

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
    const healthz = Effect.succeed(HttpServerResponse.text("ok"))

    // Routing by hand: four fixed paths do not need a router's context copy and fiber-ref swap per request.
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const url = request.url
      const query = url.indexOf("?")
      const pathname = query < 0 ? url : url.slice(0, query)
      const method = request.method
      if (pathname === path) return method === "POST" ? receiver.receive(request) : notAllowed("POST")
      const get = method === "GET" || method === "HEAD"
      switch (pathname) {
        case "/healthz":
          return get ? healthz : notAllowed("GET")
        case "/readyz":
          return get ? readyz : notAllowed("GET")
        case "/metrics":
          return get ? metrics : notAllowed("GET")
        default:
          return notFound
      }
    })
  })

/** A refusal: counted by reason, logged at debug level, answered as JSON. */
const refusal = (status: number, reason: RejectReason, message: string) =>
  Effect.as(
    Effect.zipRight(
      Effect.sync(() => rejectedWith(reason).unsafeUpdate(1, noTags)),
      Effect.logDebug(`webhook refused (${status} ${reason}): ${message}`)
    ),
    json(status, { error: { reason, message } })
  )

type Resume = (effect: Effect.Effect<HttpServerResponse.HttpServerResponse>) => void

/** The webhook route's work per request, in plain callbacks (see `make`). */
class Receiver {
  inFlight = 0
  constructor(
    readonly options: {
      readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
      readonly platformAccountId: string
      readonly toleranceSeconds: number
      readonly maxBodyBytes: number
      readonly appender: Appender
    }
  ) {}

  receive(
    request: HttpServerRequest.HttpServerRequest
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> {
    const started = Date.now()
    eventsReceived.unsafeUpdate(1, noTags)
    const max = this.options.maxBodyBytes
    const length = request.headers["content-length"]
    if (length !== undefined) {
      const n = Number(length)
      if (!Number.isFinite(n) || n > max) return this.tooLarge()
    }
    const signature = request.headers["stripe-signature"]
    // On Node, straight from the IncomingMessage (the hot path: no stream machinery per request).
    const source = nodeSource(request)
    if (source !== undefined) {
      return Effect.async<HttpServerResponse.HttpServerResponse>((resume) => {
        const reception = new NodeReception(this, source, signature, started, resume)
        return Effect.sync(() => reception.abandon())
      })
    }
    // Elsewhere: count while reading, keep nothing past the limit, and drain the rest.
    return request.stream.pipe(
      Stream.runFold({ chunks: [] as Array<Uint8Array>, size: 0 }, (acc, chunk) => {
        acc.size += chunk.length
        if (acc.size <= max) acc.chunks.push(chunk)
        return acc
      }),
      Effect.matchEffect({
        onFailure: () => this.unreadable(),
        onSuccess: (acc) =>
          acc.size > max
            ? this.tooLarge()
            : Effect.async<HttpServerResponse.HttpServerResponse>((resume) => {
                this.inFlight++
                this.accept(Buffer.concat(acc.chunks), signature, started, resume)
              })
      })
    )
  }

  tooLarge() {
    return refusal(413, "too_large", `the body is larger than ${this.options.maxBodyBytes} bytes`)
  }

  unreadable() {
    return refusal(400, "unreadable", "the body could not be read")
  }

  /**
   * Verifies and converts a body, then queues its event; `resume` gets the answer once it is stored
   * (or why not). The caller counted the request in `inFlight`; this ends it.
   */
  accept(body: Uint8Array, signature: string | undefined, started: number, resume: Resume): void {
    const decided = this.decide(body, signature, started)
    if (Either.isLeft(decided)) {
      this.refuse(resume, ...decided.left)
      return
    }
    this.options.appender.submit(decided.right, (error) => {
      this.inFlight--
      if (error !== undefined) {
        resume(refusal(503, "unavailable", error.message))
        return
      }
      eventsAcknowledged.unsafeUpdate(1, noTags)
      ackDuration.unsafeUpdate(Duration.millis(Date.now() - started), noTags)
      resume(Effect.succeed(ok))
    })
  }

  /** Verifies and converts a body, synchronously: the event, or why it is refused. */
  decide(
    body: Uint8Array,
    signature: string | undefined,
    started: number
  ): Either.Either<Event.Event, readonly [number, RejectReason, string]> {
    const verified = verifySignature(body, signature, this.options.secrets, {
      toleranceSeconds: this.options.toleranceSeconds,
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
          platformAccountId: this.options.platformAccountId,
          receivedAt: new Date(started)
        }),
        (e) => [400, "invalid_event", e.message] as const
      )
    } catch (e) {
      // The envelope's constructor validates its fields (e.g. an id with spaces).
      return Either.left([400, "invalid_event", e instanceof Error ? e.message : String(e)])
    }
  }

  refuse(resume: Resume, status: number, reason: RejectReason, message: string): void {
    this.inFlight--
    resume(refusal(status, reason, message))
  }
}

/** Node's `IncomingMessage`, as far as reading a body goes. */
interface NodeBody {
  on(event: "data", listener: (chunk: Buffer) => void): unknown
  on(event: "end" | "error" | "close", listener: () => void): unknown
  off(event: "data", listener: (chunk: Buffer) => void): unknown
  off(event: "end" | "error" | "close", listener: () => void): unknown
}

/**
 * Reads one Node body in one callback per chunk (nothing kept past the limit, the rest drained),
 * then hands it to the receiver. Listeners are members, not closures named by the bundler.
 */
class NodeReception {
  private chunks: Array<Buffer> = []
  private size = 0
  private settled = false
  private readonly onData: (chunk: Buffer) => void
  private readonly onEnd: () => void
  private readonly onError: () => void

  constructor(
    private readonly receiver: Receiver,
    private readonly source: NodeBody,
    private readonly signature: string | undefined,
    private readonly started: number,
    private readonly resume: Resume
  ) {
    receiver.inFlight++
    this.onData = (chunk) => {
      this.size += chunk.length
      if (this.size <= receiver.options.maxBodyBytes) this.chunks.push(chunk)
    }
    this.onEnd = () => this.end()
    this.onError = () => this.fail()
    source.on("data", this.onData)
    source.on("end", this.onEnd)
    source.on("error", this.onError)
    // Closed before its end: the client went away mid-body.
    source.on("close", this.onError)
  }

  private end() {
    if (this.settled) return
    this.detach()
    const receiver = this.receiver
    if (this.size > receiver.options.maxBodyBytes) {
      receiver.inFlight--
      return this.resume(receiver.tooLarge())
    }
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size)
    this.chunks = []
    receiver.accept(body, this.signature, this.started, this.resume)
  }

  private fail() {
    if (this.settled) return
    this.detach()
    this.receiver.inFlight--
    this.resume(this.receiver.unreadable())
  }

  /** The request's fiber was interrupted before the body was read. */
  abandon() {
    if (this.settled) return
    this.detach()
    this.receiver.inFlight--
  }

  private detach() {
    this.settled = true
    this.source.off("data", this.onData)
    this.source.off("end", this.onEnd)
    this.source.off("error", this.onError)
    this.source.off("close", this.onError)
  }
}

/**
 * Serves the webhook app on the `HttpServer` provided (e.g. `NodeHttpServer.layer`) for the life of
 * the layer. Closing it stops accepting connections and lets requests in flight finish first.
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<never, never, EventLog | HttpServer.HttpServer> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const app = yield* make(options)
      const server = yield* HttpServer.HttpServer
      const serve =
        options.tracing === true
          ? HttpServer.serve(app)
          : HttpServer.serve(app).pipe(HttpMiddleware.withTracerDisabledWhen(() => true))
      // The app needs no service: served in a context of the server alone, because each request's
      // fiber copies its context (and compares it, service by service, when the platform provides
      // the request's scope), and a program's context can hold dozens of services.
      return Layer.provide(serve, Layer.succeed(HttpServer.HttpServer, server))
    })
  )
