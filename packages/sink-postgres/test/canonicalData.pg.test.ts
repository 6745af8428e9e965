/**
 * The canonical text of an event's data (what the append sends and hashes): the same state gives
 * the same text and hash whatever its key order, Postgres stores exactly the object, and the
 * same-state snapshot skip holds across key orders.
 */

import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { Event, EventLog } from "@stripe-sync/core"
import { Effect, Layer } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { unique } from "../../core/test/contracts/fixtures.js"
import { PgEventLog, PgSink } from "../src/index.js"

const SinkLayer = PgSink.layer().pipe(Layer.provideMerge(PgTest.layer()))

/** The same keys and values, every object's keys in reverse order. */
const reversed = (value: unknown): unknown => {
  if (value === null || typeof value !== "object") return value
  if (Array.isArray(value)) return value.map(reversed)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value).reverse()) {
    const v = reversed((value as Record<string, unknown>)[key])
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true })
  }
  return out
}

const sample = (): Event.JsonObject => {
  const data: Record<string, unknown> = {
    id: "cus_1",
    object: "customer",
    address: { line1: "1 Main St", city: "Paris", country: "FR", postal_code: null },
    metadata: { zeta: "1", a: "2", "10": "ten", "9": "nine", é: "accent", "a b": "space" },
    items: {
      object: "list",
      data: [
        { id: "si_1", quantity: 2 },
        { quantity: 1, id: "si_2" }
      ],
      has_more: false
    },
    quote: 'say "hi"\\ and\nnewline\ttab \u0001 \u2028',
    amount: 1099,
    ratio: 0.1,
    big: 1e21,
    small: 1.5e-7,
    flag: true,
    empty: {},
    list: []
  }
  // an own key named __proto__, as JSON.parse makes it
  Object.defineProperty(data, "__proto__", {
    value: { polluted: true },
    enumerable: true,
    writable: true,
    configurable: true
  })
  return data
}

describe("canonical event data", () => {
  it("gives one text and one hash for one state, whatever the key order, and keeps every key", () => {
    const a = PgEventLog.canonicalData(sample())
    const b = PgEventLog.canonicalData(reversed(sample()) as Event.JsonObject)
    assert.strictEqual(a.text, b.text)
    assert.strictEqual(a.hash, b.hash)
    assert.isFalse(a.text.includes("\n"))
    assert.deepStrictEqual(JSON.parse(a.text), JSON.parse(JSON.stringify(sample())))
    assert.include(a.text, '"__proto__":{"polluted":true}')
    const changed = PgEventLog.canonicalData({ ...sample(), amount: 1100 })
    assert.notStrictEqual(changed.hash, a.hash)
    // objects with the same number of keys and the same first key but other keys are not confused
    const one = PgEventLog.canonicalData({ x: { a: 1, b: 2 } })
    const other = PgEventLog.canonicalData({ x: { a: 1, c: 3 } })
    assert.strictEqual(one.text, '{"x":{"a":1,"b":2}}')
    assert.strictEqual(other.text, '{"x":{"a":1,"c":3}}')
  })

  it("writes keys in jsonb order at every depth, and checks a cached key order against each object", () => {
    const nested = { b: 1, aa: { zz: "x", y: [{ b: 1, a: 2 }, "s", 1.5, true, null] }, a: null }
    const expected = '{"a":null,"b":1,"aa":{"y":[{"a":2,"b":1},"s",1.5,true,null],"zz":"x"}}'
    assert.strictEqual(PgEventLog.canonicalData(nested).text, expected)
    // the same shape again (cached key order), and an object of that shape but other keys
    assert.strictEqual(PgEventLog.canonicalData({ a: null, aa: nested.aa, b: 1 }).text, expected)
    assert.strictEqual(PgEventLog.canonicalData({ b: 1, aa: 2, c: 3 }).text, '{"b":1,"c":3,"aa":2}')
    // a key of the cached order holding undefined, inherited names, a null prototype, a Date inside
    assert.strictEqual(PgEventLog.canonicalData({ b: 1, aa: undefined, a: 2 }).text, '{"a":2,"b":1}')
    assert.strictEqual(
      PgEventLog.canonicalData({ toString: "t", constructor: "c" }).text,
      '{"toString":"t","constructor":"c"}'
    )
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { yy: 1, x: "é\u2028" })
    assert.strictEqual(PgEventLog.canonicalData({ bare }).text, '{"bare":{"x":"é\u2028","yy":1}}')
    assert.strictEqual(
      PgEventLog.canonicalData({ z: { when: new Date("2026-01-01T00:00:00.000Z") }, a: [1] }).text,
      '{"a":[1],"z":{"when":"2026-01-01T00:00:00.000Z"}}'
    )
  })

  it("keeps JSON.stringify's handling of undefined, toJSON and non-finite numbers", () => {
    const text = PgEventLog.canonicalData({
      when: new Date("2026-01-01T00:00:00.000Z"),
      gone: undefined,
      list: [undefined, Number.NaN, 1],
      id: "x"
    }).text
    assert.strictEqual(text, '{"id":"x","list":[null,null,1],"when":"2026-01-01T00:00:00.000Z"}')
  })
})

describe("canonical event data (postgres)", () => {
  layer(SinkLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect("stores exactly the object, and skips a snapshot of the same state in another key order", () =>
      Effect.gen(function* () {
        const log = yield* EventLog.EventLog
        const sql = yield* SqlClient.SqlClient
        const accountId = unique("acct")
        const snapshot = (data: Event.JsonObject, versionTs: number) =>
          Event.snapshot({
            source: "backfill",
            accountId,
            objectType: "customer",
            objectId: "cus_1",
            versionTs,
            apiVersion: "2025-01-27.acacia",
            data,
            receivedAt: new Date("2026-01-01T00:00:00.000Z")
          })
        assert.deepStrictEqual(yield* log.append({ events: [snapshot(sample(), 1)] }), {
          appended: 1,
          skipped: 0
        })
        // the same state, keys in another order: in a later batch, and after a change in one batch
        assert.deepStrictEqual(
          yield* log.append({ events: [snapshot(reversed(sample()) as Event.JsonObject, 2)] }),
          {
            appended: 0,
            skipped: 1
          }
        )
        assert.deepStrictEqual(
          yield* log.append({
            events: [
              snapshot({ ...sample(), amount: 1 }, 3),
              snapshot({ ...(reversed(sample()) as Event.JsonObject), amount: 1 }, 4)
            ]
          }),
          { appended: 1, skipped: 1 }
        )
        const rows = yield* sql<{ data: unknown; data_hash: string; version_ts: string }>`
          SELECT data, data_hash, version_ts::text FROM stripe._events WHERE account_id = ${accountId} ORDER BY position`
        assert.deepStrictEqual(
          rows.map((r) => r.version_ts),
          ["1", "3"]
        )
        const stored = typeof rows[0]!.data === "string" ? JSON.parse(rows[0]!.data) : rows[0]!.data
        assert.deepStrictEqual(stored, JSON.parse(JSON.stringify(sample())))
        assert.strictEqual(rows[0]!.data_hash, PgEventLog.canonicalData(sample()).hash)
      })
    )
  })
})
