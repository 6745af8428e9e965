/**
 * The revalidation queue in `<schema>._revalidate`: one row per object, taken with
 * `FOR UPDATE SKIP LOCKED` so that several workers never take the same request.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { type Request, RevalidationQueue } from "@stripe-sync/core/RevalidationQueue"
import { Effect, Layer } from "effect"
import { storeError } from "./internal/errors.js"
import { tables } from "./internal/names.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("PgRevalidationQueue.make")(function* (schema: string) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(schema)
  const fail = (op: string) => storeError("revalidation queue", op)
  const service: RevalidationQueue["Type"] = {
    request: (requests) => {
      if (requests.length === 0) return Effect.void
      // One row per object: the later notBefore wins, as in the memory driver.
      const byKey = new Map<string, Request>()
      for (const r of requests) {
        const key = `${r.accountId}\u0000${r.objectType}\u0000${r.objectId}`
        const prev = byKey.get(key)
        byKey.set(key, prev && prev.notBefore > r.notBefore ? prev : r)
      }
      const rows = [...byKey.values()]
      return sql
        .unsafe(
          `INSERT INTO ${t.revalidate} AS r (account_id, object_type, object_id, not_before, reason)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[])
           ON CONFLICT (account_id, object_type, object_id) DO UPDATE
             SET not_before = excluded.not_before, reason = excluded.reason, requested_at = now()
             WHERE r.not_before <= excluded.not_before`,
          [
            rows.map((r) => r.accountId),
            rows.map((r) => r.objectType),
            rows.map((r) => r.objectId),
            rows.map((r) => r.notBefore),
            rows.map((r) => r.reason)
          ]
        )
        .pipe(Effect.asVoid, Effect.mapError(fail("request")))
    },
    take: ({ limit, now }) =>
      sql
        .unsafe<{
          account_id: string
          object_type: string
          object_id: string
          not_before: string
          reason: string
          seq: string
        }>(
          `DELETE FROM ${t.revalidate} r USING (
             SELECT account_id, object_type, object_id FROM ${t.revalidate}
             WHERE not_before <= $1 ORDER BY not_before, seq LIMIT $2 FOR UPDATE SKIP LOCKED
           ) due
           WHERE r.account_id = due.account_id AND r.object_type = due.object_type AND r.object_id = due.object_id
           RETURNING r.account_id, r.object_type, r.object_id, r.not_before::text, r.reason, r.seq::text`,
          [now, limit]
        )
        .pipe(
          Effect.map((rows) =>
            [...rows]
              .sort((a, b) => Number(a.not_before) - Number(b.not_before) || Number(a.seq) - Number(b.seq))
              .map(
                (r): Request => ({
                  accountId: r.account_id,
                  objectType: r.object_type,
                  objectId: r.object_id,
                  notBefore: Number(r.not_before),
                  reason: r.reason
                })
              )
          ),
          Effect.mapError(fail("take"))
        ),
    size: sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.revalidate}`).pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0)),
      Effect.mapError(fail("size"))
    )
  }
  return service
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<RevalidationQueue, never, SqlClient.SqlClient | PgSinkConfig> = Layer.effect(
  RevalidationQueue,
  Effect.flatMap(PgSinkConfig, (c) => make(c.schema))
)
