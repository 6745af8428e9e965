/**
 * `stripe-sync serve`: the webhook server plus the stripe tables projection, until interrupted; and
 * `serveWebhooks`, the same as an effect for other commands (`sync` live mode) and programs.
 */
import * as Http from "node:http"
import { Command, Options } from "@effect/cli"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { CheckpointStore } from "@stripe-sync/core/CheckpointStore"
import type { EventLog } from "@stripe-sync/core/EventLog"
import { PgProjection } from "@stripe-sync/sink-postgres"
import { Revalidate, StripeClient, Webhook } from "@stripe-sync/source-stripe"
import { Config, Console, Effect, Layer, Option, Redacted, Schedule } from "effect"
import * as SharedOptions from "../SharedOptions.js"
import * as Sync from "../Sync.js"
import { sinkLayer, stripeLayer, withLogging } from "./runtime.js"

/**
 * Options of `serveWebhooks`.
 *
 * @since 0.1.0
 */
export interface ServeOptions {
  /** Port to listen on (0: any free port). */
  readonly port: number
  /** Interface to listen on (default every interface). */
  readonly host?: string | undefined
  /** Path of the webhook route (default `/webhooks`). */
  readonly path?: string | undefined
  /** Webhook signing secrets; several during a rotation. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** The account of the API key: the account of events without `account`. */
  readonly platformAccountId: string
  /** Signature timestamp tolerance in seconds (default 300). */
  readonly toleranceSeconds?: number | undefined
  /** Run the stripe tables projection too (default true; false when another part of the program runs it). */
  readonly projection?: boolean | undefined
  /** Called once the server listens, with its base URL (`http://host:port`). */
  readonly onListening?: ((url: string) => Effect.Effect<void>) | undefined
}

/**
 * The platform account of the Stripe key (`--account-id`, else `GET /v1/account`).
 *
 * @since 0.1.0
 */
export const platformAccountId = Effect.flatMap(
  StripeClient.StripeClient,
  (client) => client.platformAccountId
)

/**
 * Serves Stripe webhooks into the event log and runs the stripe tables projection, until
 * interrupted. On interruption the server stops accepting connections, requests in flight are
 * answered (their events stored) and only then do the appenders and the projection stop.
 *
 * @since 0.1.0
 */
export const serveWebhooks = (options: ServeOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const runProjection = options.projection ?? true
      if (runProjection) yield* PgProjection.migrate(Sync.stripeTables)
      // The projection is supervised: when it fails (the database gone for longer than its own
      // retries), it is restarted with a capped backoff while the server keeps answering (503 while
      // the log is down). A failing projection must not take the webhook server down with it.
      let projectionState: "running" | "restarting" = "running"
      const projection = runProjection
        ? Option.some(
            yield* Effect.suspend(() => {
              projectionState = "running"
              return PgProjection.run(Sync.stripeTables, { minInterval: Sync.liveFoldInterval })
            }).pipe(
              Effect.sandbox,
              Effect.tapError((cause) =>
                Effect.zipRight(
                  Effect.sync(() => {
                    projectionState = "restarting"
                  }),
                  Effect.logError("the stripe tables projection stopped; restarting it", cause)
                )
              ),
              Effect.retry(
                Schedule.exponential("500 millis").pipe(Schedule.union(Schedule.spaced("30 seconds")))
              ),
              Effect.forkScoped
            )
          )
        : Option.none()
      const ports = yield* Effect.context<EventLog | CheckpointStore>()
      const projectionCheck: ReadonlyArray<Webhook.ReadinessCheck> = Option.match(projection, {
        onNone: () => [],
        onSome: () => [
          {
            name: "projections",
            check: Effect.sync(() =>
              projectionState === "running"
                ? { ok: true }
                : { ok: false, detail: "the stripe tables projection failed and is restarting" }
            )
          }
        ]
      })
      const nodeServer = trackedServer()
      const server = Webhook.layer({
        secrets: options.secrets,
        platformAccountId: options.platformAccountId,
        path: options.path,
        toleranceSeconds: options.toleranceSeconds,
        readiness: projectionCheck,
        projectionLag: Webhook.checkpointLag.pipe(
          Effect.provide(ports),
          Effect.orElseSucceed(() => [])
        )
      }).pipe(
        Layer.provideMerge(
          NodeHttpServer.layer(() => nodeServer, {
            port: options.port,
            ...(options.host === undefined ? {} : { host: options.host })
          })
        ),
        Layer.provide(Layer.succeedContext(ports))
      )
      const context = yield* Layer.build(server)
      // Added after the server's own finalizers, so it runs before them.
      yield* Effect.addFinalizer(() => drain(nodeServer))
      const url = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address)).pipe(
        Effect.provide(context)
      )
      yield* Effect.logInfo(`webhook server listening on ${url}${options.path ?? "/webhooks"}`)
      if (options.onListening !== undefined) yield* options.onListening(url)
      return yield* Effect.never
    })
  )

