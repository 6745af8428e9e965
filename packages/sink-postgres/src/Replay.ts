/**
 * Rebuilds a projection from the start of the log. By default into a shadow schema while the live
 * tables serve reads; once the shadow has caught up, one transaction pauses the live writers (a
 * SHARE ROW EXCLUSIVE lock on the live tables, which readers never wait for), applies the tail of
 * the log to the shadow, replaces the live tables' content (`DELETE` + `INSERT … SELECT`, so the
 * tables keep their identity: views, grants, row-level security and publications keep working)
 * and moves the checkpoint. `inPlace` rebuilds the live tables in one transaction instead (small
 * logs: that transaction holds every log reader back while it runs).
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { CheckpointStore } from "@stripe-sync/core/CheckpointStore"
import { matchesType } from "@stripe-sync/core/EventLog"
import * as LogPosition from "@stripe-sync/core/LogPosition"
import * as Pipeline from "@stripe-sync/core/Pipeline"
import type { Projection } from "@stripe-sync/core/Projection"
import { Effect, Option, Schedule } from "effect"
import { quote, shadowSchema, tables } from "./internal/names.js"
import * as Migrations from "./Migrations.js"
import { PgSinkConfig } from "./PgSinkConfig.js"
import { ProjectionTarget } from "./ProjectionTarget.js"
import { ReplayError } from "./SinkPostgresError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly projection: string
  /** `shadow`: filling the shadow tables; `swap`: the final transaction; `in-place`: the one transaction. */
  readonly phase: "shadow" | "swap" | "in-place"
  readonly applied: number
  /** Events of the projection's types in the log when the rebuild started (an estimate of the work). */
  readonly total: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Rebuild the live tables in one transaction instead of through shadow tables. */
  readonly inPlace?: boolean
  readonly onProgress?: (progress: Progress) => Effect.Effect<void>
  /** Events per applied batch (default 1000). */
  readonly batchSize?: number
  /** The live schema of the projection's tables (default: the sync schema). */
  readonly target?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly projection: string
  readonly applied: number
  readonly position: LogPosition.LogPosition
  readonly version: number
  /** The tables whose content was replaced. */
  readonly tables: ReadonlyArray<string>
}

interface TableInfo {
  readonly name: string
  /** Columns written by the copy: in both tables, not generated in the live one. */
  readonly columns: ReadonlyArray<string>
  readonly identityAlways: boolean
}

const replayError = (projection: string, message: string) => (cause: unknown) =>
  new ReplayError({
    projection,
    message: `${message}: ${String(
      (cause as { cause?: { message?: unknown } })?.cause?.message ??
        (cause as { message?: unknown })?.message ??
        cause
    )}`,
    cause
  })

/** Lock not available (NOWAIT) or a deadlock: the transaction is rolled back and may be retried. */
const isLockConflict = (error: { readonly _tag: string; readonly cause?: unknown }): boolean => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return error._tag === "SqlError" && (code === "55P03" || code === "40P01")
}

/**
 * Does the projection's checkpoint say its tables were built by another version?
 *
 * @since 0.1.0
 * @category constructors
 */
export const needsRebuild = <R>(projection: Projection<R>) =>
  Effect.map(
    Effect.flatMap(CheckpointStore, (c) => c.get(projection.name)),
    Option.match({ onNone: () => false, onSome: (c) => c.version !== projection.version })
  )

/**
 * Rebuilds the projection's tables from the start of the log (see the module description).
 *
 * @since 0.1.0
 * @category constructors
 */
