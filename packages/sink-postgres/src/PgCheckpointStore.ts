/**
 * Projection checkpoints in `<schema>._checkpoints`, moved by compare-and-set; the runner lock of a
 * projection is a session-level advisory lock held on a dedicated connection for the scope.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { type Checkpoint, CheckpointStore } from "@stripe-sync/core/CheckpointStore"
import * as LogPosition from "@stripe-sync/core/LogPosition"
import { CheckpointConflict } from "@stripe-sync/core/PipelineError"
import { Effect, ExecutionStrategy, Exit, Layer, Option, Scope } from "effect"
import { storeError } from "./internal/errors.js"
import { tables } from "./internal/names.js"
import { prepared } from "./PgPool.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

interface Row {
  readonly projection: string
  readonly txid: string
  readonly position: string
  readonly version: number
  readonly updated_at: Date | string
}

const toCheckpoint = (r: Row): Checkpoint => ({
  projection: r.projection,
  position: { txid: BigInt(r.txid), position: BigInt(r.position) },
  version: Number(r.version),
  updatedAt: r.updated_at instanceof Date ? r.updated_at : new Date(r.updated_at)
})

/** The two int4 keys of a projection's runner lock: the schema's namespace, then the projection. */
export const runnerLockSql = (fn: string) => `SELECT ${fn}(hashtext($1), hashtext($2)) AS ok`

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("PgCheckpointStore.make")(function* (schema: string) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(schema)
  const fail = (op: string) => storeError("checkpoint store", op)
  const cols = `projection, txid::text AS txid, position::text AS position, version, updated_at`
  const lockNamespace = `stripe-sync:runner:${schema}`
  // run by every fold: prepared on the sink's pool (PgPool)
  const getCheckpoint = prepared(`SELECT ${cols} FROM ${t.checkpoints} WHERE projection = $1`)
  const insertCheckpoint = prepared(`INSERT INTO ${t.checkpoints} AS c (projection, txid, position, version)
                 VALUES ($1, $4::xid8, $5::int8, 0)
                 ON CONFLICT (projection) DO UPDATE SET txid = excluded.txid, position = excluded.position, updated_at = now()
                 WHERE c.txid = $2::xid8 AND c.position = $3::int8
                 RETURNING 1 AS ok`)
  const updateCheckpoint =
    prepared(`UPDATE ${t.checkpoints} SET txid = $4::xid8, position = $5::int8, updated_at = now()
                 WHERE projection = $1 AND txid = $2::xid8 AND position = $3::int8
                 RETURNING 1 AS ok`)
  const exec = (conn: Connection, text: string, params: ReadonlyArray<unknown>) =>
    conn.executeUnprepared(text, params, undefined) as Effect.Effect<ReadonlyArray<{ ok: unknown }>, unknown>

  /** Reserves a connection in a child scope and releases every advisory lock of it on close. */
  const reserveLockConnection = Effect.gen(function* () {
    const scope = yield* Effect.scope
    const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const conn = yield* Scope.extend(sql.reserve, child)
    yield* Scope.addFinalizer(child, exec(conn, "SELECT pg_advisory_unlock_all()", []).pipe(Effect.ignore))
    return { conn, child }
  })

  const service: CheckpointStore["Type"] = {
    get: (projection) =>
      sql.unsafe<Row>(getCheckpoint, [projection]).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toCheckpoint)),
        Effect.mapError(fail("get"))
      ),
    list: sql.unsafe<Row>(`SELECT ${cols} FROM ${t.checkpoints} ORDER BY projection COLLATE "C"`).pipe(
      Effect.map((rows) => rows.map(toCheckpoint)),
      Effect.mapError(fail("list"))
    ),
    register: (projection, version) =>
      sql
        .unsafe<Row>(
          `WITH created AS (
             INSERT INTO ${t.checkpoints} (projection, version) VALUES ($1, $2)
             ON CONFLICT (projection) DO NOTHING
             RETURNING ${cols}
           )
           SELECT * FROM created
           UNION ALL
           SELECT ${cols} FROM ${t.checkpoints} WHERE projection = $1`,
          [projection, version]
        )
        .pipe(
          Effect.map((rows) => toCheckpoint(rows[0]!)),
          Effect.mapError(fail("register"))
        ),
    compareAndSet: (projection, expected, next) =>
      Effect.gen(function* () {
        const params = [
          projection,
          String(expected.txid),
          String(expected.position),
          String(next.txid),
          String(next.position)
        ]
        // Absent counts as the start of the log, as in the memory driver.
        const moved = yield* sql
          .unsafe<{ ok: number }>(
            LogPosition.equals(expected, LogPosition.zero) ? insertCheckpoint : updateCheckpoint,
            params
          )
          .pipe(Effect.mapError(fail("compareAndSet")))
        if (moved.length > 0) return
        const actual = yield* service.get(projection)
        return yield* new CheckpointConflict({
          projection,
          expected: LogPosition.format(expected),
          actual: LogPosition.format(
            Option.match(actual, { onNone: () => LogPosition.zero, onSome: (c) => c.position })
          )
        })
      }),
    reset: (projection, position, version) =>
      sql
        .unsafe(
          `INSERT INTO ${t.checkpoints} (projection, txid, position, version) VALUES ($1, $2::xid8, $3::int8, $4)
           ON CONFLICT (projection) DO UPDATE
             SET txid = excluded.txid, position = excluded.position, version = excluded.version, updated_at = now()`,
          [projection, String(position.txid), String(position.position), version]
        )
        .pipe(Effect.asVoid, Effect.mapError(fail("reset"))),
    lock: (projection) =>
      Effect.gen(function* () {
        const { conn } = yield* reserveLockConnection
        // Waits (interruptibly: the driver cancels the query) while another session holds it.
        yield* exec(conn, runnerLockSql("pg_advisory_lock"), [lockNamespace, projection])
      }).pipe(Effect.mapError(fail("lock"))),
    tryLock: (projection) =>
      Effect.gen(function* () {
        const { conn, child } = yield* reserveLockConnection
        const rows = yield* exec(conn, runnerLockSql("pg_try_advisory_lock"), [lockNamespace, projection])
        const taken = rows[0]?.ok === true
        if (!taken) yield* Scope.close(child, Exit.void)
        return taken
      }).pipe(Effect.mapError(fail("tryLock")))
  }
  return service
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<CheckpointStore, never, SqlClient.SqlClient | PgSinkConfig> = Layer.effect(
  CheckpointStore,
  Effect.flatMap(PgSinkConfig, (c) => make(c.schema))
)
