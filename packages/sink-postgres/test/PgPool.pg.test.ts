/**
 * The sink's pool runs the log's hot statements as named prepared statements (parsed once per
 * connection, planned for their parameters on every call), other statements as before, and a
 * prepared statement stays right after DDL on its tables (Postgres re-analyses it).
 */

import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { EventLog, LogPosition } from "@stripe-sync/core"
import { Effect, Layer } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { customerEvent, unique } from "../../core/test/contracts/fixtures.js"
import { PgSink } from "../src/index.js"

// one connection: pg_prepared_statements lists the statements of the session that asks
const SinkLayer = PgSink.layer().pipe(Layer.provideMerge(PgTest.layer({ client: { maxConnections: 1 } })))

describe("PgPool", () => {
  layer(SinkLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect("prepares the append and the read once, and they stay right after DDL on the log", () =>
      Effect.gen(function* () {
        const log = yield* EventLog.EventLog
        const sql = yield* SqlClient.SqlClient
        const accountId = unique("acct")
        const ids: Array<string> = []
        // more than five runs: where Postgres would move on to a generic plan
        for (let i = 0; i < 8; i++) {
          const batch = [customerEvent({ accountId }), customerEvent({ accountId })]
          ids.push(...batch.map((e) => e.id))
          assert.deepStrictEqual(yield* log.append({ events: batch }), { appended: 2, skipped: 0 })
        }
        // a duplicate is still filtered by the prepared statement
        const again = customerEvent({ accountId, id: ids[0]! })
        assert.deepStrictEqual(yield* log.append({ events: [again] }), { appended: 0, skipped: 1 })
        const read = yield* log.read(LogPosition.zero, { limit: 1000 })
        assert.includeMembers(
          read.events.map((e) => e.id),
          ids
        )
        const statements = yield* sql<{ name: string; statement: string }>`
          SELECT name, statement FROM pg_prepared_statements ORDER BY name`
        const ours = statements.filter((s) => s.name.startsWith("stripe_sync_"))
        assert.isTrue(ours.some((s) => s.statement.includes("inserted AS")))
        assert.isTrue(ours.some((s) => s.statement.includes("_read_page")))
        // planned for their parameters every time (see PgPool)
        const mode = yield* sql<{ plan_cache_mode: string }>`SHOW plan_cache_mode`
        assert.strictEqual(mode[0]!.plan_cache_mode, "force_custom_plan")
        // the statements of this test are not prepared
        assert.isFalse(statements.some((s) => s.statement.includes("pg_prepared_statements")))

        // DDL on the log's table: the prepared append is re-planned, not broken
        yield* sql`ALTER TABLE stripe._events ADD COLUMN prepared_test_extra text`
        const after = [customerEvent({ accountId }), customerEvent({ accountId })]
        assert.deepStrictEqual(yield* log.append({ events: after }), { appended: 2, skipped: 0 })
        yield* sql`ALTER TABLE stripe._events DROP COLUMN prepared_test_extra`
        const last = customerEvent({ accountId })
        assert.deepStrictEqual(yield* log.append({ events: [last] }), { appended: 1, skipped: 0 })
        const rows = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM stripe._events WHERE account_id = ${accountId}`
        assert.strictEqual(rows[0]!.n, ids.length + 3)
      })
    )
  })
})
