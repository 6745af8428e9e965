/**
 * The `stripe-sync` command.
 *
 * @since 0.1.0
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { CheckpointStore, CursorStore, EventLog, LogPosition } from "@stripe-sync/core"
import { PgProjection, Replay, SyncRuns } from "@stripe-sync/sink-postgres"
import { Backfill, Revalidate, StripeClient } from "@stripe-sync/source-stripe"
import { Config, Console, Duration, Effect, Layer, Option, Redacted } from "effect"
import * as Resume from "./internal/resume.js"
import { sinkLayer, stripeLayer, withLogging } from "./internal/runtime.js"
import { serve, serveWebhooks } from "./internal/serveCommand.js"
import { sigma, sigmaLive, sigmaOnce, sigmaOption } from "./internal/sigmaCommand.js"
import { webhooks } from "./internal/webhooksCommand.js"
import * as SharedOptions from "./SharedOptions.js"
import * as Sync from "./Sync.js"

/** Unix seconds from `1700000000` or an ISO date (`2024-01-31`, `2024-01-31T12:00:00Z`). */
const timestamp = (name: string) =>
  Options.text(name).pipe(
    Options.mapEffect((text) => {
      if (/^\d+$/.test(text)) return Effect.succeed(Number(text))
      const ms = Date.parse(text)
      return Number.isNaN(ms)
        ? Effect.fail(
            ValidationError.invalidValue(
              HelpDoc.p(`--${name} takes unix seconds or a date like 2024-01-31: got "${text}"`)
            )
          )
        : Effect.succeed(Math.floor(ms / 1000))
    }),
    Options.optional
  )

const backfillOptions = {
  ...SharedOptions.shared,
  createdGte: timestamp("created-gte").pipe(
    Options.withDescription("Only objects created at or after (unix seconds or a date).")
  ),
  createdLte: timestamp("created-lte").pipe(
    Options.withDescription("Only objects created at or before (unix seconds or a date).")
  ),
  connectedAccounts: Options.text("connected-accounts").pipe(
    Options.withDescription("Also backfill Connect accounts: all, or acct_…,acct_…"),
    Options.optional
  ),
  concurrency: Options.integer("concurrency").pipe(
    Options.withDescription(
      "List requests in flight per process (default 8); ranges are split to keep them busy."
    ),
    Options.optional
  ),
  leaseTtl: Options.integer("lease-ttl").pipe(
    Options.withDescription(
      "Seconds a backfill range stays leased to a process that stopped (was killed) before another takes it over (default 30)."
    ),
    Options.optional
  )
}

const connected = (value: Option.Option<string>): "none" | "all" | ReadonlyArray<string> =>
  Option.match(value, {
    onNone: () => "none" as const,
    onSome: (v) => (v.trim() === "all" ? ("all" as const) : Sync.parseList(v))
  })

type BackfillFlags = SharedOptions.Shared & {
  readonly createdGte: Option.Option<number>
  readonly createdLte: Option.Option<number>
  readonly connectedAccounts: Option.Option<string>
  readonly concurrency: Option.Option<number>
  readonly leaseTtl: Option.Option<number>
}

const backfillThenReport = (options: BackfillFlags, resources: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const selected = yield* Sync.resolveResources(resources)
    const result = yield* Sync.backfill({
      resources: selected,
      createdGte: Option.getOrUndefined(options.createdGte),
      createdLte: Option.getOrUndefined(options.createdLte),
      connectedAccounts: connected(options.connectedAccounts),
      concurrency: Option.getOrUndefined(options.concurrency),
      leaseTtl: Option.map(options.leaseTtl, Duration.seconds).pipe(Option.getOrUndefined)
    })
    yield* Console.log(
      `done: ${result.objects.toLocaleString("en-US")} objects in ${result.seconds.toFixed(1)} s` +
        (result.skipped.length > 0
          ? `; skipped (not available on this account): ${result.skipped.join(", ")}`
          : "")
    )
  })

const runBackfill = (options: BackfillFlags, resources: ReadonlyArray<string>) =>
  backfillThenReport(options, resources).pipe(
    Effect.provide(Layer.merge(stripeLayer(options), sinkLayer(options, { maxConnections: 20 }))),
    withLogging(options)
  )

const backfill = Command.make(
  "backfill",
  {
    ...backfillOptions,
    resources: Args.text({ name: "resource" }).pipe(
      Args.withDescription(
        "Resources to backfill, by table name (customers invoices …); none: the default set."
      ),
      Args.repeated
    )
  },
  ({ resources, ...options }) => runBackfill(options, resources)
).pipe(
  Command.withDescription(
    "Read the history of Stripe resources into the event log and the stripe.* tables; resumes where a stopped run left off."
  )
)

