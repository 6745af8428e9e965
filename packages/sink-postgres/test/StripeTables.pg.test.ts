import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Event, EventLog, LogPosition, RevalidationQueue } from "@stripe-sync/core"
import { Effect, Layer } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { PgProjection, PgSink, Replay, StripeTables } from "../src/index.js"

const tables: ReadonlyArray<StripeTables.TableSpec> = [
  {
    object: "customer",
    table: "customers",
    deletable: true,
    columns: [
      { name: "email", kind: "text" },
      { name: "balance", kind: "bigint" },
      { name: "livemode", kind: "boolean" },
      { name: "default_source", kind: "ref" },
      { name: "address", kind: "jsonb" },
      { name: "created", kind: "bigint" }
    ]
  },
  {
    object: "subscription",
    table: "subscriptions",
    deletable: false,
    columns: [
      { name: "status", kind: "text" },
      { name: "customer", kind: "ref" }
    ],
    children: [{ field: "items", table: "subscription_items" }]
  },
  {
    object: "subscription_item",
    table: "subscription_items",
    deletable: true,
    isChild: true,
    columns: [
      { name: "quantity", kind: "bigint" },
      { name: "subscription", kind: "ref" }
    ]
  },
  {
    object: "invoice",
    table: "invoices",
    deletable: true,
    columns: [
      { name: "amount_due", kind: "bigint" },
      { name: "status", kind: "text" }
    ],
    children: [{ field: "lines", table: "invoice_line_items" }]
  },
  {
    object: "line_item",
    table: "invoice_line_items",
    deletable: false,
    isChild: true,
    columns: [{ name: "amount", kind: "bigint" }]
  }
]

const projection = StripeTables.projection({ tables, name: "stripe_tables_test" })

const SinkLayer = PgSink.layer({ schema: "stripe" }).pipe(Layer.provideMerge(PgTest.layer()))

let seq = 0
const event = (options: {
  readonly type: string
  readonly object: Record<string, unknown> & { readonly id: string; readonly object: string }
  readonly versionTs: number
  readonly id?: string
  readonly accountId?: string
}) =>
  new Event.Event({
    id: Event.EventId.make(options.id ?? `evt_${String(++seq).padStart(6, "0")}`),
    type: options.type,
    source: options.type.endsWith(".snapshot") ? "backfill" : "webhook",
    accountId: options.accountId ?? "acct_platform",
    objectType: options.object.object,
    objectId: options.object.id,
    versionTs: options.versionTs,
    apiVersion: "2025-01-27.acacia",
    data: options.object,
    receivedAt: new Date()
  })

const fold = (events: ReadonlyArray<Event.Event>) =>
  Effect.gen(function* () {
    const log = yield* EventLog.EventLog
    if (events.length > 0) yield* log.append({ events })
    yield* PgProjection.catchUp(projection, { batchSize: 500 })
  })

const row = (table: string, id: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<Record<string, unknown>>(`SELECT * FROM stripe.${table} WHERE id = $1`, [
      id
    ])
    return rows[0]
  })

const customer = (id: string, fields: Record<string, unknown> = {}) => ({
  id,
  object: "customer",
  email: "jenny@example.com",
  balance: 0,
  livemode: false,
  default_source: null,
  address: null,
  created: 1_600_000_000,
  ...fields
})

