/**
 * The standard sync, as the CLI and the Promise facade run it: backfill the selected resources of
 * the platform (and connected accounts) through the list backfill, fold the log into the `stripe`
 * tables while it runs, record the run in `stripe._sync_runs`, and report progress.
 *
 * @since 0.1.0
 */

import type { SqlClient } from "@effect/sql"
import {
  CheckpointStore,
  CursorStore,
  EventLog,
  LogPosition,
  Pipeline,
  type RevalidationQueue
} from "@stripe-sync/core"
import { PgProjection, type PgSinkConfig, StripeTables, SyncRuns } from "@stripe-sync/sink-postgres"
import { Backfill, Catalog, EventsPoller, Revalidate, StripeClient } from "@stripe-sync/source-stripe"
import { Data, Duration, Effect, Fiber, Option, Ref } from "effect"

/** The backfill finished, but some resources did not complete (exit code 3). */
export class IncompleteSync extends Data.TaggedError("IncompleteSync")<{
  readonly message: string
  readonly failed: ReadonlyArray<string>
}> {}

/** A resource name the catalog does not know (exit code 2). */
export class UnknownResource extends Data.TaggedError("ConfigurationError")<{
  readonly setting: string
  readonly message: string
}> {}

/**
 * A comma-separated option value (`customer, subscription`) as its non-empty items.
 *
 * @since 0.1.0
 */
export const parseList = (value: string): ReadonlyArray<string> =>
  value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)

/**
 * The `stripe` tables projection over every table of the catalog.
 *
 * @since 0.1.0
 */
export const stripeTables = StripeTables.projection({ tables: Catalog.tableSpecs(Catalog.all) })

/**
 * Resolves resource names (table `customers` or object `customer`); none → the default set.
 *
 * @since 0.1.0
 */
