/**
 * (e) Replay: the rebuilt tables equal a fold from scratch; readers see the old rows during the
 * rebuild; events appended during it are in the result; a view on a projection table still answers
 * and the table keeps its identity.
 */

import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { CheckpointStore, EventLog } from "@stripe-sync/core"
import { Effect, Fiber, Layer, Option, Schedule } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { customerEvent, unique } from "../../core/test/contracts/fixtures.js"
import { PgProjection, PgSink, Replay } from "../src/index.js"
import { customerNames } from "./fixtures/customerNames.js"

const SinkLayer = PgSink.layer().pipe(Layer.provideMerge(PgTest.layer()))

interface Row {
  readonly account_id: string
  readonly id: string
  readonly name: string | null
  readonly name_upper: string | null
  readonly version_ts: string
  readonly event_position: string
}

const rowsOf = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<Row>`SELECT account_id, id, name, name_upper, version_ts, event_position
      FROM ${sql("stripe")}.${sql(table)} ORDER BY account_id, id`
  )

const appliedOf = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{
      event_id: string
      times: number
    }>`SELECT event_id, times FROM ${sql("stripe")}.${sql(table)}
      ORDER BY account_id, event_id`
  )

const someEvents = (accountId: string, n: number, offset = 0) =>
  Array.from({ length: n }, (_, i) =>
    customerEvent({
      accountId,
      objectId: `cus_${(i + offset) % 13}`,
      versionTs: 1_700_000_000 + i + offset,
      name: `name ${i + offset}`
    })
  )