/**
 * Beside the server, with a Stripe key: the revalidation queue's drain, and the projection that
 * queues every event of the `--revalidate` object types.
 */
const revalidation = (platformAccountId: string, objectTypes: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const client = yield* StripeClient.StripeClient
    const drainQueue = Revalidate.run({ client, platformAccountId })
    if (objectTypes.length === 0) return yield* drainQueue
    const onEvents = Revalidate.onEvents(objectTypes)
    yield* PgProjection.migrate(onEvents)
    yield* Effect.logInfo(`revalidating every event of ${objectTypes.join(", ")} from the API`)
    yield* Effect.all([drainQueue, PgProjection.run(onEvents, { pollInterval: "1 second" })], {
      concurrency: "unbounded",
      discard: true
    })
  })

/**
 * Graceful close of a Node server: stop accepting connections, close idle keep-alive connections,
 * answer every request in flight with `Connection: close`, and wait (at most 30 s) until they are
 * answered.
 */
const drain = (server: Http.Server) =>
  Effect.gen(function* () {
    const open = inFlight.get(server) ?? new Set<Http.ServerResponse>()
    for (const res of open) if (!res.headersSent) res.setHeader("connection", "close")
    closing.add(server)
    server.close()
    server.closeIdleConnections()
    const deadline = Date.now() + 30_000
    while (open.size > 0 && Date.now() < deadline) yield* Effect.sleep("10 millis")
    if (open.size > 0)
      yield* Effect.logWarning(`${open.size} webhook requests still open after 30 s; closing`)
    server.closeAllConnections()
  })

const inFlight = new WeakMap<Http.Server, Set<Http.ServerResponse>>()
const closing = new WeakSet<Http.Server>()

/** A Node server that tracks its open requests (for `drain`). */
const trackedServer = (): Http.Server => {
  const server = Http.createServer()
  // Longer than the idle timeout of common load balancers (60 s), so that the balancer, not this
  // server, closes idle keep-alive connections (else a request can race the close and be reset).
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  const open = new Set<Http.ServerResponse>()
  inFlight.set(server, open)
  server.on("request", (_req: Http.IncomingMessage, res: Http.ServerResponse) => {
    if (closing.has(server)) res.setHeader("connection", "close")
    open.add(res)
    res.on("close", () => open.delete(res))
  })
  return server
}

/** Secrets from the flags (repeatable, comma-separated) or `STRIPE_WEBHOOK_SECRET`. */
const resolveSecrets = (flags: ReadonlyArray<Redacted.Redacted<string>>) =>
  Effect.gen(function* () {
    const split = (values: ReadonlyArray<Redacted.Redacted<string>>) =>
      values.flatMap((v) =>
        Redacted.value(v)
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
          .map((s) => Redacted.make(s))
      )
    const fromFlags = split(flags)
    if (fromFlags.length > 0) return fromFlags
    const env = yield* Config.option(Config.redacted("STRIPE_WEBHOOK_SECRET"))
    const fromEnv = split(Option.toArray(env))
    if (fromEnv.length > 0) return fromEnv
    return yield* new Sync.UnknownResource({
      setting: "webhook secret",
      message:
        "no webhook secret: pass --webhook-secret whsec_… (repeat it, or separate with commas, during a rotation) or set STRIPE_WEBHOOK_SECRET"
    })
  })

