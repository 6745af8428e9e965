/**
 * Source cursors in `<schema>._cursors`, leased with `FOR UPDATE SKIP LOCKED` and an expiry.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { CursorStore } from "@stripe-sync/core/CursorStore"
import { Duration, Effect, Layer, Option } from "effect"
import { storeError } from "./internal/errors.js"
import { tables } from "./internal/names.js"
import { cursorCtes, cursorParams } from "./PgEventLog.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("PgCursorStore.make")(function* (schema: string) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(schema)
  const fail = (op: string) => storeError("cursor store", op)
  const putSql = `WITH ${cursorCtes(t, 1)} SELECT (SELECT count(*) FROM cursor_put)::int + (SELECT count(*) FROM cursor_del)::int AS n`
  const service: CursorStore["Type"] = {
    get: (source, key) =>
      sql
        .unsafe<{ value: unknown }>(`SELECT value FROM ${t.cursors} WHERE source = $1 AND key = $2`, [
          source,
          key
        ])
        .pipe(
          Effect.map((rows) => Option.fromNullable(rows[0]?.value)),
          Effect.mapError(fail("get"))
        ),
    list: (source) =>
      sql
        .unsafe<{ key: string; value: unknown }>(
          `SELECT key, value FROM ${t.cursors} WHERE source = $1 ORDER BY key COLLATE "C"`,
          [source]
        )
        .pipe(
          Effect.map((rows) => rows.map((r) => ({ source, key: r.key, value: r.value }))),
          Effect.mapError(fail("list"))
        ),
    put: (writes) =>
      writes.length === 0
        ? Effect.void
        : sql.unsafe(putSql, [...cursorParams(writes)]).pipe(Effect.asVoid, Effect.mapError(fail("put"))),
    lease: (source, options) =>
      sql
        .unsafe<{ key: string; value: unknown }>(
          `UPDATE ${t.cursors} c SET leased_by = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond'
           FROM (
             SELECT source, key FROM ${t.cursors}
             WHERE source = $1 AND (leased_by IS NULL OR lease_until <= clock_timestamp())
             ORDER BY key COLLATE "C"
             LIMIT 1
             FOR UPDATE SKIP LOCKED
           ) free
           WHERE c.source = free.source AND c.key = free.key
           RETURNING c.key, c.value`,
          [source, options.owner, Duration.toMillis(Duration.decode(options.ttl))]
        )
        .pipe(
          Effect.map((rows) =>
            Option.map(Option.fromNullable(rows[0]), (r) => ({ source, key: r.key, value: r.value }))
          ),
          Effect.mapError(fail("lease"))
        ),
    renew: (source, key, options) =>
      sql
        .unsafe<{ key: string }>(
          `UPDATE ${t.cursors} SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
           WHERE source = $1 AND key = $2 AND leased_by = $3
           RETURNING key`,
          [source, key, options.owner, Duration.toMillis(Duration.decode(options.ttl))]
        )
        .pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(fail("renew"))
        ),
    release: (source, key, owner) =>
      sql
        .unsafe(
          `UPDATE ${t.cursors} SET leased_by = NULL, lease_until = NULL
           WHERE source = $1 AND key = $2 AND leased_by = $3`,
          [source, key, owner]
        )
        .pipe(Effect.asVoid, Effect.mapError(fail("release")))
  }
  return service
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<CursorStore, never, SqlClient.SqlClient | PgSinkConfig> = Layer.effect(
  CursorStore,
  Effect.flatMap(PgSinkConfig, (c) => make(c.schema))
)
