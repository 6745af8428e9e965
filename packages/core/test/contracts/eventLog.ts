/**
 * The contract of the EventLog port, run against every driver (memory here, Postgres in
 * sink-postgres). Tests share one store, so each works on its own account and source names and
 * reads from the head it saw at its start.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, type Layer, Option, Schedule, Stream } from "effect"
import { CursorStore, Event, EventLog, LogPosition } from "../../src/index.js"
import { customerEvent, customerSnapshot, unique } from "./fixtures.js"

export type LogServices = EventLog.EventLog | CursorStore.CursorStore

const readAll = (
  log: EventLog.Service,
  from: LogPosition.LogPosition,
  types?: ReadonlyArray<string>,
  limit = 1000
) =>
  Effect.gen(function* () {
    const out: Array<Event.StoredEvent> = []
    let position = from
    for (;;) {
      const page = yield* log.read(position, { limit, types })
      out.push(...page.events)
      if (LogPosition.equals(page.next, position)) return out
      position = page.next
    }
  })

export const eventLogContract = (driver: string, driverLayer: Layer.Layer<LogServices, unknown>) =>
  describe(`EventLog contract (${driver})`, () => {
    layer(driverLayer, { timeout: "60 seconds", excludeTestServices: true })((it) => {
      it.effect("appends a batch and reads it back in log order, field by field", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const start = yield* log.head
          const events = [1, 2, 3].map((i) =>
            customerEvent({ accountId, versionTs: 1_700_000_000 + i, name: `n${i}` })
          )
          const result = yield* log.append({ events })
          assert.deepStrictEqual(result, { appended: 3, skipped: 0 })
          const read = (yield* readAll(log, start)).filter((e) => e.accountId === accountId)
          assert.strictEqual(read.length, 3)
          for (let i = 0; i < 3; i++) {
            const a = read[i]!
            const e = events[i]!
            assert.strictEqual(a.id, e.id)
            assert.strictEqual(a.type, e.type)
            assert.strictEqual(a.source, e.source)
            assert.strictEqual(a.accountId, e.accountId)
            assert.strictEqual(a.objectType, e.objectType)
            assert.strictEqual(a.objectId, e.objectId)
            assert.strictEqual(a.versionTs, e.versionTs)
            assert.strictEqual(a.apiVersion, e.apiVersion)
            assert.deepStrictEqual(a.data, e.data)
            assert.strictEqual(a.receivedAt.getTime(), e.receivedAt.getTime())
          }
          for (let i = 1; i < read.length; i++) assert.isTrue(LogPosition.isAfter(read[i]!, read[i - 1]!))
        })
      )

      it.effect(
        "keeps text fields with quotes, backslashes, commas, braces, spaces and newlines, and a null API version",
        () =>
          Effect.gen(function* () {
            const log = yield* EventLog.EventLog
            const accountId = unique("acct")
            const start = yield* log.head
            const awkward = ['a"b', "c\\d", "e,f", "{g}", "h i", "j\nk", "NULL", '\\"']
            const events = awkward.map((text, i) => {
              const e = customerEvent({
                accountId,
                id: `${unique("evt")}${text}`,
                objectId: `cus ${text}`,
                type: `customer.${text}`,
                source: `src${text}`,
                versionTs: 1_700_000_000 + i
              })
              return new Event.Event({ ...e, apiVersion: i % 2 === 0 ? null : `v${text}` })
            })
            assert.deepStrictEqual(yield* log.append({ events }), { appended: events.length, skipped: 0 })
            const read = (yield* readAll(log, start)).filter((e) => e.accountId === accountId)
            assert.deepStrictEqual(
              read.map((e) => [e.id, e.type, e.source, e.objectId, e.apiVersion]),
              events.map((e) => [e.id, e.type, e.source, e.objectId, e.apiVersion])
            )
          })
      )

      it.effect("skips a duplicate (same account and event id) without an error", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const start = yield* log.head
          const event = customerEvent({ accountId })
          assert.deepStrictEqual(yield* log.append({ events: [event] }), { appended: 1, skipped: 0 })
          assert.deepStrictEqual(yield* log.append({ events: [event, event] }), { appended: 0, skipped: 2 })
          const read = (yield* readAll(log, start)).filter((e) => e.accountId === accountId)
          assert.deepStrictEqual(
            read.map((e) => e.id),
            [event.id]
          )
        })
      )

      it.effect("the same event id in two accounts is two events", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const a = unique("acct")
          const b = unique("acct")
          const id = unique("evt")
          const result = yield* log.append({
            events: [customerEvent({ accountId: a, id }), customerEvent({ accountId: b, id })]
          })
          assert.deepStrictEqual(result, { appended: 2, skipped: 0 })
        })
      )

      it.effect("records snapshots A → B → A, and appends nothing for an unchanged re-read", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const objectId = unique("cus")
          const start = yield* log.head
          yield* log.append({ events: [customerSnapshot(accountId, objectId, "A", 100)] })
          yield* log.append({ events: [customerSnapshot(accountId, objectId, "B", 101)] })
          yield* log.append({ events: [customerSnapshot(accountId, objectId, "A", 102)] })
          const reread = yield* log.append({ events: [customerSnapshot(accountId, objectId, "A", 103)] })
          assert.deepStrictEqual(reread, { appended: 0, skipped: 1 })
          // within one batch, every change of state is recorded too
          const inBatch = yield* log.append({
            events: [
              customerSnapshot(accountId, objectId, "A", 104),
              customerSnapshot(accountId, objectId, "C", 105),
              customerSnapshot(accountId, objectId, "C", 106),
              customerSnapshot(accountId, objectId, "A", 107)
            ]
          })
          assert.deepStrictEqual(inBatch, { appended: 2, skipped: 2 })
          const read = (yield* readAll(log, start)).filter((e) => e.accountId === accountId)
          assert.deepStrictEqual(
            read.map((e) => [e.data.name, e.versionTs]),
            [
              ["A", 100],
              ["B", 101],
              ["A", 102],
              ["C", 105],
              ["A", 107]
            ]
          )
        })
      )

      it.effect("an event's state counts as the latest state for later snapshots", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const objectId = unique("cus")
          const event = customerEvent({ accountId, objectId, name: "X", versionTs: 200 })
          yield* log.append({ events: [event] })
          const same = Event.snapshot({
            source: "revalidate",
            accountId,
            objectType: "customer",
            objectId,
            versionTs: 201,
            apiVersion: null,
            data: event.data
          })
          assert.deepStrictEqual(yield* log.append({ events: [same] }), { appended: 0, skipped: 1 })
        })
      )

      it.effect(
        "rejects a malformed event with a typed error naming the field; nothing of the batch is written",
        () =>
          Effect.gen(function* () {
            const log = yield* EventLog.EventLog
            const cursors = yield* CursorStore.CursorStore
            const accountId = unique("acct")
            const source = unique("src")
            const start = yield* log.head
            const good = customerEvent({ accountId })
            const bad = { ...customerEvent({ accountId }), versionTs: -5 }
            const error = yield* Effect.flip(
              log.append({ events: [good, bad], cursors: [{ source, key: "default", value: { page: 1 } }] })
            )
            assert.strictEqual(error._tag, "InvalidEvent")
            if (error._tag === "InvalidEvent") {
              assert.strictEqual(error.field, "versionTs")
              assert.strictEqual(error.index, 1)
            }
            const missing = { ...customerEvent({ accountId }), objectId: undefined }
            const error2 = yield* Effect.flip(
              log.append({ events: [missing as unknown as Event.EventInput] })
            )
            assert.strictEqual(error2._tag, "InvalidEvent")
            if (error2._tag === "InvalidEvent") assert.strictEqual(error2.field, "objectId")
            const read = (yield* readAll(log, start)).filter((e) => e.accountId === accountId)
            assert.strictEqual(read.length, 0)
            assert.isTrue(Option.isNone(yield* cursors.get(source, "default")))
          })
      )

      it.effect("writes the batch's cursor with its events, and only then", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const cursors = yield* CursorStore.CursorStore
          const accountId = unique("acct")
          const source = unique("src")
          yield* log.append({
            events: [customerEvent({ accountId })],
            cursors: [
              { source, key: "r1", value: { lt: 100, after: "cus_1" } },
              { source, key: "r2", value: { lt: 50 } }
            ]
          })
          assert.deepStrictEqual(yield* cursors.get(source, "r1"), Option.some({ lt: 100, after: "cus_1" }))
          // a finished range is deleted in the same unit as its last events
          yield* log.append({
            events: [customerEvent({ accountId })],
            cursors: [{ source, key: "r1", value: null }]
          })
          assert.deepStrictEqual(
            (yield* cursors.list(source)).map((c) => c.key),
            ["r2"]
          )
          // a batch whose events are all duplicates still moves its cursor
          const dup = customerEvent({ accountId })
          yield* log.append({ events: [dup] })
          yield* log.append({ events: [dup], cursors: [{ source, key: "r2", value: { lt: 10 } }] })
          assert.deepStrictEqual(yield* cursors.get(source, "r2"), Option.some({ lt: 10 }))
        })
      )

      it.effect("pages through the log with small limits, each event exactly once", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const start = yield* log.head
          const events = Array.from({ length: 23 }, () => customerEvent({ accountId }))
          yield* log.append({ events: events.slice(0, 10) })
          yield* log.append({ events: events.slice(10) })
          const read = (yield* readAll(log, start, undefined, 4)).filter((e) => e.accountId === accountId)
          assert.deepStrictEqual(
            read.map((e) => e.id),
            events.map((e) => e.id)
          )
        })
      )

      it.effect("filters by type and prefix, and moves past events of other types", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const start = yield* log.head
          yield* log.append({
            events: [
              customerEvent({ accountId, type: "customer.created" }),
              customerEvent({ accountId, type: "invoice.paid" }),
              customerEvent({ accountId, type: "customer.updated" }),
              customerEvent({ accountId, type: "charge.succeeded" })
            ]
          })
          const customers = (yield* readAll(log, start, ["customer.*"], 1)).filter(
            (e) => e.accountId === accountId
          )
          assert.deepStrictEqual(
            customers.map((e) => e.type),
            ["customer.created", "customer.updated"]
          )
          const exact = (yield* readAll(log, start, ["invoice.paid", "charge.succeeded"])).filter(
            (e) => e.accountId === accountId
          )
          assert.deepStrictEqual(
            exact.map((e) => e.type),
            ["invoice.paid", "charge.succeeded"]
          )
          const page = yield* log.read(start, { limit: 100, types: ["no.such.type"] })
          assert.strictEqual(page.events.length, 0)
          assert.isTrue(LogPosition.isAfter(page.next, start))
          // nothing after the returned position matches either
          const after = yield* log.read(page.next, { limit: 100, types: ["customer.*"] })
          assert.isFalse(after.events.some((e) => e.accountId === accountId))
        })
      )

      it.effect("head covers every appended event; nothing is read after it", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          yield* log.append({ events: [customerEvent({ accountId }), customerEvent({ accountId })] })
          const head = yield* log.head
          const rest = yield* log.read(head, { limit: 10 })
          assert.strictEqual(rest.events.length, 0)
        })
      )

      it.effect("a tailing reader sees events appended after it started, each once", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const start = yield* log.head
          const tail = yield* EventLog.tail(log, start, { limit: 100, pollInterval: "200 millis" }).pipe(
            Stream.flatMap((page) => Stream.fromIterable(page.events)),
            Stream.filter((e) => e.accountId === accountId),
            Stream.take(3),
            Stream.runCollect,
            Effect.fork
          )
          const events = [
            customerEvent({ accountId }),
            customerEvent({ accountId }),
            customerEvent({ accountId })
          ]
          yield* log.append({ events: [events[0]!] })
          yield* log.append({ events: events.slice(1) })
          const got = yield* Fiber.join(tail).pipe(Effect.timeout("20 seconds"), Effect.either)
          assert.isTrue(Either.isRight(got))
          if (Either.isRight(got)) {
            assert.deepStrictEqual(
              Chunk.toReadonlyArray(got.right).map((e) => e.id),
              events.map((e) => e.id)
            )
          }
        })
      )

      it.effect("emits a change signal after an append", () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const accountId = unique("acct")
          const signal = yield* log.changes.pipe(Stream.take(1), Stream.runDrain, Effect.fork)
          // the subscription starts asynchronously: append until the signal arrives, with a deadline
          const done = yield* Effect.suspend(() =>
            log.append({ events: [customerEvent({ accountId })] })
          ).pipe(
            Effect.zipRight(Effect.map(Fiber.poll(signal), Option.isSome)),
            Effect.repeat({ until: (d) => d, schedule: Schedule.spaced("50 millis") }),
            Effect.timeout("20 seconds"),
            Effect.either
          )
          assert.isTrue(Either.isRight(done))
        })
      )
    })
  })
