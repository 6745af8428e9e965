/**
 * The range splitting and resumption of the backfill, on the in-memory sink, against a list
 * function with Stripe's documented list semantics (newest first; `created` filters;
 * `starting_after`; `has_more`). End-to-end runs against the emulator are in test/.
 */
import { assert, describe, it } from "@effect/vitest"
import { CursorStore, EventLog, LogPosition, Memory, Pipeline } from "@stripe-sync/core"
import { Effect, Option, Stream } from "effect"
import { Backfill } from "../src/index.js"

interface Obj {
  readonly id: string
  readonly object: string
  readonly created: number
  readonly [k: string]: unknown
}

/** Stripe's order: newest first; objects of one second by id, descending. */
const order = (a: Obj, b: Obj) => b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

const makeStripe = (objects: Array<Obj>) => {
  let requests = 0
  const list: Backfill.ListFn = (_path, params) =>
    Effect.suspend(() => {
      requests++
      const created = params.created as { gte?: number; lt?: number } | undefined
      let rows = objects
        .filter(
          (o) =>
            (created?.gte === undefined || o.created >= created.gte) &&
            (created?.lt === undefined || o.created < created.lt)
        )
        .sort(order)
      if (typeof params.starting_after === "string") {
        const i = rows.findIndex((o) => o.id === params.starting_after)
        if (i < 0 && !objects.some((o) => o.id === params.starting_after)) {
          return Effect.fail({ _tag: "CursorObjectMissing" } as const)
        }
        const anchor = objects.find((o) => o.id === params.starting_after)!
        rows = rows.filter((o) => order(o, anchor) > 0)
      }
      const limit = Number(params.limit ?? 10)
      return Effect.succeed({
        data: rows.slice(0, limit),
        hasMore: rows.length > limit,
        versionTs: 2_000_000_000
      })
    })
  return { list, requests: () => requests }
}