const liveOptions = {
  pollEvents: Options.integer("poll-events").pipe(
    Options.withDescription(
      "After the backfill, poll the Events API every <seconds> (the default live mode, every 5 s, when --webhook-port is not given)."
    ),
    Options.optional
  ),
  webhookPort: Options.integer("webhook-port").pipe(
    Options.withDescription("After the backfill, receive webhooks on this port (path /webhooks)."),
    Options.optional
  ),
  webhookSecret: Options.text("webhook-secret").pipe(
    Options.withDescription(
      "Webhook signing secret whsec_… for --webhook-port (env STRIPE_WEBHOOK_SECRET); repeat it during a rotation."
    ),
    Options.repeated
  ),
  revalidate: Options.text("revalidate").pipe(
    Options.withDescription(
      "Object types (customer,subscription,…) whose events are each followed by a fresh read of the object from the API; the tables hold that instead of the payload."
    ),
    Options.optional
  ),
  eventsLag: Options.integer("events-lag").pipe(
    Options.withDescription(
      "Seconds an event must be old before polling reads it (Stripe's eventual consistency)."
    ),
    Options.withDefault(5)
  )
}

/** Webhook secrets from the flags (comma-separated too) or `STRIPE_WEBHOOK_SECRET`. */
const webhookSecrets = (flags: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const env = Option.getOrUndefined(yield* Config.option(Config.string("STRIPE_WEBHOOK_SECRET")))
    const values = (flags.length > 0 ? flags : env === undefined ? [] : [env])
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter((v) => v.length > 0)
    if (values.length === 0) {
      return yield* new Sync.UnknownResource({
        setting: "webhook secret",
        message:
          "--webhook-port needs the endpoint's signing secret: pass --webhook-secret whsec_… or set STRIPE_WEBHOOK_SECRET"
      })
    }
    return values.map((v) => Redacted.make(v))
  })

const sync = Command.make(
  "sync",
  {
    ...backfillOptions,
    once: Options.boolean("once").pipe(Options.withDescription("Backfill every resource, then exit.")),
    fullBackfill: Options.boolean("full-backfill").pipe(
      Options.withDescription(
        "Read all history again even when a completed backfill and a recent Events API cursor let a restart go straight to polling."
      )
    ),
    ...liveOptions,
    sigma: sigmaOption
  },
  ({
    once,
    fullBackfill,
    pollEvents,
    webhookPort,
    webhookSecret,
    eventsLag,
    revalidate,
    sigma: sigmaTables,
    ...options
  }) =>
    once
      ? Effect.zipRight(runBackfill(options, []), sigmaOnce(sigmaTables, options))
      : Effect.gen(function* () {
          const secrets = Option.isSome(webhookPort) ? yield* webhookSecrets(webhookSecret) : []
          const started = Math.floor(Date.now() / 1000)
          const client = yield* StripeClient.StripeClient
          // polling is the default live mode: it needs no public URL
          const poll = Option.isSome(pollEvents) || Option.isNone(webhookPort)
          // a restart goes straight to polling when the log already holds a complete backfill and
          // the Events API still has every event since the cursor
          const decision: Resume.Decision =
            poll && !fullBackfill
              ? yield* Resume.decide({
                  accounts: yield* Backfill.accounts(client, connected(options.connectedAccounts)),
                  objects: (yield* Sync.resolveResources([])).map((r) => r.object),
                  now: started
                })
              : {
                  _tag: "Backfill",
                  reason: fullBackfill
                    ? "--full-backfill"
                    : "webhooks alone cannot bring a restart up to date"
                }
          if (decision._tag === "Resume") {
            yield* Console.log(
              `resuming: the last backfill completed and the Events API is polled from ${new Date(decision.oldestCursor * 1000).toISOString()} (--full-backfill reads all history again)`
            )
          } else {
            yield* Effect.logDebug(`backfilling: ${decision.reason}`)
            yield* backfillThenReport(options, [])
          }
          const platformAccountId = yield* client.platformAccountId
          yield* Console.log(
            `live: ${[poll ? `polling events every ${Option.getOrElse(pollEvents, () => 5)} s` : "", Option.isSome(webhookPort) ? `webhooks on port ${webhookPort.value}` : ""].filter((s) => s.length > 0).join(" and ")}; Ctrl-C to stop`
          )
          yield* Sync.live({
            connectedAccounts: connected(options.connectedAccounts),
            pollEvents: poll ? Duration.seconds(Option.getOrElse(pollEvents, () => 5)) : undefined,
            lag: eventsLag,
            // after a backfill: from its start (minus the lag), so nothing changed meanwhile is lost;
            // on a resume: from the stored cursors
            pollFrom: decision._tag === "Resume" ? undefined : started - eventsLag,
            revalidate: Option.getOrUndefined(Option.map(revalidate, Sync.parseList)),
            alongside: [
              Effect.all(
                [
                  ...Option.match(webhookPort, {
                    onNone: () => [],
                    onSome: (port) => [serveWebhooks({ port, secrets, platformAccountId, projection: false })]
                  }),
                  ...sigmaLive(sigmaTables, options)
                ],
                { concurrency: "unbounded", discard: true }
              )
            ]
          })
        }).pipe(
          Effect.provide(Layer.merge(stripeLayer(options), sinkLayer(options, { maxConnections: 20 }))),
          withLogging(options)
        )
).pipe(
  Command.withDescription(
    "Sync everything: backfill, then stay live (Events API polling every 5 s by default, --poll-events <s>, and/or webhooks with --webhook-port) until interrupted; `--once` backfills and exits."
  )
)

