import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Schedule, Schema, Stream } from "effect"
import {
  CheckpointStore,
  CursorStore,
  type Event,
  EventLog,
  Memory,
  Pipeline,
  PipelineError,
  Projection,
  Source
} from "../src/index.js"
import { customerEvent } from "./contracts/fixtures.js"

/** A projection that counts how often it saw each event, to prove "exactly once". */
const countingProjection = (name: string, handles: ReadonlyArray<string> = ["customer.*"]) => {
  const seen = new Map<string, number>()
  const projection = Projection.make({
    name,
    version: 1,
    handles,
    apply: (events) =>
      Effect.sync(() => {
        for (const e of events) seen.set(e.id, (seen.get(e.id) ?? 0) + 1)
      })
  })
  return { projection, seen }
}

/** A source of `pages` pages of `perPage` events, resuming after the stored page number. */
const pagedSource = (name: string, accountId: string, pages: number, perPage: number) =>
  Source.make({
    name,
    cursor: Schema.Struct({ page: Schema.Number }),
    read: (from) =>
      Stream.range(Option.match(from, { onNone: () => 1, onSome: (c) => c.page + 1 }), pages).pipe(
        Stream.map((page) => ({
          events: Array.from({ length: perPage }, (_, i) =>
            customerEvent({ accountId, id: `evt_${name}_${page}_${i}`, type: "customer.created" })
          ),
          cursor: { page }
        }))
      )
  })

describe("Pipeline (memory)", () => {
  it.effect("runOnce: sources to completion, then projections fold every event exactly once", () =>
    Effect.gen(function* () {
      const { projection, seen } = countingProjection("counts")
      const pipeline = Pipeline.make({
        sources: [pagedSource("a", "acct_1", 5, 7), pagedSource("b", "acct_1", 3, 4)],
        projections: [projection],
        projectionOptions: { batchSize: 10 }
      })
      yield* pipeline.runOnce
      assert.strictEqual(seen.size, 5 * 7 + 3 * 4)
      assert.isTrue([...seen.values()].every((n) => n === 1))
      const cursors = yield* CursorStore.CursorStore
      assert.deepStrictEqual(yield* cursors.get("a", "default"), Option.some({ page: 5 }))
      // a second run resumes after the stored cursor: nothing new, nothing applied twice
      yield* pipeline.runOnce
      assert.isTrue([...seen.values()].every((n) => n === 1))
      const checkpoint = Option.getOrThrow(yield* (yield* CheckpointStore.CheckpointStore).get("counts"))
      const head = yield* (yield* EventLog.EventLog).head
      assert.deepStrictEqual(checkpoint.position, head)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("a source resumes from its stored cursor", () =>
    Effect.gen(function* () {
      const cursors = yield* CursorStore.CursorStore
      yield* cursors.put([{ source: "c", key: "default", value: { page: 2 } }])
      yield* Pipeline.runSource(pagedSource("c", "acct_1", 4, 1))
      const log = yield* EventLog.EventLog
      const page = yield* log.read({ txid: 0n, position: 0n }, { limit: 100 })
      assert.deepStrictEqual(
        page.events.map((e) => e.id),
        ["evt_c_3_0", "evt_c_4_0"]
      )
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("a stored cursor that does not decode fails the source with a clear error", () =>
    Effect.gen(function* () {
      const cursors = yield* CursorStore.CursorStore
      yield* cursors.put([{ source: "d", key: "default", value: { page: "two" } }])
      const error = yield* Effect.flip(Pipeline.runSource(pagedSource("d", "acct_1", 4, 1)))
      assert.strictEqual(error._tag, "SourceError")
      if (error._tag === "SourceError") assert.match(error.message, /cursor does not decode/)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.live("run: a live projection folds events appended while it runs", () =>
    Effect.gen(function* () {
      const { projection, seen } = countingProjection("live", ["customer.updated"])
      const fiber = yield* Effect.fork(
        Pipeline.runProjection(projection, { batchSize: 3, pollInterval: "50 millis" })
      )
      const log = yield* EventLog.EventLog
      const events: Array<Event.Event> = []
      for (let i = 0; i < 10; i++) {
        const batch = [
          customerEvent({ accountId: "acct_2" }),
          customerEvent({ accountId: "acct_2", type: "invoice.paid" })
        ]
        events.push(batch[0]!)
        yield* log.append({ events: batch })
      }
      yield* Effect.sync(() => seen.size).pipe(
        Effect.repeat({ until: (n) => n >= 10, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("20 seconds")
      )
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual([...seen.keys()].sort(), events.map((e) => e.id).sort())
      assert.isTrue([...seen.values()].every((n) => n === 1))
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("a projection error stops the projection and keeps its checkpoint", () =>
    Effect.gen(function* () {
      const log = yield* EventLog.EventLog
      yield* log.append({ events: [customerEvent({ accountId: "acct_3" })] })
      const failing = Projection.make({
        name: "failing",
        version: 1,
        handles: ["*"],
        apply: () =>
          Effect.fail(new PipelineError.ProjectionError({ projection: "failing", message: "boom" }))
      })
      const error = yield* Effect.flip(Pipeline.catchUp(failing))
      assert.strictEqual(error._tag, "ProjectionError")
      const cp = Option.getOrThrow(yield* (yield* CheckpointStore.CheckpointStore).get("failing"))
      assert.deepStrictEqual(cp.position, { txid: 0n, position: 0n })
    }).pipe(Effect.provide(Memory.layer))
  )
})
