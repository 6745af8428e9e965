/**
 * The Sigma plugin in one line: `SigmaPlugin.sync(options)` runs the Sigma source for a set of
 * tables and folds what it appended into `sigma.<table>`; `SigmaPlugin.layer(options)` does that
 * now and then again at every refresh interval, for as long as the layer lives. Sigma not enabled
 * on the account is one warning, never a failure of the rest of the sync.
 *
 * @since 0.1.0
 */
import { Pipeline } from "@stripe-sync/core"
import { PgProjection } from "@stripe-sync/sink-postgres"
import { StripeClient } from "@stripe-sync/source-stripe"
import { Data, Duration, Effect, Layer, Option, type Redacted, Schedule } from "effect"
import type * as SigmaQuery from "./SigmaQuery.js"
import * as SigmaSchema from "./SigmaSchema.js"
import * as SigmaSource from "./SigmaSource.js"
import * as SigmaTables from "./SigmaTables.js"

/**
 * A table name that is not in Stripe's Sigma schema, or a table without a primary key.
 *
 * @since 0.1.0
 * @category errors
 */
export class SigmaUnknownTable extends Data.TaggedError("SigmaUnknownTable")<{
  readonly table: string
  readonly message: string
}> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Table names, or `"all"` (every Sigma table with a primary key); default `SigmaSchema.defaultNames`. */
  readonly tables?: ReadonlyArray<string> | "all" | undefined
  /** `queries` (`/v2/data/query_runs`, default) or `query_runs` (`/v1/sigma/query_runs` + files). */
  readonly api?: "queries" | "query_runs" | undefined
  /** Rows per query (default 5,000). */
  readonly pageSize?: number | undefined
  /** How often tables whose rows change are refreshed in full (default 24 hours). */
  readonly refreshInterval?: Duration.DurationInput | undefined
  /** The key, for the CSV files of `query_runs`. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Base URL of the files host of `query_runs` (default `https://files.stripe.com`). */
  readonly filesBase?: string | undefined
  /** The schema of the `sigma` tables (default `sigma`). */
  readonly target?: string | undefined
  /** How often a run polls a query run (default 500 ms). */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * The tables of `names` (`"all"`: every table with a primary key).
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveTables = (
  names: ReadonlyArray<string> | "all" | undefined
): Effect.Effect<ReadonlyArray<SigmaSchema.Table>, SigmaUnknownTable> =>
  names === "all"
    ? Effect.succeed(SigmaSchema.all.filter(SigmaSchema.syncable))
    : Effect.forEach(names ?? SigmaSchema.defaultNames, (name) =>
        Option.match(Option.filter(SigmaSchema.byName(name), SigmaSchema.syncable), {
          onNone: () =>
            Effect.fail(
              new SigmaUnknownTable({
                table: name,
                message: Option.isSome(SigmaSchema.byName(name))
                  ? `the Sigma table ${name} has no primary key: it cannot be synced row by row`
                  : `${name} is not a Sigma table`
              })
            ),
          onSome: Effect.succeed
        })
      )

/**
 * The projection of `tables` into the schema `target` (name `sigma_tables`, or
 * `sigma_tables_<target>` for another schema than `sigma`: each target has its own checkpoint).
 *
 * @since 0.1.0
 * @category constructors
 */
export const projection = (tables: ReadonlyArray<SigmaSchema.Table>, target = "sigma") =>
  SigmaTables.projection({ tables, name: target === "sigma" ? "sigma_tables" : `sigma_tables_${target}` })

/**
 * What one run did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Outcome {
  /** `false`: Sigma is not enabled on the account (a warning was logged, nothing synced). */
  readonly enabled: boolean
  readonly tables: number
  /** Events the projection applied. */
  readonly applied: number
}

/**
 * Runs the Sigma source once for the tables of `options` (append-only tables from their cursor,
 * the others when their refresh interval has passed), then catches the `sigma` projection up.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sync = Effect.fn("SigmaPlugin.sync")(function* (options: Options = {}) {
  const client = yield* StripeClient.StripeClient
  const tables = yield* resolveTables(options.tables)
  const accountId = yield* client.platformAccountId
  const query: SigmaQuery.Options = {
    api: options.api,
    apiKey: options.apiKey,
    filesBase: options.filesBase,
    pollInterval: options.pollInterval
  }
  const source = SigmaSource.make({
    client,
    tables,
    accountId,
    pageSize: options.pageSize,
    refreshInterval: options.refreshInterval,
    query
  })
  const enabled = yield* Pipeline.runSource(source).pipe(
    Effect.as(true),
    Effect.catchTag("SigmaNotEnabled", (e) => Effect.as(Effect.logWarning(e.message), false))
  )
  const target = options.target ?? "sigma"
  const applied = yield* PgProjection.catchUp(projection(tables, target), { target })
  const outcome: Outcome = { enabled, tables: tables.length, applied }
  return outcome
})

/**
 * `sync` now and then again every refresh interval, at most an hour apart (a failed run is logged
 * and tried again at the next one), until interrupted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loop = (options: Options = {}) =>
  sync(options).pipe(
    Effect.catchAllCause((cause) => Effect.logError("sigma sync failed", cause)),
    Effect.repeat(
      Schedule.spaced(Duration.decode(options.refreshInterval ?? "24 hours")).pipe(
        Schedule.union(Schedule.spaced("1 hour"))
      )
    ),
    Effect.asVoid
  )

/**
 * `loop` for as long as the layer lives. Needs `StripeClient` and the Postgres sink's services.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => Layer.scopedDiscard(Effect.forkScoped(loop(options)))