/** The platform account: `--platform-account`, else `GET /v1/account` with the Stripe key. */
const resolveAccount = (
  options: SharedOptions.Shared & { readonly platformAccount: Option.Option<string> }
) =>
  Option.match(
    Option.orElse(options.platformAccount, () => options.accountId),
    {
      onSome: Effect.succeed,
      onNone: () =>
        Option.isNone(options.stripeApiKey)
          ? Effect.fail(
              new Sync.UnknownResource({
                setting: "stripe api key",
                message:
                  "serve needs the platform account of events without `account`: pass --platform-account acct_…, or a Stripe key (--stripe-api-key or STRIPE_API_KEY) to look it up"
              })
            )
          : platformAccountId.pipe(Effect.provide(stripeLayer(options)))
    }
  )

/**
 * `stripe-sync serve --port <n> --webhook-secret <whsec…>`.
 *
 * @since 0.1.0
 */
export const serve = Command.make(
  "serve",
  {
    ...SharedOptions.shared,
    port: Options.integer("port").pipe(
      Options.withFallbackConfig(Config.integer("PORT")),
      Options.withDescription("Port of the webhook server (env PORT; default 4242)."),
      Options.withDefault(4242)
    ),
    host: Options.text("host").pipe(
      Options.withDescription("Interface to listen on (default: every interface)."),
      Options.optional
    ),
    path: Options.text("path").pipe(
      Options.withDescription("Path of the webhook route."),
      Options.withDefault("/webhooks")
    ),
    webhookSecret: Options.text("webhook-secret").pipe(
      Options.withDescription(
        "Webhook signing secret whsec_… (env STRIPE_WEBHOOK_SECRET); repeat it or separate with commas to accept several during a rotation."
      ),
      Options.repeated,
      // Options.redacted does not combine with Options.repeated in @effect/cli 0.77.
      Options.map((values) => values.map((v) => Redacted.make(v)))
    ),
    tolerance: Options.integer("tolerance").pipe(
      Options.withDescription("Oldest signature timestamp accepted, in seconds."),
      Options.withDefault(300)
    ),
    platformAccount: Options.text("platform-account").pipe(
      Options.withDescription(
        "The account (acct_…) of events without `account`; default: looked up with the Stripe key."
      ),
      Options.optional
    ),
    revalidate: Options.text("revalidate").pipe(
      Options.withDescription(
        "Object types (customer,subscription,…) whose events are each followed by a fresh read of the object from the API; the tables hold that instead of the payload. Needs a Stripe key."
      ),
      Options.optional
    )
  },
  (options) =>
    Effect.gen(function* () {
      const secrets = yield* resolveSecrets(options.webhookSecret)
      const revalidate = Option.match(options.revalidate, {
        onNone: () => [],
        onSome: Sync.parseList
      })
      if (revalidate.length > 0 && Option.isNone(options.stripeApiKey)) {
        return yield* new Sync.UnknownResource({
          setting: "stripe api key",
          message:
            "--revalidate reads objects from the API: pass a Stripe key (--stripe-api-key or STRIPE_API_KEY)"
        })
      }
      const account = yield* resolveAccount(options)
      const server = serveWebhooks({
        port: options.port,
        host: Option.getOrUndefined(options.host),
        path: options.path,
        secrets,
        platformAccountId: account,
        toleranceSeconds: options.tolerance,
        onListening: (url) => Console.log(`listening on ${url}${options.path} (account ${account})`)
      })
      if (Option.isNone(options.stripeApiKey)) {
        yield* Effect.logWarning(
          "no Stripe key: the revalidation queue (same-second conflicts, truncated lists in payloads) waits until a process with a key (serve or sync with --stripe-api-key) drains it"
        )
        return yield* server
      }
      yield* Effect.all([server, revalidation(account, revalidate)], {
        concurrency: "unbounded",
        discard: true
      }).pipe(Effect.provide(stripeLayer(options)))
    }).pipe(Effect.provide(sinkLayer(options)), withLogging(options))
).pipe(
  Command.withDescription(
    "Receive Stripe webhooks (verified, stored, then acknowledged) and keep the stripe tables up to date, until interrupted."
  )
)
