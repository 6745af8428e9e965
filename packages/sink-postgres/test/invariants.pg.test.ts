/**
 * The log's invariants on a real Postgres: (a) no reader skips a row when transactions commit out
 * of position order, (b) exactly-once apply across a kill between apply and commit, (c) duplicates
 * skipped and cursors never ahead, (d) snapshots A → B → A, (f) malformed events rejected whole;
 * and two sync schemas in one database.
 */

import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { CheckpointStore, CursorStore, Event, EventLog, LogPosition } from "@stripe-sync/core"
import { Chunk, Deferred, Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { customerEvent, customerSnapshot, unique } from "../../core/test/contracts/fixtures.js"
import { PgProjection, PgSink } from "../src/index.js"
import { ProjectionTarget } from "../src/ProjectionTarget.js"
import { customerNames } from "./fixtures/customerNames.js"

const SinkLayer = PgSink.layer().pipe(Layer.provideMerge(PgTest.layer()))

const readAll = (log: EventLog.Service, from: LogPosition.LogPosition, limit = 1000) =>
  Effect.gen(function* () {
    const out: Array<Event.StoredEvent> = []
    let position = from
    for (;;) {
      const page = yield* log.read(position, { limit })
      out.push(...page.events)
      if (LogPosition.equals(page.next, position)) return out
      position = page.next
    }
  })

describe("event log invariants (postgres)", () => {
  layer(SinkLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "(a) transactions committing in the opposite order of their positions: a tailing reader sees every event once",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const sql = yield* SqlClient.SqlClient
          const accountId = unique("acct")
          const start = yield* log.head
          const first = Array.from({ length: 5 }, () => customerEvent({ accountId }))
          const second = Array.from({ length: 5 }, () => customerEvent({ accountId }))
          const reader = yield* EventLog.tail(log, start, { limit: 3, pollInterval: "20 millis" }).pipe(
            Stream.flatMap((page) => Stream.fromIterable(page.events)),
            Stream.filter((e) => e.accountId === accountId),
            Stream.take(10),
            Stream.runCollect,
            Effect.fork
          )
          const firstDrawn = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          // The first transaction draws its positions and stays open; the second commits before it.
          const held = yield* sql
            .withTransaction(
              Effect.zipRight(
                Effect.zipRight(log.append({ events: first }), Deferred.succeed(firstDrawn, undefined)),
                Deferred.await(release)
              )
            )
            .pipe(Effect.fork)
          yield* Deferred.await(firstDrawn)
          assert.deepStrictEqual(yield* log.append({ events: second }), { appended: 5, skipped: 0 })
          // A reader ordering by position alone would now see the second batch and move past the first.
          const visible = yield* sql<{ event_id: string }>`
          SELECT event_id FROM stripe._events WHERE account_id = ${accountId} ORDER BY position`
          assert.deepStrictEqual(
            visible.map((r) => r.event_id),
            second.map((e) => e.id)
          )
          // The log does not: nothing of either batch is below the horizon yet.
          assert.strictEqual((yield* readAll(log, start)).filter((e) => e.accountId === accountId).length, 0)
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(held)
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(reader).pipe(Effect.timeout("20 seconds")))
          assert.deepStrictEqual(
            seen.map((e) => e.id),
            [...first, ...second].map((e) => e.id)
          )
          // positions were drawn first-batch-first, and committed in the opposite order
          assert.isTrue(seen[4]!.position < seen[5]!.position)
          assert.isTrue(seen[4]!.txid < seen[5]!.txid)
        })
    )

    it.effect(
      "(a) many concurrent appenders and a tailing reader: every event exactly once, none skipped",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const start = yield* log.head
          const batches = Array.from({ length: 24 }, (_, i) =>
            Array.from({ length: 1 + ((i * 7) % 20) }, () => customerEvent({ accountId }))
          )
          const total = batches.reduce((n, b) => n + b.length, 0)
          const reader = yield* EventLog.tail(log, start, { limit: 7, pollInterval: "10 millis" }).pipe(
            Stream.flatMap((page) => Stream.fromIterable(page.events)),
            Stream.filter((e) => e.accountId === accountId),
            Stream.take(total),
            Stream.runCollect,
            Effect.fork
          )
          yield* Effect.forEach(batches, (events) => log.append({ events }), {
            concurrency: 6,
            discard: true
          })
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(reader).pipe(Effect.timeout("30 seconds")))
          assert.strictEqual(seen.length, total)
          assert.strictEqual(new Set(seen.map((e) => e.id)).size, total)
          assert.deepStrictEqual(new Set(seen.map((e) => e.id)), new Set(batches.flat().map((e) => e.id)))
          for (let i = 1; i < seen.length; i++) assert.isTrue(LogPosition.isAfter(seen[i]!, seen[i - 1]!))
        })
    )

    it.effect(
      "(b) a projection killed between apply and commit, restarted: every event applied exactly once",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const sql = yield* SqlClient.SqlClient
          const name = unique("kill").toLowerCase()
          const projection = customerNames({ name })
          const accountId = unique("acct")
          const events = Array.from({ length: 57 }, (_, i) =>
            customerEvent({
              accountId,
              objectId: `cus_${i % 9}`,
              versionTs: 1_700_000_000 + i,
              name: `n${i}`
            })
          )
          yield* log.append({ events })
          // 1. interrupted after its second batch was applied, before the checkpoint committed
          const applied = yield* Deferred.make<void>()
          let calls = 0
          const stalling = {
            ...projection,
            apply: (batch: ReadonlyArray<Event.StoredEvent>) =>
              Effect.zipRight(
                projection.apply(batch),
                ++calls === 2
                  ? Effect.zipRight(Deferred.succeed(applied, undefined), Effect.never)
                  : Effect.void
              )
          }
          const run = yield* PgProjection.catchUp(stalling, { batchSize: 10 }).pipe(Effect.fork)
          yield* Deferred.await(applied)
          yield* Fiber.interrupt(run)
          // 2. a fault after apply inside the transaction
          let faults = 0
          const faulty = {
            ...projection,
            apply: (batch: ReadonlyArray<Event.StoredEvent>) =>
              Effect.zipRight(
                projection.apply(batch),
                ++faults === 2 ? Effect.die(new Error("injected fault after apply")) : Effect.void
              )
          }
          const failed = yield* PgProjection.catchUp(faulty, { batchSize: 10 }).pipe(Effect.exit)
          assert.isTrue(Exit.isFailure(failed))
          // 3. restarted: finishes the log
          yield* PgProjection.catchUp(projection, { batchSize: 10 })
          const counts = yield* sql<{ event_id: string; times: number }>`
          SELECT event_id, times FROM ${sql("stripe")}.${sql(`${name}_applied`)} WHERE account_id = ${accountId}`
          assert.strictEqual(counts.length, events.length)
          for (const c of counts) assert.strictEqual(c.times, 1, c.event_id)
          const rows = yield* sql<{ id: string; name: string }>`
          SELECT id, name FROM ${sql("stripe")}.${sql(`${name}_customers`)} WHERE account_id = ${accountId} ORDER BY id`
          assert.strictEqual(rows.length, 9)
          for (const r of rows) {
            const latest = events.filter((e) => e.objectId === r.id).at(-1)!
            assert.strictEqual(r.name, latest.data.name)
          }
          const checkpoint = yield* (yield* CheckpointStore.CheckpointStore).get(name)
          assert.isTrue(Option.isSome(checkpoint))
        })
    )

    it.effect(
      "(b) the checkpoint moved by another writer during a step: the page read ahead is used only if it starts there, each event applied once",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const sql = yield* SqlClient.SqlClient
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const context = yield* Effect.context<SqlClient.SqlClient | CheckpointStore.CheckpointStore>()
          // the other writer applies the first `taken` events of the runner's second page and moves
          // the checkpoint past them, in its own transaction (a new fiber: not the runner's)
          for (const taken of [4, 10]) {
            const name = unique(`moved${taken}`).toLowerCase()
            const projection = customerNames({ name })
            const accountId = unique("acct")
            const events = Array.from({ length: 47 }, (_, i) =>
              customerEvent({ accountId, objectId: `cus_${i % 7}`, versionTs: 1_700_000_000 + i })
            )
            // the projection starts at the head: its pages hold only these events
            yield* checkpoints.reset(name, yield* log.head, 1)
            yield* log.append({ events })
            let calls = 0
            const otherWriter = (batch: ReadonlyArray<Event.StoredEvent>) => {
              const last = batch[taken - 1]!
              const write = sql.withTransaction(
                Effect.zipRight(
                  projection.apply(batch.slice(0, taken)),
                  checkpoints.reset(name, { txid: last.txid, position: last.position }, 1)
                )
              )
              return Effect.promise(() =>
                Effect.runPromise(
                  write.pipe(
                    Effect.provideService(ProjectionTarget, { schema: "stripe" }),
                    Effect.provide(context)
                  )
                )
              )
            }
            const moved = {
              ...projection,
              apply: (batch: ReadonlyArray<Event.StoredEvent>) =>
                Effect.zipRight(++calls === 2 ? otherWriter(batch) : Effect.void, projection.apply(batch))
            }
            yield* PgProjection.catchUp(moved, { batchSize: 10 })
            const counts = yield* sql<{ event_id: string; times: number }>`
            SELECT event_id, times FROM ${sql("stripe")}.${sql(`${name}_applied`)} WHERE account_id = ${accountId}`
            assert.strictEqual(counts.length, events.length, `taken ${taken}`)
            for (const c of counts) assert.strictEqual(c.times, 1, `taken ${taken}: ${c.event_id}`)
            const head = yield* log.head
            const checkpoint = Option.getOrThrow(yield* checkpoints.get(name))
            assert.deepStrictEqual(checkpoint.position, head)
          }
        })
    )

    it.effect(
      "(b) two runners of one projection at once: the advisory lock lets one work, each event applied once",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const sql = yield* SqlClient.SqlClient
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const name = unique("pair").toLowerCase()
          const projection = customerNames({ name })
          const accountId = unique("acct")
          yield* log.append({ events: Array.from({ length: 40 }, () => customerEvent({ accountId })) })
          assert.isTrue(yield* Effect.scoped(checkpoints.tryLock(name)))
          const both = yield* Effect.all(
            [
              PgProjection.catchUp(projection, { batchSize: 7 }),
              PgProjection.catchUp(projection, { batchSize: 5 })
            ],
            { concurrency: 2 }
          )
          assert.strictEqual(both[0] + both[1] >= 40, true)
          const counts = yield* sql<{ times: number }>`
          SELECT times FROM ${sql("stripe")}.${sql(`${name}_applied`)} WHERE account_id = ${accountId}`
          assert.strictEqual(counts.length, 40)
          assert.isTrue(counts.every((c) => c.times === 1))
          // the lock is held while a runner works and free afterwards
          const holder = yield* Effect.scoped(
            Effect.gen(function* () {
              yield* checkpoints.lock(name)
              return yield* Effect.scoped(checkpoints.tryLock(name))
            })
          )
          assert.isFalse(holder)
        })
    )

    it.effect("(c) a duplicate append is skipped, not an error; the cursor moves only with its events", () =>
      Effect.gen(function* () {
        const log = yield* EventLog.EventLog
        const cursors = yield* CursorStore.CursorStore
        const sql = yield* SqlClient.SqlClient
        const accountId = unique("acct")
        const source = unique("src")
        const events = [customerEvent({ accountId }), customerEvent({ accountId })]
        assert.deepStrictEqual(
          yield* log.append({ events, cursors: [{ source, key: "default", value: { page: 1 } }] }),
          { appended: 2, skipped: 0 }
        )
        assert.deepStrictEqual(
          yield* log.append({
            events: [...events, events[0]!],
            cursors: [{ source, key: "default", value: { page: 2 } }]
          }),
          { appended: 0, skipped: 3 }
        )
        assert.deepStrictEqual(yield* cursors.get(source, "default"), Option.some({ page: 2 }))
        // A batch the database rejects (a NUL character cannot be stored in jsonb) stores neither
        // its events nor its cursor.
        const good = customerEvent({ accountId })
        const bad = new Event.Event({
          ...customerEvent({ accountId }),
          data: { id: "cus_x", name: "a\u0000b" }
        })
        const error = yield* Effect.flip(
          log.append({ events: [good, bad], cursors: [{ source, key: "default", value: { page: 3 } }] })
        )
        assert.strictEqual(error._tag, "EventLogError")
        assert.deepStrictEqual(yield* cursors.get(source, "default"), Option.some({ page: 2 }))
        const stored = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM stripe._events WHERE account_id = ${accountId}`
        assert.strictEqual(stored[0]!.n, 2)
      })
    )

    it.effect(
      "(d) snapshots A → B → A are all recorded; re-reading an unchanged object appends nothing",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const sql = yield* SqlClient.SqlClient
          const accountId = unique("acct")
          const objectId = unique("cus")
          const start = yield* log.head
          for (const [state, ts] of [
            ["A", 1],
            ["B", 2],
            ["A", 3]
          ] as const) {
            assert.deepStrictEqual(
              yield* log.append({ events: [customerSnapshot(accountId, objectId, state, ts)] }),
              {
                appended: 1,
                skipped: 0
              }
            )
          }
          // the same state read again, in separate batches and twice within one batch
          assert.deepStrictEqual(
            yield* log.append({ events: [customerSnapshot(accountId, objectId, "A", 4)] }),
            {
              appended: 0,
              skipped: 1
            }
          )
          assert.deepStrictEqual(
            yield* log.append({
              events: [
                customerSnapshot(accountId, objectId, "A", 5),
                customerSnapshot(accountId, objectId, "A", 6)
              ]
            }),
            { appended: 0, skipped: 2 }
          )
          const read = (yield* readAll(log, start)).filter((e) => e.accountId === accountId)
          assert.deepStrictEqual(
            read.map((e) => [e.data.name, e.versionTs]),
            [
              ["A", 1],
              ["B", 2],
              ["A", 3]
            ]
          )
          const hashes = yield* sql<{ data_hash: string }>`
          SELECT data_hash FROM stripe._events WHERE account_id = ${accountId} AND object_id = ${objectId}
          ORDER BY position`
          assert.strictEqual(hashes.length, 3)
          assert.strictEqual(hashes[0]!.data_hash, hashes[2]!.data_hash)
          assert.notStrictEqual(hashes[0]!.data_hash, hashes[1]!.data_hash)
        })
    )

    it.effect(
      "(f) a malformed event is rejected with a typed error naming the field; nothing of its batch is written",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const cursors = yield* CursorStore.CursorStore
          const sql = yield* SqlClient.SqlClient
          const accountId = unique("acct")
          const source = unique("src")
          const good = customerEvent({ accountId })
          const cases: ReadonlyArray<readonly [unknown, string]> = [
            [{ ...customerEvent({ accountId }), data: "not an object" }, "data"],
            [{ ...customerEvent({ accountId }), accountId: "" }, "accountId"],
            [{ ...customerEvent({ accountId }), versionTs: 1.5 }, "versionTs"],
            [{ ...customerEvent({ accountId }), receivedAt: "yesterday" }, "receivedAt"]
          ]
          for (const [bad, field] of cases) {
            const error = yield* Effect.flip(
              log.append({
                events: [good, bad as Event.EventInput],
                cursors: [{ source, key: "default", value: { page: 1 } }]
              })
            )
            assert.strictEqual(error._tag, "InvalidEvent")
            if (error._tag === "InvalidEvent") {
              assert.strictEqual(error.field, field)
              assert.strictEqual(error.index, 1)
            }
          }
          const stored = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM stripe._events WHERE account_id = ${accountId}`
          assert.strictEqual(stored[0]!.n, 0)
          assert.isTrue(Option.isNone(yield* cursors.get(source, "default")))
        })
    )

    it.effect("two sync schemas in one database migrate and run separately", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const accountId = unique("acct")
        const inOther = yield* Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          yield* log.append({ events: [customerEvent({ accountId })] })
          return (yield* readAll(log, LogPosition.zero)).filter((e) => e.accountId === accountId).length
        }).pipe(Effect.provide(PgSink.layer({ schema: "stripe_other" })))
        assert.strictEqual(inOther, 1)
        const inDefault = yield* Effect.map(EventLog.EventLog, (log) => log).pipe(
          Effect.flatMap((log) => readAll(log, LogPosition.zero)),
          Effect.map((events) => events.filter((e) => e.accountId === accountId).length)
        )
        assert.strictEqual(inDefault, 0)
        const migrations = yield* sql<{ schema: string; n: number }>`
          SELECT table_schema AS schema, count(*)::int AS n FROM information_schema.tables
          WHERE table_name = '_migrations' GROUP BY table_schema ORDER BY table_schema`
        assert.deepStrictEqual(
          migrations.map((m) => m.schema),
          ["stripe", "stripe_other"]
        )
      })
    )

    it.effect("horizonHolders names an open transaction that holds readers back", () =>
      Effect.gen(function* () {
        const log = yield* EventLog.EventLog
        const sql = yield* SqlClient.SqlClient
        const open = yield* Deferred.make<number>()
        const release = yield* Deferred.make<void>()
        const holder = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              const rows = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid, pg_current_xact_id()`
              yield* Deferred.succeed(open, rows[0]!.pid)
              yield* Deferred.await(release)
            })
          )
          .pipe(Effect.fork)
        const pid = yield* Deferred.await(open)
        const holders = yield* log.horizonHolders
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        const mine = holders.find((h) => h.pid === pid)
        assert.isDefined(mine)
        assert.strictEqual(mine?.state, "idle in transaction")
        assert.include(mine?.query ?? "", "pg_current_xact_id")
        assert.isAtLeast(mine?.ageSeconds ?? -1, 0)
      })
    )

    it.effect("the change signal wakes a runner at once (NOTIFY inside the append transaction)", () =>
      Effect.gen(function* () {
        const log = yield* EventLog.EventLog
        const accountId = unique("acct")
        const signal = yield* log.changes.pipe(Stream.take(1), Stream.runDrain, Effect.fork)
        yield* Effect.yieldNow()
        // Appends until the listener (subscribed asynchronously) has seen one.
        yield* log
          .append({ events: [customerEvent({ accountId })] })
          .pipe(
            Effect.zipRight(Effect.sleep("50 millis")),
            Effect.repeat({ until: () => signal.unsafePoll() !== null, times: 100 })
          )
        assert.isTrue(Exit.isSuccess(yield* Fiber.await(signal)))
      })
    )
  })
})
