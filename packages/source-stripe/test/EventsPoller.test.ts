/**
 * The Events API poller on the in-memory sink, against a fake `/v1/events` with Stripe's documented
 * list semantics (newest first, `created` filters, `starting_after`, `has_more`) and eventual
 * consistency: an event becomes visible some time after its `created`. End-to-end runs against the
 * emulator are in test/live.pg.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { EventLog, LogPosition, Memory, Pipeline } from "@stripe-sync/core"
import { Effect, Stream } from "effect"
import { EventsPoller, type StripeClient } from "../src/index.js"

interface FakeEvent {
  readonly id: string
  readonly created: number
  /** When it shows in the list (Stripe's eventual consistency). */
  readonly visibleAt: number
  readonly account?: string
}

const platform = "acct_platform"

const fakeStripe = (events: Array<FakeEvent>) => {
  const clock = { now: 1_000 }
  const calls: Array<{ account: string | undefined; params: Record<string, unknown>; returned: number }> = []
  const order = (a: FakeEvent, b: FakeEvent) => b.created - a.created || (a.id < b.id ? 1 : -1)
  const body = (e: FakeEvent) => ({
    id: e.id,
    object: "event",
    type: "customer.updated",
    created: e.created,
    api_version: "2025-01-27.acacia",
    ...(e.account ? { account: e.account } : {}),
    data: { object: { id: `cus_${e.id}`, object: "customer", n: e.id } }
  })
  const client: StripeClient.Service = {
    apiVersion: "2025-01-27.acacia",
    platformAccountId: Effect.succeed(platform),
    retrieve: () => Effect.dieMessage("not used"),
    request: () => Effect.dieMessage("not used"),
    list: (_path, params = {}, options) =>
      Effect.sync(() => {
        const gt = params["created[gt]"] as number | undefined
        const lte = params["created[lte]"] as number | undefined
        let rows = events
          .filter((e) => e.visibleAt <= clock.now && (e.account ?? undefined) === options?.account)
          .filter((e) => (gt === undefined || e.created > gt) && (lte === undefined || e.created <= lte))
          .sort(order)
        if (typeof params.starting_after === "string") {
          const anchor = events.find((e) => e.id === params.starting_after)!
          rows = rows.filter((e) => order(e, anchor) > 0)
        }
        const limit = Number(params.limit ?? 10)
        calls.push({ account: options?.account, params, returned: Math.min(limit, rows.length) })
        return {
          data: rows.slice(0, limit).map(body),
          has_more: rows.length > limit,
          url: "/v1/events",
          versionTs: clock.now
        }
      })
  }
  return { client, clock, calls }
}

const logged = Effect.gen(function* () {
  const log = yield* EventLog.EventLog
  const page = yield* log.read(LogPosition.zero, { limit: 10_000 })
  return page.events.map((e) => e.id as string)
})

const accounts = [{ id: platform, connected: false }]