export const rebuild = Effect.fn("Replay.rebuild")(function* <R>(
  projection: Projection<R>,
  options: Options = {}
) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const { schema } = yield* PgSinkConfig
  const checkpoints = yield* CheckpointStore
  const live = options.target ?? schema
  const shadow = shadowSchema(live, projection.name)
  const t = tables(schema)
  const batchSize = options.batchSize ?? 1000
  const shadowName = `${projection.name}#rebuild`
  const report = options.onProgress ?? (() => Effect.void)
  const fail = replayError(projection.name, `rebuild of ${projection.name}`)

  const dropShadow = Effect.all(
    [
      sql.unsafe(`DROP SCHEMA IF EXISTS ${quote(shadow)} CASCADE`),
      sql.unsafe(`DELETE FROM ${t.projectionMigrations} WHERE target_schema = $1`, [shadow]),
      sql.unsafe(`DELETE FROM ${t.checkpoints} WHERE projection = $1`, [shadowName])
    ],
    { discard: true }
  )

  const tableInfo = Effect.gen(function* () {
    const names = (yield* sql.unsafe<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`,
      [shadow]
    )).map((r) => r.relname)
    const infos: Array<TableInfo> = []
    for (const name of names) {
      const cols = yield* sql.unsafe<{ attname: string; live_generated: string; live_identity: string }>(
        `SELECT l.attname, l.attgenerated::text AS live_generated, l.attidentity::text AS live_identity
         FROM pg_attribute l
         JOIN pg_attribute s ON s.attrelid = $2::regclass AND s.attname = l.attname AND s.attnum > 0 AND NOT s.attisdropped
         WHERE l.attrelid = $1::regclass AND l.attnum > 0 AND NOT l.attisdropped
         ORDER BY l.attnum`,
        [`${quote(live)}.${quote(name)}`, `${quote(shadow)}.${quote(name)}`]
      )
      infos.push({
        name,
        columns: cols.filter((c) => c.live_generated === "").map((c) => c.attname),
        identityAlways: cols.some((c) => c.live_identity === "a")
      })
    }
    // Parents before children, so that the copy satisfies foreign keys between the tables.
    const edges = yield* sql.unsafe<{ child: string; parent: string }>(
      `SELECT ch.relname AS child, pa.relname AS parent FROM pg_constraint k
       JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
       WHERE k.contype = 'f' AND ch.relnamespace = $1::regnamespace AND pa.relnamespace = $1::regnamespace`,
      [quote(live)]
    )
    const ordered: Array<TableInfo> = []
    const visiting = new Set<string>()
    const visit = (info: TableInfo) => {
      if (ordered.includes(info) || visiting.has(info.name)) return
      visiting.add(info.name)
      for (const e of edges) {
        const parent = infos.find((i) => i.name === e.parent)
        if (e.child === info.name && parent !== undefined && parent !== info) visit(parent)
      }
      ordered.push(info)
    }
    for (const info of infos) visit(info)
    return ordered
  })

  const lockLive = (infos: ReadonlyArray<TableInfo>) =>
    infos.length === 0
      ? Effect.void
      : sql.unsafe(
          `LOCK TABLE ${infos.map((i) => `${quote(live)}.${quote(i.name)}`).join(", ")} IN SHARE ROW EXCLUSIVE MODE NOWAIT`
        )

  // The live tables are locked NOWAIT: waiting for them one by one while holding the first could
  // deadlock with a live runner writing them in another order. A refused lock rolls the whole
  // transaction back, and it is tried again shortly.
  const retryLocks = <A, E extends { readonly _tag: string; readonly cause?: unknown }, R2>(
    effect: Effect.Effect<A, E, R2>
  ) =>
    Effect.retry(effect, {
      while: isLockConflict,
      schedule: Schedule.exponential("20 millis").pipe(
        Schedule.jittered,
        Schedule.union(Schedule.spaced("1 second")),
        Schedule.intersect(Schedule.recurs(60))
      )
    })

  const lockCheckpoint = sql.unsafe(`SELECT 1 FROM ${t.checkpoints} WHERE projection = $1 FOR UPDATE`, [
    projection.name
  ])

  const countTotal = sql
    .unsafe<{ type: string; n: string }>(
      `SELECT type, count(*)::text AS n FROM ${t.events}
       WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) GROUP BY type`
    )
    .pipe(
      Effect.map((rows) =>
        rows.reduce((sum, r) => (matchesType(projection.handles, r.type) ? sum + Number(r.n) : sum), 0)
      )
    )

  /** Applies batches to `target` from `from` until caught up with the horizon. */
  const applyUntilCaughtUp = (
    p: Projection<R>,
    target: string,
    from: LogPosition.LogPosition,
    onBatch: (applied: number) => Effect.Effect<void>
  ) =>
    Effect.gen(function* () {
      let position = from
      let applied = 0
      for (;;) {
        const r = yield* Pipeline.step(p, position, batchSize)
        applied += r.applied
        if (r.applied > 0) yield* onBatch(applied)
        if (LogPosition.equals(r.next, position)) return { position, applied }
        position = r.next
      }
    }).pipe(Effect.provideService(ProjectionTarget, { schema: target }))

  yield* Migrations.runProjection(projection, { schema, target: live })
  yield* checkpoints.register(projection.name, projection.version)
  const total = yield* countTotal.pipe(Effect.mapError(fail))

  if (options.inPlace === true) {
    // The shadow schema is used only to learn the projection's tables.
    yield* dropShadow.pipe(Effect.mapError(fail))
    yield* Migrations.runProjection(projection, { schema, target: shadow })
    const infos = yield* tableInfo.pipe(Effect.mapError(fail))
    yield* dropShadow.pipe(Effect.mapError(fail))
    const result = yield* sql
      .withTransaction(
        Effect.gen(function* () {
          yield* lockLive(infos)
          yield* lockCheckpoint
          for (const info of [...infos].reverse())
            yield* sql.unsafe(`DELETE FROM ${quote(live)}.${quote(info.name)}`)
          yield* checkpoints.reset(projection.name, LogPosition.zero, projection.version)
          return yield* applyUntilCaughtUp(projection, live, LogPosition.zero, (applied) =>
            report({ projection: projection.name, phase: "in-place", applied, total })
          )
        })
      )
      .pipe(retryLocks, Effect.catchTag("SqlError", fail))
    return {
      projection: projection.name,
      applied: result.applied,
      position: result.position,
      version: projection.version,
      tables: infos.map((i) => i.name)
    } satisfies Result
  }

  return yield* Effect.gen(function* () {
    yield* dropShadow.pipe(Effect.mapError(fail))
    yield* Migrations.runProjection(projection, { schema, target: shadow })
    yield* checkpoints.reset(shadowName, LogPosition.zero, projection.version)
    const shadowProjection: Projection<R> = { ...projection, name: shadowName }
    const filled = yield* applyUntilCaughtUp(shadowProjection, shadow, LogPosition.zero, (applied) =>
      report({ projection: projection.name, phase: "shadow", applied, total })
    )
    const infos = yield* tableInfo.pipe(Effect.mapError(fail))
    const swapped = yield* sql
      .withTransaction(
        Effect.gen(function* () {
          // Live writers wait from here to the commit; readers never do.
          yield* lockLive(infos)
          yield* lockCheckpoint
          const tail = yield* applyUntilCaughtUp(shadowProjection, shadow, filled.position, (applied) =>
            report({ projection: projection.name, phase: "swap", applied: filled.applied + applied, total })
          )
          for (const info of [...infos].reverse())
            yield* sql.unsafe(`DELETE FROM ${quote(live)}.${quote(info.name)}`)
          for (const info of infos) {
            if (info.columns.length === 0) continue
            const cols = info.columns.map(quote).join(", ")
            yield* sql.unsafe(
              `INSERT INTO ${quote(live)}.${quote(info.name)} (${cols})${info.identityAlways ? " OVERRIDING SYSTEM VALUE" : ""}
             SELECT ${cols} FROM ${quote(shadow)}.${quote(info.name)}`
            )
          }
          yield* checkpoints.reset(projection.name, tail.position, projection.version)
          return { position: tail.position, applied: filled.applied + tail.applied }
        })
      )
      .pipe(retryLocks, Effect.catchTag("SqlError", fail))
    yield* report({ projection: projection.name, phase: "swap", applied: swapped.applied, total })
    return {
      projection: projection.name,
      applied: swapped.applied,
      position: swapped.position,
      version: projection.version,
      tables: infos.map((i) => i.name)
    } satisfies Result
  }).pipe(Effect.ensuring(dropShadow.pipe(Effect.ignore)))
})
