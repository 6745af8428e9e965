/**
 * Contracts of CursorStore, CheckpointStore and RevalidationQueue, run against every driver.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, type Layer, Option, Scope } from "effect"
import { CheckpointStore, CursorStore, LogPosition, RevalidationQueue } from "../../src/index.js"
import { unique } from "./fixtures.js"

export type StoreServices =
  | CursorStore.CursorStore
  | CheckpointStore.CheckpointStore
  | RevalidationQueue.RevalidationQueue

export const storesContract = (driver: string, driverLayer: Layer.Layer<StoreServices, unknown>) =>
  describe(`store contracts (${driver})`, () => {
    layer(driverLayer, { timeout: "60 seconds", excludeTestServices: true })((it) => {
      it.effect("CursorStore: put, get, list in key order, delete with null", () =>
        Effect.gen(function* () {
          const store = yield* CursorStore.CursorStore
          const source = unique("src")
          assert.isTrue(Option.isNone(yield* store.get(source, "a")))
          yield* store.put([
            { source, key: "b", value: { n: 2 } },
            { source, key: "a", value: { n: 1, nested: { s: "x" } } }
          ])
          assert.deepStrictEqual(yield* store.get(source, "a"), Option.some({ n: 1, nested: { s: "x" } }))
          assert.deepStrictEqual(
            (yield* store.list(source)).map((c) => [c.key, c.value]),
            [
              ["a", { n: 1, nested: { s: "x" } }],
              ["b", { n: 2 }]
            ]
          )
          yield* store.put([{ source, key: "a", value: null }])
          assert.deepStrictEqual(
            (yield* store.list(source)).map((c) => c.key),
            ["b"]
          )
          assert.deepStrictEqual(yield* store.list(unique("other")), [])
        })
      )

      it.effect("CursorStore: concurrent leases never hand out the same cursor", () =>
        Effect.gen(function* () {
          const store = yield* CursorStore.CursorStore
          const source = unique("src")
          yield* store.put(Array.from({ length: 8 }, (_, i) => ({ source, key: `r${i}`, value: { i } })))
          const leases = yield* Effect.all(
            Array.from({ length: 10 }, (_, i) => store.lease(source, { owner: `w${i}`, ttl: "1 minute" })),
            { concurrency: "unbounded" }
          )
          const got = leases.filter(Option.isSome).map((l) => l.value.key)
          assert.strictEqual(got.length, 8)
          assert.strictEqual(new Set(got).size, 8)
          // all leased: nothing left
          assert.isTrue(Option.isNone(yield* store.lease(source, { owner: "late", ttl: "1 minute" })))
          // a released cursor can be leased again, by another owner
          const first = leases.find(Option.isSome)!
          yield* store.release(source, first.value.key, "not-the-owner")
          assert.isTrue(Option.isNone(yield* store.lease(source, { owner: "late", ttl: "1 minute" })))
          const owner = `w${leases.indexOf(first)}`
          yield* store.release(source, first.value.key, owner)
          const again = yield* store.lease(source, { owner: "late", ttl: "1 minute" })
          assert.deepStrictEqual(
            Option.map(again, (c) => c.key),
            Option.some(first.value.key)
          )
        })
      )

      it.effect("CursorStore: the owner renews its lease; a lost lease does not renew", () =>
        Effect.gen(function* () {
          const store = yield* CursorStore.CursorStore
          const source = unique("src")
          yield* store.put([{ source, key: "k", value: { x: 1 } }])
          assert.isTrue(Option.isSome(yield* store.lease(source, { owner: "a", ttl: 0 })))
          // expired, but not yet taken: the owner may renew it, and then nobody else gets it
          assert.isTrue(yield* store.renew(source, "k", { owner: "a", ttl: "1 minute" }))
          assert.isTrue(Option.isNone(yield* store.lease(source, { owner: "b", ttl: "1 minute" })))
          assert.isFalse(yield* store.renew(source, "k", { owner: "b", ttl: "1 minute" }))
          assert.isFalse(yield* store.renew(source, "missing", { owner: "a", ttl: "1 minute" }))
        })
      )

      it.effect("CursorStore: an expired lease can be taken over", () =>
        Effect.gen(function* () {
          const store = yield* CursorStore.CursorStore
          const source = unique("src")
          yield* store.put([{ source, key: "only", value: { x: 1 } }])
          assert.isTrue(Option.isSome(yield* store.lease(source, { owner: "crashed", ttl: 0 })))
          const taken = yield* store.lease(source, { owner: "successor", ttl: "1 minute" })
          assert.deepStrictEqual(
            Option.map(taken, (c) => c.value),
            Option.some({ x: 1 })
          )
        })
      )

      it.effect("CheckpointStore: register, compare-and-set, conflict, reset", () =>
        Effect.gen(function* () {
          const store = yield* CheckpointStore.CheckpointStore
          const projection = unique("proj")
          assert.isTrue(Option.isNone(yield* store.get(projection)))
          const created = yield* store.register(projection, 3)
          assert.deepStrictEqual(created.position, LogPosition.zero)
          assert.strictEqual(created.version, 3)
          // registering again keeps what is stored
          assert.strictEqual((yield* store.register(projection, 4)).version, 3)
          const p1 = LogPosition.make(10n, 5n)
          yield* store.compareAndSet(projection, LogPosition.zero, p1)
          assert.deepStrictEqual(
            Option.map(yield* store.get(projection), (c) => c.position),
            Option.some(p1)
          )
          const conflict = yield* Effect.flip(
            store.compareAndSet(projection, LogPosition.zero, LogPosition.make(11n, 6n))
          )
          assert.strictEqual(conflict._tag, "CheckpointConflict")
          assert.deepStrictEqual(
            Option.map(yield* store.get(projection), (c) => c.position),
            Option.some(p1)
          )
          yield* store.reset(projection, LogPosition.make(20n, 9n), 4)
          const after = Option.getOrThrow(yield* store.get(projection))
          assert.deepStrictEqual([after.position, after.version], [LogPosition.make(20n, 9n), 4])
          assert.isTrue((yield* store.list).some((c) => c.projection === projection))
        })
      )

      it.effect("CheckpointStore: one runner lock per projection", () =>
        Effect.gen(function* () {
          const store = yield* CheckpointStore.CheckpointStore
          const projection = unique("proj")
          const scope1 = yield* Scope.make()
          assert.isTrue(yield* Scope.extend(store.tryLock(projection), scope1))
          const scope2 = yield* Scope.make()
          assert.isFalse(yield* Scope.extend(store.tryLock(projection), scope2))
          yield* Scope.close(scope2, Exit.void)
          // a waiting `lock` gets it once the holder lets go
          const waiter = yield* Effect.fork(Effect.scoped(Effect.as(store.lock(projection), "acquired")))
          yield* Scope.close(scope1, Exit.void)
          assert.strictEqual(yield* Fiber.join(waiter).pipe(Effect.timeout("20 seconds")), "acquired")
          // and another projection's lock is independent
          assert.isTrue(yield* Effect.scoped(store.tryLock(unique("proj"))))
        })
      )

      it.effect("RevalidationQueue: due items only, oldest first, deduplicated, limit", () =>
        Effect.gen(function* () {
          const queue = yield* RevalidationQueue.RevalidationQueue
          const accountId = unique("acct")
          const req = (objectId: string, notBefore: number) => ({
            accountId,
            objectType: "customer",
            objectId,
            notBefore,
            reason: "same-second"
          })
          yield* queue.request([req("cus_a", 100), req("cus_b", 50), req("cus_c", 500)])
          yield* queue.request([req("cus_a", 120)])
          const due = (yield* queue.take({ limit: 10, now: 200 })).filter((r) => r.accountId === accountId)
          assert.deepStrictEqual(
            due.map((r) => [r.objectId, r.notBefore]),
            [
              ["cus_b", 50],
              ["cus_a", 120]
            ]
          )
          assert.deepStrictEqual(
            (yield* queue.take({ limit: 10, now: 200 })).filter((r) => r.accountId === accountId),
            []
          )
          const later = (yield* queue.take({ limit: 1, now: 1000 })).filter((r) => r.accountId === accountId)
          assert.deepStrictEqual(
            later.map((r) => r.objectId),
            ["cus_c"]
          )
        })
      )
    })
  })