/** A seeded PRNG (mulberry32), so a failure can be replayed from its seed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const customers = (n: number, seed: number): Array<Obj> => {
  const random = prng(seed)
  return Array.from({ length: n }, (_, i) => ({
    id: `cus_${String(i).padStart(6, "0")}`,
    object: "customer",
    // spread over years, with many sharing a second
    created:
      1_500_000_000 + Math.floor(random() * 200) * 500_000 + (random() < 0.3 ? 0 : Math.floor(random() * 3)),
    name: `c${i}`
  }))
}

const resource: Backfill.Resource = { object: "customer", listPath: "/v1/customers", supportsCreated: true }
const platform = { id: "acct_platform", connected: false }

const loggedIds = Effect.gen(function* () {
  const log = yield* EventLog.EventLog
  const ids: Array<string> = []
  let from = LogPosition.zero
  for (;;) {
    const page = yield* log.read(from, { limit: 1000 })
    ids.push(...page.events.map((e) => e.objectId))
    if (LogPosition.equals(page.next, from)) return ids
    from = page.next
  }
})

describe("Backfill", () => {
  it.live("reads every object exactly once, splitting ranges in parallel", () =>
    Effect.gen(function* () {
      const seed = 20261125
      const objects = customers(2500, seed)
      const stripe = makeStripe(objects)
      const source = Backfill.make({
        list: stripe.list,
        resources: [resource],
        accounts: [platform],
        apiVersion: "2025-01-27.acacia",
        concurrency: 6
      })
      yield* Pipeline.runSource(source)
      const ids = yield* loggedIds
      assert.strictEqual(ids.length, objects.length, `seed ${seed}`)
      assert.strictEqual(new Set(ids).size, objects.length)
      assert.deepStrictEqual((yield* (yield* CursorStore.CursorStore).list(Backfill.sourceName)).length, 0)
      // splitting: far fewer requests than objects, but more than one cursor walked in parallel
      assert.isAtMost(stripe.requests(), Math.ceil(objects.length / 100) * 3)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.live("a run stopped after any number of pages resumes without loss or duplicates", () =>
    Effect.gen(function* () {
      const seed = 4242
      const objects = customers(1200, seed)
      const stripe = makeStripe(objects)
      const make = () =>
        Backfill.make({
          list: stripe.list,
          resources: [resource],
          accounts: [platform],
          apiVersion: null,
          concurrency: 3
        })
      // stop after 2, then 3, then 5 batches, then run to the end
      for (const n of [2, 3, 5]) {
        const source = make()
        yield* source.read.pipe(
          Stream.take(n),
          Stream.mapEffect((batch) => Pipeline.append(source.name, batch)),
          Stream.runDrain
        )
      }
      yield* Pipeline.runSource(make())
      const ids = yield* loggedIds
      assert.strictEqual(new Set(ids).size, objects.length, `seed ${seed}`)
      assert.strictEqual(ids.length, objects.length, `no object logged twice (seed ${seed})`)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.live(
    "a restarted backfill reads only what it had not finished; a later backfill reads everything again",
    () =>
      Effect.gen(function* () {
        const small = customers(50, 11)
        const large = customers(3000, 12).map((o) => ({
          ...o,
          id: o.id.replace("cus_", "in_"),
          object: "invoice"
        }))
        const requests = new Map<string, number>()
        const stripes = { "/v1/customers": makeStripe(small), "/v1/invoices": makeStripe(large) }
        const list: Backfill.ListFn = (path, params, options) => {
          requests.set(path, (requests.get(path) ?? 0) + 1)
          return stripes[path as keyof typeof stripes].list(path, params, options)
        }
        const invoices: Backfill.Resource = {
          object: "invoice",
          listPath: "/v1/invoices",
          supportsCreated: true
        }
        const make = () =>
          Backfill.make({
            list,
            resources: [resource, invoices],
            accounts: [platform],
            apiVersion: null,
            concurrency: 2
          })
        // stop once the customers are done and the invoices are not
        const first = make()
        const store = yield* CursorStore.CursorStore
        yield* first.read.pipe(
          Stream.mapEffect((batch) => Pipeline.append(first.name, batch)),
          Stream.takeUntilEffect(() =>
            Effect.map(store.list(Backfill.sourceName), (left) =>
              left.every((c) => c.key.includes("/invoice/"))
            )
          ),
          Stream.runDrain
        )
        assert.isAbove((yield* store.list(Backfill.sourceName)).length, 0, "invoices left to read")
        requests.clear()
        yield* Pipeline.runSource(make())
        assert.strictEqual(
          requests.get("/v1/customers"),
          undefined,
          "the finished customers are not read again"
        )
        const ids = yield* loggedIds
        assert.strictEqual(ids.length, small.length + large.length)
        assert.strictEqual(new Set(ids).size, small.length + large.length)
        assert.deepStrictEqual(yield* store.list(Backfill.planSourceName), [], "the plan is gone once done")
        // a new backfill after a complete one reads everything again
        requests.clear()
        yield* Pipeline.runSource(make())
        assert.isAbove(requests.get("/v1/customers") ?? 0, 0)
        assert.isAbove(requests.get("/v1/invoices") ?? 0, 0)
      }).pipe(Effect.provide(Memory.layer))
  )

  it.live("resumes when the object a cursor continues after was deleted", () =>
    Effect.gen(function* () {
      const objects = customers(450, 7)
      const stripe = makeStripe(objects)
      const make = () =>
        Backfill.make({
          list: stripe.list,
          resources: [resource],
          accounts: [platform],
          apiVersion: null,
          concurrency: 1
        })
      const first = make()
      yield* first.read.pipe(
        Stream.take(1),
        Stream.mapEffect((b) => Pipeline.append(first.name, b)),
        Stream.runDrain
      )
      const cursors = yield* (yield* CursorStore.CursorStore).list(Backfill.sourceName)
      const withAfter = cursors.map((c) => c.value as Backfill.RangeCursor).find((r) => r.after !== null)
      assert.isDefined(withAfter)
      const gone = objects.findIndex((o) => o.id === withAfter!.after!.id)
      objects.splice(gone, 1)
      yield* Pipeline.runSource(make())
      const ids = new Set(yield* loggedIds)
      for (const o of objects) assert.isTrue(ids.has(o.id), o.id)
    }).pipe(Effect.provide(Memory.layer))
  )

  it.live("skips a resource the account cannot list, and finishes the others", () =>
    Effect.gen(function* () {
      const objects = customers(30, 1)
      const stripe = makeStripe(objects)
      const skipped: Array<string> = []
      const list: Backfill.ListFn = (path, params, options) =>
        path === "/v1/issuing/cards"
          ? Effect.fail({ _tag: "NotAvailable", message: "Issuing is not enabled on this account" })
          : stripe.list(path, params, options)
      const source = Backfill.make({
        list,
        resources: [
          resource,
          { object: "issuing.card", listPath: "/v1/issuing/cards", supportsCreated: true }
        ],
        accounts: [platform],
        apiVersion: null,
        onSkipped: (_a, r, message) => Effect.sync(() => skipped.push(`${r.object}: ${message}`))
      })
      yield* Pipeline.runSource(source)
      assert.deepStrictEqual(skipped, ["issuing.card: Issuing is not enabled on this account"])
      assert.strictEqual(new Set(yield* loggedIds).size, 30)
      assert.isTrue(Option.isNone(yield* (yield* CursorStore.CursorStore).get(Backfill.sourceName, "x")))
    }).pipe(Effect.provide(Memory.layer))
  )

  it.live(
    "reads a per-parent list from the parents' expanded lists, paging only those that say has_more",
    () =>
      Effect.gen(function* () {
        // 30 customers: tax ids included with the customer (0–2 each), one with 13 (10 included + has_more),
        // one whose list Stripe did not include (read per parent)
        const parents = customers(30, 7)
        const taxIds = new Map(
          parents.map((c, i) => [
            c.id,
            Array.from({ length: i === 4 ? 13 : i % 3 }, (_, k) => ({
              id: `txi_${c.id.slice(4)}_${String(99 - k).padStart(2, "0")}`,
              object: "tax_id",
              created: c.created + 1,
              customer: c.id
            }))
          ])
        )
        const seen: Array<string> = []
        const stripe = makeStripe(parents)
        const list: Backfill.ListFn = (path, params, options) => {
          seen.push(path)
          if (path === "/v1/customers") {
            assert.deepStrictEqual(params.expand, ["data.tax_ids"])
            return Effect.map(stripe.list(path, params, options), (page) => ({
              ...page,
              data: page.data.map((c) =>
                c.id === parents[9]!.id
                  ? c
                  : {
                      ...c,
                      tax_ids: {
                        object: "list",
                        data: taxIds.get(String(c.id))!.slice(0, 10),
                        has_more: taxIds.get(String(c.id))!.length > 10,
                        url: `/v1/customers/${c.id}/tax_ids`
                      }
                    }
              )
            }))
          }
          const owner = path.startsWith("/v1/customers/")
            ? path.split("/")[3]!
            : (params["owner[customer]"] as string)
          const all = taxIds.get(owner)!
          const from =
            params.starting_after === undefined ? 0 : all.findIndex((t) => t.id === params.starting_after) + 1
          return Effect.succeed({
            data: all.slice(from, from + 100),
            hasMore: false,
            versionTs: 2_000_000_000
          })
        }
        const source = Backfill.make({
          list,
          resources: [
            {
              object: "tax_id",
              listPath: "/v1/tax_ids",
              listParams: { "owner[type]": "customer" },
              supportsCreated: false,
              perParent: {
                listPath: "/v1/customers",
                param: "owner[customer]",
                supportsCreated: true,
                expand: { field: "tax_ids", path: "/v1/customers/{id}/tax_ids" }
              }
            }
          ],
          accounts: [platform],
          apiVersion: null
        })
        yield* Pipeline.runSource(source)
        const ids = (yield* loggedIds).sort()
        const want = [...taxIds.values()]
          .flat()
          .map((t) => t.id)
          .sort()
        assert.deepStrictEqual(ids, want)
        // one request for the rest of the long list, one for the list that was not included
        assert.deepStrictEqual(seen.filter((p) => p !== "/v1/customers").sort(), [
          `/v1/customers/${parents[4]!.id}/tax_ids`,
          "/v1/tax_ids"
        ])
      }).pipe(Effect.provide(Memory.layer))
  )

  describe("a per-parent list whose children all refer to another list (active entitlements → features)", () => {
    const entitlements: Backfill.Resource = {
      object: "entitlements.active_entitlement",
      listPath: "/v1/entitlements/active_entitlements",
      supportsCreated: false,
      perParent: {
        listPath: "/v1/customers",
        param: "customer",
        supportsCreated: true,
        requires: "/v1/entitlements/features"
      }
    }
    const parents = customers(250, 11)
    /** Every third customer is entitled to one feature, when the account has features. */
    const run = (features: "none" | "some" | "unavailable") =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const stripe = makeStripe(parents)
        const list: Backfill.ListFn = (path, params, options) => {
          seen.push(path)
          if (path === "/v1/customers") return stripe.list(path, params, options)
          if (path === "/v1/entitlements/features") {
            if (features === "unavailable") {
              return Effect.fail({ _tag: "Failed", message: "500", retryable: true } as const)
            }
            return Effect.succeed({
              data: features === "some" ? [{ id: "feat_1", object: "entitlements.feature" }] : [],
              hasMore: false,
              versionTs: 2_000_000_000
            })
          }
          const i = parents.findIndex((c) => c.id === params.customer)
          return Effect.succeed({
            data:
              features !== "none" && i % 3 === 0
                ? [{ id: `ent_${i}`, object: "entitlements.active_entitlement", feature: "feat_1" }]
                : [],
            hasMore: false,
            versionTs: 2_000_000_000
          })
        }
        yield* Pipeline.runSource(
          Backfill.make({ list, resources: [entitlements], accounts: [platform], apiVersion: null })
        )
        assert.deepStrictEqual(yield* (yield* CursorStore.CursorStore).list(Backfill.sourceName), [])
        return {
          ids: (yield* loggedIds).sort(),
          perCustomer: seen.filter((p) => p === entitlements.listPath).length,
          featureRequests: seen.filter((p) => p === "/v1/entitlements/features").length
        }
      }).pipe(Effect.provide(Memory.layer))
    const entitled = parents.flatMap((_, i) => (i % 3 === 0 ? [`ent_${i}`] : [])).sort()

    it.live("no feature on the account: no request per customer, nothing logged, the resource done", () =>
      Effect.gen(function* () {
        const r = yield* run("none")
        assert.deepStrictEqual(r, { ids: [], perCustomer: 0, featureRequests: 1 })
      })
    )

    it.live("features: every customer is asked and every entitlement logged", () =>
      Effect.gen(function* () {
        const r = yield* run("some")
        assert.deepStrictEqual(r.ids, entitled)
        assert.strictEqual(r.perCustomer, parents.length)
        assert.strictEqual(r.featureRequests, 1)
      })
    )

    it.live("features that cannot be read: every customer is asked, as without the check", () =>
      Effect.gen(function* () {
        const r = yield* run("unavailable")
        assert.deepStrictEqual(r.ids, entitled)
        assert.strictEqual(r.perCustomer, parents.length)
      })
    )
  })
})
