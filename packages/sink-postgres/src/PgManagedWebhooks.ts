/**
 * The store of managed webhook endpoints in `<schema>._managed_webhooks` (sync migration 3), with a
 * lock across processes: a session advisory lock on a reserved connection, held only while the
 * caller's effect runs (no transaction stays open across the caller's HTTP calls).
 *
 * It implements core's `ManagedWebhookStore` port, which `ManagedWebhooks` of
 * `@stripe-sync/source-stripe` uses.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type * as ManagedWebhookStore from "@stripe-sync/core/ManagedWebhookStore"
import type { StoredEndpoint } from "@stripe-sync/core/ManagedWebhookStore"
import { Effect, Option, Redacted } from "effect"
import { storeError } from "./internal/errors.js"
import { quote } from "./internal/names.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

interface Row {
  readonly id: string
  readonly account_id: string
  readonly url: string
  readonly secret: string
  readonly enabled_events: ReadonlyArray<string>
  readonly connect: boolean
  readonly created_at: Date
}

const fromRow = (r: Row): StoredEndpoint => ({
  id: r.id,
  accountId: r.account_id,
  url: r.url,
  secret: Redacted.make(r.secret),
  enabledEvents: r.enabled_events,
  connect: r.connect,
  createdAt: new Date(r.created_at)
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("PgManagedWebhooks.make")(function* () {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const { schema } = yield* PgSinkConfig
  const table = `${quote(schema)}."_managed_webhooks"`
  const fail = (op: string) => storeError("managed webhooks", op)
  const columns = `id, account_id, url, secret, enabled_events, connect, created_at`
  const service: ManagedWebhookStore.Service = {
    withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const connection = yield* sql.reserve.pipe(Effect.mapError(fail("lock")))
          yield* connection
            .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", [key], undefined)
            .pipe(Effect.mapError(fail("lock")))
          return yield* effect.pipe(
            Effect.ensuring(
              connection
                .execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined)
                .pipe(Effect.ignore)
            )
          )
        })
      ),
    find: (accountId, url, connect) =>
      sql
        .unsafe<Row>(`SELECT ${columns} FROM ${table} WHERE account_id = $1 AND url = $2 AND connect = $3`, [
          accountId,
          url,
          connect
        ])
        .pipe(
          Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)),
          Effect.mapError(fail("find"))
        ),
    get: (id) =>
      sql.unsafe<Row>(`SELECT ${columns} FROM ${table} WHERE id = $1`, [id]).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)),
        Effect.mapError(fail("get"))
      ),
    list: sql.unsafe<Row>(`SELECT ${columns} FROM ${table} ORDER BY created_at, id`).pipe(
      Effect.map((rows) => rows.map(fromRow)),
      Effect.mapError(fail("list"))
    ),
    insert: (e) =>
      sql
        .unsafe(`INSERT INTO ${table} (${columns}) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)`, [
          e.id,
          e.accountId,
          e.url,
          Redacted.value(e.secret),
          JSON.stringify(e.enabledEvents),
          e.connect,
          e.createdAt
        ])
        .pipe(Effect.asVoid, Effect.mapError(fail("insert"))),
    remove: (id) =>
      sql
        .unsafe(`DELETE FROM ${table} WHERE id = $1`, [id])
        .pipe(Effect.asVoid, Effect.mapError(fail("remove")))
  }
  return service
})