const migrate = Command.make("migrate", SharedOptions.shared, (options) =>
  Effect.gen(function* () {
    yield* PgProjection.migrate(Sync.stripeTables)
    yield* Effect.logInfo(`schema "${options.schema}" is migrated`)
  }).pipe(Effect.provide(sinkLayer(options)), withLogging(options))
).pipe(
  Command.withDescription(
    "Create or upgrade the sync schema (event log, cursors, checkpoints, stripe tables)."
  )
)

const status = Command.make("status", SharedOptions.shared, (options) =>
  Effect.gen(function* () {
    const log = yield* EventLog.EventLog
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const cursors = yield* CursorStore.CursorStore
    const head = yield* log.head
    yield* Console.log(`event log head: ${LogPosition.format(head)}`)
    const runs = yield* SyncRuns.latest(5)
    yield* Console.log(runs.length === 0 ? "runs: none yet" : "latest runs:")
    for (const r of runs) {
      yield* Console.log(
        `  #${r.id} ${r.accountId} ${r.status} started ${r.startedAt.toISOString()}${r.closedAt ? `, closed ${r.closedAt.toISOString()}` : ""}: ${r.totalProcessed} objects, ${r.completeCount} complete, ${r.errorCount} errors, ${r.runningCount} running, ${r.pendingCount} pending${r.errorMessage ? ` (${r.errorMessage})` : ""}`
      )
    }
    const latest = runs[0]
    if (latest !== undefined) {
      const objects = yield* SyncRuns.objects(latest.id)
      for (const o of objects.filter((o) => o.status !== "complete" && o.status !== "skipped")) {
        yield* Console.log(
          `    ${o.object}: ${o.status}, ${o.processed} objects${o.errorMessage ? ` (${o.errorMessage})` : ""}`
        )
      }
      const skipped = objects.filter((o) => o.status === "skipped").map((o) => o.object)
      if (skipped.length > 0)
        yield* Console.log(`    skipped (not available on the account): ${skipped.join(", ")}`)
    }
    const ranges = yield* cursors.list(Backfill.sourceName)
    if (ranges.length > 0)
      yield* Console.log(`backfill: ${ranges.length} unfinished ranges (run backfill again to resume)`)
    const list = yield* checkpoints.list
    yield* Console.log(list.length === 0 ? "projections: none yet" : "projections:")
    for (const c of list) {
      const behind = head.position > c.position.position ? head.position - c.position.position : 0n
      yield* Console.log(
        `  ${c.projection} v${c.version} at ${LogPosition.format(c.position)} (at most ${behind} events behind), updated ${c.updatedAt.toISOString()}`
      )
    }
    const holders = yield* log.horizonHolders
    if (holders.length > 0) {
      yield* Console.log("transactions holding readers back:")
      for (const h of holders) {
        yield* Console.log(
          `  pid ${h.pid} (${h.applicationName || "?"}) open ${h.ageSeconds}s, ${h.state}: ${h.query.slice(0, 120)}`
        )
      }
    }
  }).pipe(Effect.provide(sinkLayer(options)), withLogging(options))
).pipe(
  Command.withDescription(
    "Show runs and per-resource progress, unfinished ranges, projection lag, and what holds readers back."
  )
)