describe("StripeTables projection", () => {
  layer(SinkLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect("folds events into typed rows; a newer state replaces an older one", () =>
      Effect.gen(function* () {
        yield* fold([
          event({ type: "customer.created", object: customer("cus_a"), versionTs: 100 }),
          event({
            type: "customer.updated",
            object: customer("cus_a", {
              email: "new@example.com",
              balance: -2500,
              livemode: true,
              default_source: { id: "card_1", object: "card" },
              address: { city: "Berlin", country: "DE" }
            }),
            versionTs: 101
          })
        ])
        const r = yield* row("customers", "cus_a")
        assert.isDefined(r)
        assert.strictEqual(r!.email, "new@example.com")
        assert.strictEqual(r!.balance, "-2500")
        assert.strictEqual(r!.livemode, true)
        assert.strictEqual(r!.default_source, "card_1")
        assert.deepStrictEqual(r!.address, { city: "Berlin", country: "DE" })
        assert.strictEqual(r!.created, "1600000000")
        assert.strictEqual(r!.deleted, false)
        assert.strictEqual(r!._version_ts, "101")
        assert.strictEqual(r!._account_id, "acct_platform")
        assert.strictEqual((r!._raw_data as { email: string }).email, "new@example.com")
        // an unexpanded reference reads the same column
        yield* fold([
          event({
            type: "customer.updated",
            object: customer("cus_a", { default_source: "card_2" }),
            versionTs: 102
          })
        ])
        assert.strictEqual((yield* row("customers", "cus_a"))!.default_source, "card_2")
      })
    )

    it.effect("an older event never overwrites a newer row", () =>
      Effect.gen(function* () {
        yield* fold([
          event({
            type: "customer.updated",
            object: customer("cus_b", { email: "new@x.io" }),
            versionTs: 200
          })
        ])
        yield* fold([
          event({
            type: "customer.updated",
            object: customer("cus_b", { email: "old@x.io" }),
            versionTs: 150
          })
        ])
        assert.strictEqual((yield* row("customers", "cus_b"))!.email, "new@x.io")
      })
    )

    it.effect("a delete leaves a tombstone that neither a late nor a later event brings back", () =>
      Effect.gen(function* () {
        yield* fold([
          event({ type: "customer.created", object: customer("cus_c"), versionTs: 300 }),
          event({ type: "customer.deleted", object: customer("cus_c"), versionTs: 310 })
        ])
        let r = yield* row("customers", "cus_c")
        assert.strictEqual(r!.deleted, true)
        assert.strictEqual(r!._version_ts, "310")
        yield* fold([
          event({
            type: "customer.updated",
            object: customer("cus_c", { email: "late@x.io" }),
            versionTs: 305
          })
        ])
        yield* fold([
          event({
            type: "customer.updated",
            object: customer("cus_c", { email: "after@x.io" }),
            versionTs: 320
          })
        ])
        r = yield* row("customers", "cus_c")
        assert.strictEqual(r!.deleted, true)
        assert.strictEqual(r!.email, "jenny@example.com")
        // an API answer with deleted: true is a tombstone too
        yield* fold([
          event({ type: "customer.snapshot", object: customer("cus_d"), versionTs: 400 }),
          event({
            type: "customer.snapshot",
            object: { id: "cus_d", object: "customer", deleted: true },
            versionTs: 401
          })
        ])
        assert.strictEqual((yield* row("customers", "cus_d"))!.deleted, true)
      })
    )

    it.effect("a tombstone wins over a live state whatever the arrival order and the batches", () =>
      Effect.gen(function* () {
        const deleted = (id: string) =>
          event({ type: "customer.deleted", object: customer(id), versionTs: 500 })
        const later = (id: string) =>
          event({ type: "customer.updated", object: customer(id, { email: "later@x.io" }), versionTs: 510 })
        // the tombstone first, then a newer live state: in one batch and in two
        yield* fold([deleted("cus_t1"), later("cus_t1")])
        yield* fold([deleted("cus_t2")])
        yield* fold([later("cus_t2")])
        // a newer live state first, then the older tombstone: in one batch and in two
        yield* fold([later("cus_t3"), deleted("cus_t3")])
        yield* fold([later("cus_t4")])
        yield* fold([deleted("cus_t4")])
        for (const id of ["cus_t1", "cus_t2", "cus_t3", "cus_t4"]) {
          const r = yield* row("customers", id)
          assert.strictEqual(r!.deleted, true, id)
          assert.strictEqual(r!._version_ts, "500", id)
          assert.strictEqual(r!.email, "jenny@example.com", id)
        }
      })
    )

    it.effect("customer.subscription.deleted cancels: the subscription stays, with status canceled", () =>
      Effect.gen(function* () {
        const sub = (status: string) => ({
          id: "sub_1",
          object: "subscription",
          status,
          customer: "cus_a",
          items: {
            object: "list",
            data: [],
            has_more: false,
            url: "/v1/subscription_items?subscription=sub_1"
          }
        })
        yield* fold([
          event({ type: "customer.subscription.created", object: sub("active"), versionTs: 500 }),
          event({ type: "customer.subscription.deleted", object: sub("canceled"), versionTs: 510 })
        ])
        const r = yield* row("subscriptions", "sub_1")
        assert.strictEqual(r!.status, "canceled")
        assert.strictEqual(r!.deleted, false)
      })
    )

    it.effect(
      "two states in one second: a fixed rule picks one, whatever the order, and asks for revalidation",
      () =>
        Effect.gen(function* () {
          const queue = yield* RevalidationQueue.RevalidationQueue
          const a = event({
            type: "customer.updated",
            object: customer("cus_e", { email: "a@x.io" }),
            versionTs: 600,
            id: "evt_e_a"
          })
          const b = event({
            type: "customer.updated",
            object: customer("cus_e", { email: "b@x.io" }),
            versionTs: 600,
            id: "evt_e_b"
          })
          const c = event({
            type: "customer.updated",
            object: customer("cus_f", { email: "a@x.io" }),
            versionTs: 600,
            id: "evt_f_a"
          })
          const d = event({
            type: "customer.updated",
            object: customer("cus_f", { email: "b@x.io" }),
            versionTs: 600,
            id: "evt_f_b"
          })
          yield* fold([b])
          yield* fold([a]) // order b, a in separate batches
          yield* fold([c, d]) // order a, b in one batch
          assert.strictEqual((yield* row("customers", "cus_e"))!.email, "b@x.io")
          assert.strictEqual((yield* row("customers", "cus_f"))!.email, "b@x.io")
          const due = yield* queue.take({ limit: 100, now: 601 })
          const ids = due.filter((r) => r.objectType === "customer").map((r) => [r.objectId, r.notBefore])
          assert.deepInclude(ids, ["cus_e", 601])
          assert.deepInclude(ids, ["cus_f", 601])
          // an API snapshot of the same second beats an event
          yield* fold([
            event({
              type: "customer.snapshot",
              object: customer("cus_g", { email: "api@x.io" }),
              versionTs: 700,
              id: "snap_g"
            }),
            event({
              type: "customer.updated",
              object: customer("cus_g", { email: "evt@x.io" }),
              versionTs: 700,
              id: "evt_zzz"
            })
          ])
          assert.strictEqual((yield* row("customers", "cus_g"))!.email, "api@x.io")
        })
    )

    it.effect(
      "event ids of one second compare by code point, in one batch or across batches (not by the database's collation)",
      () =>
        Effect.gen(function* () {
          // by code point "evt_B" < "evt_a"; a linguistic collation says the opposite
          const upper = (objectId: string) =>
            event({
              type: "customer.updated",
              object: customer(objectId, { email: "upper@x.io" }),
              versionTs: 800,
              id: `evt_B_${objectId}`
            })
          const lower = (objectId: string) =>
            event({
              type: "customer.updated",
              object: customer(objectId, { email: "lower@x.io" }),
              versionTs: 800,
              id: `evt_a_${objectId}`
            })
          yield* fold([upper("cus_h"), lower("cus_h")])
          yield* fold([upper("cus_i")])
          yield* fold([lower("cus_i")])
          yield* fold([lower("cus_j")])
          yield* fold([upper("cus_j")])
          for (const id of ["cus_h", "cus_i", "cus_j"]) {
            assert.strictEqual((yield* row("customers", id))!.email, "lower@x.io", id)
          }
        })
    )

    it.effect(
      "child tables: replaced from a complete list, updated (nothing deleted) from a truncated one",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const queue = yield* RevalidationQueue.RevalidationQueue
          const line = (id: string, amount: number) => ({ id, object: "line_item", amount })
          const invoice = (lines: ReadonlyArray<ReturnType<typeof line>>, hasMore: boolean) => ({
            id: "in_1",
            object: "invoice",
            amount_due: lines.reduce((s, l) => s + l.amount, 0),
            status: "open",
            lines: { object: "list", data: lines, has_more: hasMore, url: "/v1/invoices/in_1/lines" }
          })
          const children = () =>
            sql.unsafe<{ id: string; amount: string; _parent_id: string }>(
              `SELECT id, amount, _parent_id FROM stripe.invoice_line_items WHERE _parent_id = 'in_1' ORDER BY id`
            )
          yield* fold([
            event({
              type: "invoice.created",
              object: invoice([line("il_1", 100), line("il_2", 200), line("il_3", 300)], false),
              versionTs: 800
            })
          ])
          assert.deepStrictEqual(
            (yield* children()).map((r) => [r.id, r.amount]),
            [
              ["il_1", "100"],
              ["il_2", "200"],
              ["il_3", "300"]
            ]
          )
          yield* fold([
            event({
              type: "invoice.updated",
              object: invoice([line("il_1", 150), line("il_3", 300)], false),
              versionTs: 801
            })
          ])
          assert.deepStrictEqual(
            (yield* children()).map((r) => [r.id, r.amount]),
            [
              ["il_1", "150"],
              ["il_3", "300"]
            ]
          )
          yield* fold([
            event({ type: "invoice.updated", object: invoice([line("il_4", 400)], true), versionTs: 802 })
          ])
          assert.deepStrictEqual(
            (yield* children()).map((r) => r.id),
            ["il_1", "il_3", "il_4"]
          )
          const due = yield* queue.take({ limit: 100, now: 10_000 })
          assert.isTrue(due.some((r) => r.objectId === "in_1" && r.notBefore === 803))
          // an older parent state does not touch the children
          yield* fold([event({ type: "invoice.updated", object: invoice([], false), versionTs: 700 })])
          assert.strictEqual((yield* children()).length, 3)
        })
    )

    it.effect(
      "the runner reads the batch without data; the rows hold the logged objects, also when rebuilt into shadow tables",
      () =>
        Effect.gen(function* () {
          const log = yield* EventLog.EventLog
          const sql = yield* SqlClient.SqlClient
          const state = customer("cus_rd", { email: "rd@x.io", metadata: { a: "1", nested: { b: [1, 2] } } })
          yield* fold([event({ type: "customer.updated", object: state, versionTs: 1000 })])
          assert.isFalse(projection.readsData)
          const full = yield* log.read(LogPosition.zero, { limit: 10_000 })
          const bare = yield* log.read(LogPosition.zero, { limit: 10_000, data: false })
          assert.deepStrictEqual(
            bare.events.map((e) => [e.id, e.position, e.objectId, e.versionTs]),
            full.events.map((e) => [e.id, e.position, e.objectId, e.versionTs])
          )
          assert.isTrue(bare.events.every((e) => Object.keys(e.data).length === 0))
          assert.deepStrictEqual(bare.next, full.next)
          const rows = () =>
            sql.unsafe<{ id: string; raw: string; email: string | null; deleted: boolean }>(
              `SELECT id, "_raw_data"::text AS raw, email, deleted FROM stripe.customers ORDER BY id`
            )
          const before = yield* rows()
          assert.deepStrictEqual(
            JSON.parse(before.find((r) => r.id === "cus_rd")!.raw),
            JSON.parse(JSON.stringify(state))
          )
          // a rebuild applies into a shadow schema and reads the log in the sync schema
          yield* Replay.rebuild(projection, { batchSize: 7 })
          assert.deepStrictEqual(yield* rows(), before)
        })
    )

    it.effect(
      "events of unknown types and objects outside the tables are kept in the log, never an error",
      () =>
        Effect.gen(function* () {
          yield* fold([
            event({
              type: "issuing_card.created",
              object: { id: "ic_1", object: "issuing.card" },
              versionTs: 900
            }),
            event({ type: "something.new", object: { id: "x_1", object: "something" }, versionTs: 900 })
          ])
          const sql = yield* SqlClient.SqlClient
          const logged = yield* sql.unsafe<{ n: string }>(
            `SELECT count(*)::text AS n FROM stripe._events WHERE object_id IN ('ic_1', 'x_1')`
          )
          assert.strictEqual(logged[0]!.n, "2")
        })
    )
  })
})
