/**
 * The sink's connection pool: `@effect/sql-pg`'s client over a `pg` pool whose connections run the
 * sink's hot statements (registered with `prepared`: the log's append and read, the projections'
 * upserts and checkpoint) as named prepared statements: Postgres parses and analyses such a
 * statement once per connection instead of on every call.
 *
 * Still planned on every call, for its parameters (`plan_cache_mode = force_custom_plan` on the
 * pool's sessions): a generic plan is kept until the next analyse of its tables, and one made while
 * the log is small (a hash anti-join over a sequential scan of `_events`, cheapest for a few
 * thousand rows) went on scanning it as it grew to tens of thousands within the minute (measured:
 * Postgres' CPU per webhook doubled). Custom plans cost what unnamed statements did to plan, and
 * never outlive the sizes they were made for.
 *
 * Every other statement runs as before (unnamed). A prepared statement holds its tables by
 * name as resolved at each (re)planning: Postgres invalidates and re-analyses it after DDL on them
 * (migrations, a schema swap of a rebuild), and its result columns never change.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, type Layer, Redacted } from "effect"
import * as Pg from "pg"

/** Statement text → its prepared statement's name. */
const names = new Map<string, string>()

/**
 * Marks a statement text as one to run as a named prepared statement on the connections of
 * `layer`; returns the text unchanged (run it with `sql.unsafe(text, params)` as before). Only for
 * a fixed set of texts (each one is prepared on every connection of the pool that runs it).
 *
 * @since 0.1.0
 */
export const prepared = (text: string): string => {
  if (!names.has(text)) names.set(text, `stripe_sync_${Crypto.hash("sha1", text, "hex").slice(0, 24)}`)
  return text
}

/** The name of a registered statement (tests). */
export const preparedName = (text: string): string | undefined => names.get(text)

type Callback = (err: Error | null, result: unknown) => void
interface Queryable {
  query: (config: unknown, values?: unknown, callback?: Callback) => unknown
}

/** Runs the registered texts of `client` as named statements (one-time, when the pool connects it). */
const prepareRegistered = (client: Queryable) => {
  const query = client.query
  client.query = function (this: Queryable, config: unknown, values?: unknown, callback?: Callback) {
    if (typeof config === "string" && Array.isArray(values)) {
      const name = names.get(config)
      if (name !== undefined) return query.call(this, { name, text: config, values }, callback)
    }
    return query.call(this, config, values, callback)
  }
}

/**
 * Options of the pool (a subset of `PgClient.PgClientConfig`).
 *
 * @since 0.1.0
 */
export interface Options {
  readonly url: Redacted.Redacted<string>
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number | undefined
  readonly applicationName?: string | undefined
  /** How long the first connection may take (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * A `PgClient` (and `SqlClient`) on a pool of `options.url` that runs the registered statements
 * prepared.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient, SqlError> =>
  PgClient.layerFromPool({
    applicationName: options.applicationName ?? "stripe-sync",
    acquire: Effect.acquireRelease(
      Effect.suspend(() => {
        const pool = new Pg.Pool({
          connectionString: Redacted.value(options.url),
          max: options.maxConnections ?? 10,
          application_name: options.applicationName ?? "stripe-sync",
          // a SET once connected (before the pool hands the connection out) rather than the
          // startup `options` parameter, which poolers (PgBouncer, Supavisor) refuse
          onConnect: async (client) => {
            await client.query("SET plan_cache_mode = force_custom_plan")
            prepareRegistered(client as unknown as Queryable)
          }
        })
        pool.on("error", () => {})
        return Effect.tryPromise({
          try: () => pool.query("SELECT 1"),
          catch: (cause) => new SqlError({ cause, message: "PgPool: failed to connect" })
        }).pipe(
          Effect.timeoutFail({
            duration: options.connectTimeout ?? Duration.seconds(5),
            onTimeout: () =>
              new SqlError({
                cause: new Error("Connection timed out"),
                message: "PgPool: connection timed out"
              })
          }),
          Effect.tapError(() => Effect.promise(() => pool.end().catch(() => undefined))),
          Effect.as(pool)
        )
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
    )
  })