export const resolveResources = (
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Catalog.Resource>, UnknownResource> =>
  names.length === 0
    ? Effect.succeed(Catalog.defaults)
    : Effect.forEach(names, (name) =>
        Option.orElse(Catalog.byTable(name), () => Catalog.byObject(name)).pipe(
          Option.match({
            onSome: Effect.succeed,
            onNone: () =>
              Effect.fail(
                new UnknownResource({
                  setting: "resources",
                  message: `unknown resource "${name}": use a table name such as customers, invoices, subscriptions (see the README of @stripe-sync/source-stripe for the list)`
                })
              )
          })
        )
      )

/**
 * @since 0.1.0
 * @category models
 */
export interface BackfillOptions {
  readonly resources: ReadonlyArray<Catalog.Resource>
  readonly createdGte?: number | undefined
  readonly createdLte?: number | undefined
  readonly connectedAccounts?: "none" | "all" | ReadonlyArray<string>
  readonly concurrency?: number | undefined
  /** How long a range stays leased to a process that stopped renewing it (default 30 s). */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** How progress reaches a person: a line every few seconds. */
  readonly progressInterval?: Duration.DurationInput
  /**
   * `terminal`: one line redrawn in place on stderr (for a person at a terminal); `lines`: a log
   * line every `progressInterval` (default: `terminal` when stderr is a TTY).
   */
  readonly progress?: "terminal" | "lines"
  readonly triggeredBy?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BackfillResult {
  readonly objects: number
  readonly seconds: number
  readonly skipped: ReadonlyArray<string>
  readonly runIds: ReadonlyArray<number>
}

const formatNumber = (n: number) => n.toLocaleString("en-US")

const tableOf = (object: string) =>
  Option.match(Catalog.byObject(object), { onNone: () => object, onSome: (r) => r.table })

/**
 * Marks each resource of the runs that is still pending or running: complete when no backfill range
 * of it is left, else error (with the message).
 */
const settleObjects = (runIds: ReadonlyMap<string, number>, message: string) =>
  Effect.gen(function* () {
    const cursors = yield* CursorStore.CursorStore
    const left = new Set(
      (yield* cursors.list(Backfill.sourceName)).map((c) => c.key.split("/").slice(0, 2).join("/"))
    )
    for (const [account, runId] of runIds) {
      for (const progress of yield* SyncRuns.objects(runId)) {
        if (progress.status !== "pending" && progress.status !== "running") continue
        const unfinished = left.has(`${account}/${progress.object}`)
        yield* SyncRuns.setObjectStatus(
          runId,
          progress.object,
          unfinished ? "error" : "complete",
          unfinished ? message || "unfinished" : undefined
        )
      }
    }
  })

/**
 * Pages read at once by a backfill unless asked otherwise (ranges are split until about this many
 * are open). More is not faster on a small machine: the pages wait for the append, and the fold
 * then waits for this busy process (100k objects on 2 cores: 8 about 5,700 objects/s, 16 about
 * 4,900).
 *
 * @since 0.1.0
 */
export const defaultConcurrency = 8

/**
 * Events per fold step while a backfill appends. Each step costs a few round trips to this busy
 * process and a plan per table touched, whatever its size: with steps of 1,000 the fold fell behind
 * the backfill (to a third of the log at 100,000 objects) and caught up alone afterwards, with one
 * core idle. A step of 5,000 objects' ids reads little (the fold reads the objects inside Postgres).
 */
const foldBatchSize = 5000

/**
 * Waits until the tables projection's checkpoint has reached `head`, or has not moved for ten
 * seconds (something else holds the log's horizon back: the caller's catch-up deals with that).
 */
const foldedUpTo = (head: LogPosition.LogPosition) =>
  Effect.gen(function* () {
    const checkpoints = yield* CheckpointStore.CheckpointStore
    let last = LogPosition.zero
    for (let still = 0; still < 200; ) {
      const position = Option.match(yield* checkpoints.get(stripeTables.name), {
        onNone: () => LogPosition.zero,
        onSome: (c) => c.position
      })
      if (!LogPosition.isAfter(head, position)) return
      still = LogPosition.equals(last, position) ? still + 1 : 0
      last = position
      yield* Effect.sleep("50 millis")
    }
  })

/**
 * Runs a backfill to completion with the tables projection folding along, then catches the
 * projection up with the log. Fails with `IncompleteSync` if a resource did not complete.
 *
 * @since 0.1.0
 */
export const backfill = (options: BackfillOptions) =>
  Effect.gen(function* () {
    const client = yield* StripeClient.StripeClient
    const services = yield* Effect.context<SqlClient.SqlClient | PgSinkConfig.PgSinkConfig>()
    const accounts = yield* Backfill.accounts(client, options.connectedAccounts ?? "none")
    yield* PgProjection.migrate(stripeTables)
    const objects = options.resources.map((r) => r.object)
    const runIds = new Map<string, number>()
    for (const account of accounts) {
      runIds.set(
        account.id,
        yield* SyncRuns.start({ accountId: account.id, objects, triggeredBy: options.triggeredBy ?? "cli" })
      )
    }
    const pending = yield* Ref.make(new Map<number, Map<string, number>>())
    const total = yield* Ref.make(0)
    const skipped: Array<string> = []
    const perTable = new Map<string, number>()
    const terminal = (options.progress ?? (process.stderr.isTTY ? "terminal" : "lines")) === "terminal"
    const flush = Effect.gen(function* () {
      const counts = yield* Ref.getAndSet(pending, new Map())
      for (const [runId, perObject] of counts) yield* SyncRuns.progress(runId, perObject)
    })
    const started = Date.now()
    const source = Backfill.make({
      list: Backfill.listWith(client),
      resources: options.resources,
      accounts,
      apiVersion: client.apiVersion,
      createdGte: options.createdGte,
      createdLte: options.createdLte,
      concurrency: options.concurrency ?? defaultConcurrency,
      leaseTtl: options.leaseTtl,
      onProgress: (account, resource, n) =>
        Effect.zipRight(
          Effect.zipRight(
            Ref.update(total, (t) => t + n),
            Effect.sync(() => {
              const table = tableOf(resource.object)
              perTable.set(table, (perTable.get(table) ?? 0) + n)
            })
          ),
          Ref.update(pending, (m) => {
            const runId = runIds.get(account.id)!
            const perObject = new Map(m.get(runId) ?? [])
            perObject.set(resource.object, (perObject.get(resource.object) ?? 0) + n)
            return new Map(m).set(runId, perObject)
          })
        ),
      onSkipped: (account, resource, message) =>
        Effect.gen(function* () {
          const table = tableOf(resource.object)
          skipped.push(`${table} (${account.id})`)
          // the warning on a line of its own, not after the progress line being redrawn
          if (terminal) yield* Effect.sync(() => process.stderr.write("\r\u001b[K"))
          yield* Effect.logWarning(`skipping ${table} for ${account.id}: ${message}`)
          yield* SyncRuns.setObjectStatus(runIds.get(account.id)!, resource.object, "skipped", message)
        }).pipe(
          Effect.provide(services),
          Effect.catchAll((e) => Effect.logWarning(`could not record a skipped resource: ${e.message}`))
        )
    })
    const report = Effect.gen(function* () {
      yield* flush
      const n = yield* Ref.get(total)
      const seconds = (Date.now() - started) / 1000
      yield* Effect.logInfo(
        `backfill: ${formatNumber(n)} objects in ${seconds.toFixed(0)} s (${formatNumber(Math.round(n / Math.max(seconds, 0.001)))}/s)`
      )
    })
    const draw = Effect.gen(function* () {
      const n = yield* Ref.get(total)
      const seconds = (Date.now() - started) / 1000
      const top = [...perTable].sort((a, b) => b[1] - a[1]).slice(0, 4)
      const line = `backfill: ${formatNumber(n)} objects, ${formatNumber(Math.round(n / Math.max(seconds, 0.001)))}/s, ${seconds.toFixed(0)} s · ${perTable.size} resources · ${top.map(([t, c]) => `${t} ${formatNumber(c)}`).join(" · ")}`
      process.stderr.write(`\r\u001b[K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`)
    })
    const reporter = yield* Effect.fork(
      terminal
        ? Effect.forever(Effect.zipRight(Effect.sleep("250 millis"), Effect.zipRight(flush, draw))).pipe(
            Effect.ensuring(Effect.sync(() => process.stderr.write("\r\u001b[K")))
          )
        : Effect.forever(Effect.zipRight(Effect.sleep(options.progressInterval ?? "5 seconds"), report))
    )
    const folding = yield* Effect.fork(
      PgProjection.run(stripeTables, { batchSize: foldBatchSize, pollInterval: "1 second" })
    )
    const closeRuns = (status: SyncRuns.RunStatus, message?: string) =>
      Effect.forEach(runIds.values(), (runId) => SyncRuns.finish(runId, status, message), { discard: true })
    const outcome = yield* Pipeline.runSource(source).pipe(
      Effect.onInterrupt(() =>
        Effect.gen(function* () {
          yield* Fiber.interrupt(reporter)
          yield* Effect.ignore(flush)
          yield* Effect.ignore(closeRuns("interrupted", "interrupted"))
        })
      ),
      Effect.either
    )
    yield* Fiber.interrupt(reporter)
    if (outcome._tag === "Right") {
      // the fold that ran along finishes the log: interrupting it would throw away the step in flight
      yield* Effect.logInfo("backfill read everything; folding the rest of the log into the tables")
      yield* Effect.ignore(
        Effect.raceFirst(
          foldedUpTo(yield* EventLog.EventLog.pipe(Effect.flatMap((log) => log.head))),
          Fiber.join(folding)
        )
      )
    }
    yield* Fiber.interrupt(folding)
    yield* flush
    if (outcome._tag === "Left") {
      const message = String((outcome.left as { message?: unknown }).message ?? outcome.left)
      yield* Effect.ignore(settleObjects(runIds, message))
      yield* Effect.ignore(closeRuns("failed", message))
      return yield* Effect.fail(outcome.left)
    }
    // whatever is left (nothing, unless the fold above failed: its error shows here)
    yield* PgProjection.catchUp(stripeTables, { batchSize: foldBatchSize })
    yield* settleObjects(runIds, "")
    yield* closeRuns("complete")
    yield* report
    return {
      objects: yield* Ref.get(total),
      seconds: (Date.now() - started) / 1000,
      skipped,
      runIds: [...runIds.values()]
    } satisfies BackfillResult
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface LiveOptions<R = never> {
  readonly connectedAccounts?: "none" | "all" | ReadonlyArray<string>
  /** Poll the Events API every this often; absent: no polling. */
  readonly pollEvents?: Duration.DurationInput | undefined
  /** Seconds events must be old before the poller reads them (default 5). */
  readonly lag?: number | undefined
  /**
   * Where polling starts when it has no cursor, or its cursor is older (unix seconds): the backfill's
   * start minus the lag, so nothing changed during or after the backfill is lost.
   */
  readonly pollFrom?: number | undefined
  /**
   * Object types whose events (webhooks and polled) are each followed by a fresh read of the object
   * from the API, which the tables then hold instead of the payload.
   */
  readonly revalidate?: ReadonlyArray<string> | undefined
  /** Other live parts run alongside until interrupted (the webhook server). */
  readonly alongside?: ReadonlyArray<Effect.Effect<unknown, unknown, R>> | undefined
}

/**
 * The least pause between two folds of the stripe tables in live mode: under a steady flow of
 * webhooks, batches of tens of events instead of a few (each batch costs about the same in
 * Postgres), for at most 50 ms more from receipt to row.
 *
 * @since 0.1.0
 */
export const liveFoldInterval = "50 millis"

/**
 * Live sync until interrupted: the stripe tables projection, the revalidation queue's drain, the
 * Events API poller (when asked) and whatever runs alongside (the webhook server). The first part to
 * fail stops the others; an interruption (SIGINT/SIGTERM) stops them all, each finishing what it
 * holds (an append is one transaction, the webhook server answers its requests in flight).
 *
 * @since 0.1.0
 */
export const live = <R = never>(options: LiveOptions<R>) =>
  Effect.gen(function* () {
    const client = yield* StripeClient.StripeClient
    const accounts = yield* Backfill.accounts(client, options.connectedAccounts ?? "none")
    const platformAccountId = accounts.find((a) => !a.connected)!.id
    yield* PgProjection.migrate(stripeTables)
    const parts: Array<Effect.Effect<unknown, unknown, R>> = []
    const context = yield* Effect.context<
      | SqlClient.SqlClient
      | PgSinkConfig.PgSinkConfig
      | Pipeline.Services
      | RevalidationQueue.RevalidationQueue
      | StripeClient.StripeClient
    >()
    parts.push(
      PgProjection.run(stripeTables, { pollInterval: "1 second", minInterval: liveFoldInterval }).pipe(
        Effect.provide(context)
      )
    )
    parts.push(Revalidate.run({ client, platformAccountId }).pipe(Effect.provide(context)))
    if (options.revalidate !== undefined && options.revalidate.length > 0) {
      const onEvents = Revalidate.onEvents(options.revalidate)
      yield* PgProjection.migrate(onEvents)
      parts.push(PgProjection.run(onEvents, { pollInterval: "1 second" }).pipe(Effect.provide(context)))
    }
    if (options.pollEvents !== undefined) {
      const interval = Duration.decode(options.pollEvents)
      yield* Effect.logInfo(
        `polling the Events API of ${accounts.length} account(s) every ${Duration.format(interval)}`
      )
      parts.push(
        Pipeline.runSource(
          EventsPoller.make({
            client,
            accounts,
            lag: options.lag,
            interval,
            startAfter: options.pollFrom
          })
        ).pipe(Effect.provide(context))
      )
    }
    parts.push(...(options.alongside ?? []))
    yield* Effect.all(parts, { concurrency: "unbounded", discard: true })
  })