describe("Replay (postgres)", () => {
  layer(SinkLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "(e) rebuilds into shadow tables and swaps: identical tables, old rows meanwhile, appended events in, views keep working",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const log = yield* EventLog.EventLog
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const name = unique("rebuild").toLowerCase()
          const accountId = unique("acct")
          yield* log.append({ events: someEvents(accountId, 120) })
          yield* PgProjection.catchUp(customerNames({ name }), { batchSize: 50 })
          const table = `${name}_customers`
          const before = yield* rowsOf(table)
          assert.strictEqual(before.length, 13)
          yield* sql`CREATE VIEW ${sql("stripe")}.${sql(`${name}_view`)} AS
          SELECT id, name_upper FROM ${sql("stripe")}.${sql(table)}`
          const oid = (yield* sql<{ oid: number }>`SELECT ${`stripe.${table}`}::regclass::oid AS oid`)[0]!.oid

          const v2 = customerNames({ name, version: 2 })
          assert.isTrue(yield* Replay.needsRebuild(v2))
          const during: Array<ReadonlyArray<Row>> = []
          const late = someEvents(accountId, 30, 200)
          const phases: Array<string> = []
          const result = yield* Replay.rebuild(v2, {
            batchSize: 40,
            onProgress: (p) =>
              Effect.gen(function* () {
                phases.push(p.phase)
                if (p.phase === "shadow" && during.length === 0) {
                  // a reader during the rebuild sees the old rows; an append meanwhile is in the result
                  during.push(
                    yield* rowsOf(table).pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.orDie)
                  )
                  yield* log.append({ events: late }).pipe(Effect.orDie)
                }
              })
          })
          assert.deepStrictEqual(during[0], before)
          assert.isTrue(phases.includes("shadow") && phases.includes("swap"))
          assert.strictEqual(result.applied, 150)
          assert.deepStrictEqual(result.tables, [`${name}_applied`, `${name}_customers`])

          // identical to a fold from scratch of the same log
          const check = `${name}_check`
          yield* PgProjection.catchUp(customerNames({ name: check }), { batchSize: 1000 })
          const after = yield* rowsOf(table)
          assert.deepStrictEqual(after, yield* rowsOf(`${check}_customers`))
          assert.deepStrictEqual(yield* appliedOf(`${name}_applied`), yield* appliedOf(`${check}_applied`))
          assert.isTrue((yield* appliedOf(`${name}_applied`)).every((r) => r.times === 1))
          assert.isTrue(after.some((r) => r.name === "name 229"))
          // the generated column is recomputed in the live table
          assert.isTrue(after.every((r) => r.name_upper === r.name?.toUpperCase()))

          // the view still answers, the table kept its identity, the checkpoint moved
          const viewRows = yield* sql<{ id: string; name_upper: string }>`
          SELECT id, name_upper FROM ${sql("stripe")}.${sql(`${name}_view`)} ORDER BY id`
          assert.strictEqual(viewRows.length, 13)
          assert.strictEqual(
            (yield* sql<{ oid: number }>`SELECT ${`stripe.${table}`}::regclass::oid AS oid`)[0]!.oid,
            oid
          )
          const checkpoint = Option.getOrThrow(yield* checkpoints.get(name))
          assert.strictEqual(checkpoint.version, 2)
          assert.strictEqual(checkpoint.position.position, result.position.position)
          assert.isFalse(yield* Replay.needsRebuild(v2))
          // the shadow schema and its bookkeeping are gone
          const shadows = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_namespace WHERE nspname LIKE ${"stripe_shadow_%"}`
          assert.strictEqual(shadows[0]!.n, 0)
          assert.isTrue(Option.isNone(yield* checkpoints.get(`${name}#rebuild`)))

          // the live runner continues from the moved checkpoint without applying anything twice
          const more = someEvents(accountId, 5, 300)
          yield* log.append({ events: more })
          assert.strictEqual(yield* PgProjection.catchUp(v2), 5)
          assert.isTrue((yield* appliedOf(`${name}_applied`)).every((r) => r.times === 1))
        })
    )

    it.effect(
      "(e) a live runner keeps running during a rebuild: after the swap it continues, each event applied once",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const name = unique("running").toLowerCase()
          const accountId = unique("acct")
          const live = customerNames({ name })
          yield* log.append({ events: someEvents(accountId, 80) })
          yield* PgProjection.migrate(live)
          const runner = yield* PgProjection.run(live, { batchSize: 7, pollInterval: "20 millis" }).pipe(
            Effect.fork
          )
          const appliedCount = appliedOf(`${name}_applied`).pipe(Effect.map((rows) => rows.length))
          const sql = yield* SqlClient.SqlClient
          // every customer event of the log (other tests' too) is folded by this projection
          const inLog = sql<{
            n: number
          }>`SELECT count(*)::int AS n FROM stripe._events WHERE type LIKE 'customer.%'`
          const waitForAll = Effect.flatMap(inLog, (rows) =>
            appliedCount.pipe(
              Effect.repeat({ until: (c) => c >= rows[0]!.n, schedule: Schedule.spaced("20 millis") }),
              Effect.timeout("30 seconds")
            )
          )
          yield* waitForAll
          yield* Replay.rebuild(customerNames({ name, version: 2 }), {
            batchSize: 30,
            onProgress: (p) =>
              p.phase === "shadow" && p.applied <= 30
                ? log.append({ events: someEvents(accountId, 10, 500) }).pipe(Effect.asVoid, Effect.orDie)
                : Effect.void
          })
          yield* log.append({ events: someEvents(accountId, 10, 900) })
          yield* waitForAll
          yield* Fiber.interrupt(runner)
          const applied = yield* appliedOf(`${name}_applied`)
          assert.strictEqual(applied.length, (yield* inLog)[0]!.n)
          assert.isTrue(applied.every((r) => r.times === 1))
          const check = `${name}_check`
          yield* PgProjection.catchUp(customerNames({ name: check }))
          assert.deepStrictEqual(yield* rowsOf(`${name}_customers`), yield* rowsOf(`${check}_customers`))
        })
    )

    it.effect("(e) rebuilds in place in one transaction", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const log = yield* EventLog.EventLog
        const name = unique("inplace").toLowerCase()
        const accountId = unique("acct")
        yield* log.append({ events: someEvents(accountId, 60) })
        yield* PgProjection.catchUp(customerNames({ name }))
        // damage the live table, as a buggy version would have
        yield* sql`UPDATE ${sql("stripe")}.${sql(`${name}_customers`)} SET name = 'wrong'`
        const progress: Array<number> = []
        const result = yield* Replay.rebuild(customerNames({ name, version: 3 }), {
          inPlace: true,
          batchSize: 25,
          onProgress: (p) => Effect.sync(() => progress.push(p.applied))
        })
        const inLog = yield* sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM stripe._events WHERE type LIKE 'customer.%'`
        assert.strictEqual(result.applied, inLog[0]!.n)
        assert.strictEqual(progress.at(-1), result.applied)
        assert.deepStrictEqual(progress.slice(0, 2), [25, 50])
        const check = `${name}_check`
        yield* PgProjection.catchUp(customerNames({ name: check }))
        assert.deepStrictEqual(yield* rowsOf(`${name}_customers`), yield* rowsOf(`${check}_customers`))
        assert.isTrue((yield* appliedOf(`${name}_applied`)).every((r) => r.times === 1))
      })
    )
  })
})