describe("EventsPoller", () => {
  it.effect("reads oldest first, after the cursor, and a second pass appends nothing", () =>
    Effect.gen(function* () {
      const events = Array.from({ length: 25 }, (_, i) => ({
        id: `evt_${String(i).padStart(3, "0")}`,
        created: 900 + Math.floor(i / 3),
        visibleAt: 0
      }))
      const stripe = fakeStripe(events)
      const source = EventsPoller.make({
        client: stripe.client,
        accounts,
        lag: 5,
        startAfter: 899,
        batchSize: 4,
        once: true
      })
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(
        yield* logged,
        events.map((e) => e.id)
      )
      stripe.clock.now += 10
      yield* Pipeline.runSource(source)
      assert.strictEqual((yield* logged).length, 25)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("events younger than the lag wait for a later pass", () =>
    Effect.gen(function* () {
      const stripe = fakeStripe([
        { id: "evt_old", created: 990, visibleAt: 0 },
        { id: "evt_new", created: 998, visibleAt: 0 }
      ])
      const source = EventsPoller.make({
        client: stripe.client,
        accounts,
        lag: 5,
        startAfter: 980,
        once: true
      })
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(yield* logged, ["evt_old"])
      stripe.clock.now = 1_004
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(yield* logged, ["evt_old", "evt_new"])
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("an event that shows late, within the overlap, is still read (once)", () =>
    Effect.gen(function* () {
      const stripe = fakeStripe([
        { id: "evt_a", created: 990, visibleAt: 0 },
        // created before the first pass's bound, visible only after it
        { id: "evt_late", created: 993, visibleAt: 1_020 },
        { id: "evt_b", created: 994, visibleAt: 0 }
      ])
      const source = EventsPoller.make({
        client: stripe.client,
        accounts,
        lag: 5,
        overlap: 30,
        startAfter: 980,
        once: true
      })
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(yield* logged, ["evt_a", "evt_b"])
      stripe.clock.now = 1_021
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(yield* logged, ["evt_a", "evt_b", "evt_late"])
      // the re-read window skips what the cursor has seen: nothing appended, nothing even offered
      const log = yield* EventLog.EventLog
      const before = (yield* log.head).position
      stripe.clock.now = 1_030
      yield* Pipeline.runSource(source)
      assert.strictEqual((yield* log.head).position, before)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("a pass stopped after some batches resumes after the last stored one, losing nothing", () =>
    Effect.gen(function* () {
      const events = Array.from({ length: 20 }, (_, i) => ({
        id: `evt_${String(i).padStart(3, "0")}`,
        // many in one second, so a batch boundary falls inside a second
        created: 950 + Math.floor(i / 7),
        visibleAt: 0
      }))
      const stripe = fakeStripe(events)
      const source = EventsPoller.make({
        client: stripe.client,
        accounts,
        lag: 5,
        startAfter: 900,
        batchSize: 3,
        once: true
      })
      // store two batches, then "crash"
      yield* source.read.pipe(
        Stream.take(2),
        Stream.runForEach((batch) => Pipeline.append(source.name, batch))
      )
      assert.strictEqual((yield* logged).length, 6)
      const log = yield* EventLog.EventLog
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(
        yield* logged,
        events.map((e) => e.id)
      )
      assert.strictEqual((yield* log.head).position, 20n, "no event offered twice")
    }).pipe(Effect.provide(Memory.layer))
  )

  it.effect(
    "a long downtime is read in slices that hold a bounded number of events, oldest first, each once",
    () =>
      Effect.gen(function* () {
        // ten days of events: sparse stretches, dense ones, and one second with more than a slice holds
        const events: Array<FakeEvent> = []
        for (let i = 0; i < 1_500; i++)
          events.push({ id: `evt_a${i}`, created: 1_000_000 + i * 500, visibleAt: 0 })
        for (let i = 0; i < 1_200; i++) events.push({ id: `evt_b${i}`, created: 1_400_000 + i, visibleAt: 0 })
        for (let i = 0; i < 250; i++) events.push({ id: `evt_c${i}`, created: 1_700_000, visibleAt: 0 })
        const stripe = fakeStripe(events)
        stripe.clock.now = 1_864_000
        const cap = 200
        yield* Pipeline.runSource(
          EventsPoller.make({
            client: stripe.client,
            accounts,
            lag: 5,
            startAfter: 999_999,
            maxEventsPerSlice: cap,
            once: true
          })
        )
        const expected = [...events]
          .sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .map((e) => e.id)
        assert.deepStrictEqual(yield* logged, expected)
        // what one slice fetched: at most the cap and one more page, unless it is a single second
        const perSlice = new Map<string, number>()
        for (const call of stripe.calls) {
          const gt = call.params["created[gt]"] as number | undefined
          const lte = call.params["created[lte]"] as number | undefined
          if (gt === undefined || lte === undefined || lte - gt <= 1) continue
          const key = `${gt}:${lte}`
          perSlice.set(key, (perSlice.get(key) ?? 0) + call.returned)
        }
        for (const [slice, fetched] of perSlice) assert.isAtMost(fetched, cap + 100, slice)
      }).pipe(Effect.provide(Memory.layer))
  )

  it.effect("connected accounts are read with Stripe-Account, each into its own account", () =>
    Effect.gen(function* () {
      const stripe = fakeStripe([
        { id: "evt_p", created: 990, visibleAt: 0 },
        { id: "evt_c", created: 991, visibleAt: 0, account: "acct_c" }
      ])
      yield* Pipeline.runSource(
        EventsPoller.make({
          client: stripe.client,
          accounts: [...accounts, { id: "acct_c", connected: true }],
          lag: 5,
          startAfter: 980,
          once: true
        })
      )
      const log = yield* EventLog.EventLog
      const page = yield* log.read(LogPosition.zero, { limit: 10 })
      assert.deepStrictEqual(
        page.events.map((e) => [e.id, e.accountId, e.source]),
        [
          ["evt_p", platform, "events_api"],
          ["evt_c", "acct_c", "events_api"]
        ]
      )
      assert.isTrue(stripe.calls.some((c) => c.account === "acct_c"))
    }).pipe(Effect.provide(Memory.layer))
  )
})