const entity = Command.make(
  "entity",
  {
    ...SharedOptions.shared,
    id: Args.text({ name: "id" }).pipe(Args.withDescription("A Stripe id: cus_…, in_…, sub_…, pi_…")),
    account: Options.text("account").pipe(
      Options.withDescription("The connected account (acct_…) it belongs to."),
      Options.optional
    )
  },
  ({ id, account, ...options }) =>
    Effect.gen(function* () {
      const client = yield* StripeClient.StripeClient
      const log = yield* EventLog.EventLog
      const event = yield* Revalidate.snapshot(client, {
        id,
        account: Option.getOrUndefined(Option.map(account, (a) => ({ id: a, connected: true })))
      })
      const result = yield* log.append({ events: [event] })
      yield* PgProjection.catchUp(Sync.stripeTables)
      yield* Console.log(
        result.appended > 0
          ? `${id}: stored its current state (${event.type})`
          : `${id}: unchanged since it was last stored`
      )
    }).pipe(Effect.provide(Layer.merge(stripeLayer(options), sinkLayer(options))), withLogging(options))
).pipe(Command.withDescription("Fetch one object by id, store its current state, and update its row."))

const replay = Command.make(
  "replay",
  {
    ...SharedOptions.shared,
    projection: Args.text({ name: "projection" }).pipe(
      Args.withDescription("The projection to rebuild (default: stripe_tables)"),
      Args.withDefault("stripe_tables")
    ),
    inPlace: Options.boolean("in-place").pipe(
      Options.withDescription(
        "Rebuild inside one transaction in the live tables (small logs); default: shadow tables, then a swap."
      )
    )
  },
  ({ projection, inPlace, ...options }) =>
    Effect.gen(function* () {
      if (projection !== Sync.stripeTables.name) {
        return yield* new Sync.UnknownResource({
          setting: "projection",
          message: `unknown projection "${projection}": the standard projection is ${Sync.stripeTables.name}`
        })
      }
      yield* PgProjection.migrate(Sync.stripeTables)
      let last = 0
      const result = yield* Replay.rebuild(Sync.stripeTables, {
        inPlace,
        onProgress: (p) =>
          Date.now() - last > 2000 || p.applied === p.total
            ? Effect.sync(() => {
                last = Date.now()
              }).pipe(Effect.zipRight(Effect.logInfo(`replay ${p.phase}: ${p.applied}/${p.total} events`)))
            : Effect.void
      })
      yield* Console.log(
        `rebuilt ${result.projection} from ${result.applied} events (${result.tables.length} tables), now at ${LogPosition.format(result.position)}`
      )
    }).pipe(Effect.provide(sinkLayer(options)), withLogging(options))
).pipe(
  Command.withDescription("Rebuild a projection's tables from the event log (shadow tables, then one swap).")
)

const emulator = Command.make(
  "emulator",
  {
    port: Options.integer("port").pipe(
      Options.withDescription("Port on 127.0.0.1 (0: any free port)."),
      Options.withDefault(12111)
    ),
    seed: Options.text("seed").pipe(
      Options.withDescription("Seed of the generated accounts."),
      Options.withDefault("stripe-sync")
    ),
    scale: Options.float("scale").pipe(
      Options.withDescription("Account size: 1 is about 4,300 objects."),
      Options.withDefault(1)
    ),
    connectedAccounts: Options.integer("connected-accounts").pipe(
      Options.withDescription("Connect accounts to generate."),
      Options.withDefault(0)
    ),
    latency: Options.integer("latency").pipe(
      Options.withDescription("Milliseconds added to every request."),
      Options.withDefault(0)
    ),
    logLevel: SharedOptions.logLevel,
    logFormat: SharedOptions.logFormat
  },
  (options) =>
    Effect.gen(function* () {
      const started = Date.now()
      const handle = yield* Effect.acquireRelease(
        // loaded here, not with the command: the emulator (and the SQL engine of its Sigma) is only for this command
        Effect.promise(async () =>
          (await import("@stripe-sync/stripe-emulator/Emulator")).startEmulator({
            port: options.port,
            seed: options.seed,
            scale: options.scale,
            connectedAccounts: options.connectedAccounts,
            faults: { latencyMs: options.latency }
          })
        ),
        (h) => Effect.promise(() => h.stop())
      )
      yield* Console.log(
        `Stripe emulator listening on ${handle.url} (account ${handle.accountId}, ${handle.connectedAccountIds.length} connected accounts, ready in ${Duration.format(Duration.millis(Date.now() - started))})`
      )
      yield* Console.log(
        `try: STRIPE_API_KEY=sk_test_emulator STRIPE_API_BASE=${handle.url} pnpm stripe-sync sync --once`
      )
      return yield* Effect.never
    }).pipe(Effect.scoped, withLogging(options))
).pipe(Command.withDescription("Run the local Stripe emulator until interrupted (for demos and tests)."))

export const root = Command.make("stripe-sync").pipe(
  Command.withDescription("Keep Stripe mirrored in PostgreSQL: backfill, live sync, replay."),
  Command.withSubcommands([sync, backfill, status, entity, replay, migrate, emulator, serve, webhooks, sigma])
)

export const run = Command.run(root, { name: "stripe-sync", version: "0.1.0" })
