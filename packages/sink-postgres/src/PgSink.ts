/**
 * The Postgres sink: every port of the pipeline over one database, after the sync schema's
 * migrations. Provide it once at the edge of a program.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { PgClient } from "@effect/sql-pg"
import type { CheckpointStore } from "@stripe-sync/core/CheckpointStore"
import type { CursorStore } from "@stripe-sync/core/CursorStore"
import type { EventLog } from "@stripe-sync/core/EventLog"
import { ConfigurationError } from "@stripe-sync/core/PipelineError"
import type { RevalidationQueue } from "@stripe-sync/core/RevalidationQueue"
import type { UnitOfWork } from "@stripe-sync/core/UnitOfWork"
import { Effect, Layer, type Redacted } from "effect"
import * as Migrations from "./Migrations.js"
import * as PgCheckpointStore from "./PgCheckpointStore.js"
import * as PgCursorStore from "./PgCursorStore.js"
import * as PgEventLog from "./PgEventLog.js"
import * as PgPool from "./PgPool.js"
import * as PgRevalidationQueue from "./PgRevalidationQueue.js"
import * as PgSinkConfig from "./PgSinkConfig.js"
import * as PgUnitOfWork from "./PgUnitOfWork.js"
import type { MigrationError } from "./SinkPostgresError.js"

/**
 * What the sink provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | EventLog
  | CursorStore
  | CheckpointStore
  | RevalidationQueue
  | UnitOfWork
  | PgSinkConfig.PgSinkConfig

const poolerMessage =
  "the database URL points at a connection pooler in transaction mode (PgBouncer, Supavisor's default URL): LISTEN and session advisory locks do not work through it. Use a session-mode URL (Supavisor: port 5432; PgBouncer: pool_mode=session) or a direct connection."

/**
 * Best-effort detection of a transaction-mode pooler: one reserved client connection must stay on
 * one server session (same backend pid, LISTEN still registered in a later statement).
 *
 * @since 0.1.0
 * @category constructors
 */
export const checkSessionMode = Effect.fn("PgSink.checkSessionMode")(function* () {
  const sql = yield* SqlClient.SqlClient
  const verdict = yield* Effect.scoped(
    Effect.gen(function* () {
      const conn = yield* sql.reserve
      const run = (text: string) =>
        conn.executeUnprepared(text, [], undefined) as Effect.Effect<
          ReadonlyArray<Record<string, unknown>>,
          SqlError
        >
      const first = yield* run("SELECT pg_backend_pid() AS pid")
      yield* run("LISTEN stripe_sync_session_probe")
      const second = yield* run(
        "SELECT pg_backend_pid() AS pid, 'stripe_sync_session_probe' IN (SELECT pg_listening_channels()) AS listening"
      )
      yield* run("UNLISTEN stripe_sync_session_probe")
      return first[0]?.pid === second[0]?.pid && second[0]?.listening === true
    })
  ).pipe(Effect.catchAll(() => Effect.succeed(false)))
  if (!verdict) return yield* new ConfigurationError({ setting: "database url", message: poolerMessage })
})

/**
 * Every port of the pipeline in the sync schema (default `stripe`), after its migrations. Requires
 * a `PgClient` (session mode: LISTEN and advisory locks need one server session per connection).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: { readonly schema?: string } = {}
): Layer.Layer<Services, ConfigurationError | MigrationError, PgClient.PgClient | SqlClient.SqlClient> => {
  const config = PgSinkConfig.layer(options)
  const ready = Layer.effectDiscard(
    Effect.gen(function* () {
      const { schema } = yield* PgSinkConfig.PgSinkConfig
      yield* checkSessionMode()
      const applied = yield* Migrations.run(schema)
      if (applied.length > 0)
        yield* Effect.logInfo(`migrated schema "${schema}"`).pipe(Effect.annotateLogs({ applied }))
    })
  )
  const ports = Layer.mergeAll(
    PgEventLog.layer,
    PgCursorStore.layer,
    PgCheckpointStore.layer,
    PgRevalidationQueue.layer,
    PgUnitOfWork.layer
  )
  // int8 and xid8 are read as text casts by every driver, whatever type parsers the client has.
  return ports.pipe(Layer.provide(ready), Layer.provideMerge(config))
}

/**
 * The sink with its own connection pool to `url` (`PgPool.layer`: the sink's hot statements run
 * prepared).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromUrl = (options: {
  readonly url: Redacted.Redacted<string>
  readonly schema?: string
  /** Connections in the pool (default 10). Each running projection holds one for its runner lock. */
  readonly maxConnections?: number
  readonly applicationName?: string
}): Layer.Layer<
  Services | PgClient.PgClient | SqlClient.SqlClient,
  ConfigurationError | MigrationError | SqlError
> =>
  layer(options.schema === undefined ? {} : { schema: options.schema }).pipe(
    Layer.provideMerge(
      PgPool.layer({
        url: options.url,
        maxConnections: options.maxConnections ?? 10,
        applicationName: options.applicationName ?? "stripe-sync"
      })
    )
  )
