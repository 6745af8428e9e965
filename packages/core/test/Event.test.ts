import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Event } from "../src/index.js"

describe("Event", () => {
  it("canonical JSON ignores key order", () => {
    assert.strictEqual(
      Event.canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }),
      '{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}'
    )
    assert.strictEqual(Event.hashData({ a: 1, b: 2 }), Event.hashData({ b: 2, a: 1 }))
    assert.notStrictEqual(Event.hashData({ a: 1 }), Event.hashData({ a: 2 }))
  })

  it("snapshot ids are deterministic, and differ by state and by read time", () => {
    const base = {
      accountId: "acct_1",
      objectType: "customer",
      objectId: "cus_1",
      versionTs: 100,
      data: { id: "cus_1", n: 1 }
    }
    // the same response read again gives the same id (deduplicated by the log)
    assert.strictEqual(Event.snapshotId(base), Event.snapshotId({ ...base, data: { id: "cus_1", n: 1 } }))
    assert.notStrictEqual(Event.snapshotId(base), Event.snapshotId({ ...base, data: { id: "cus_1", n: 2 } }))
    assert.notStrictEqual(Event.snapshotId(base), Event.snapshotId({ ...base, versionTs: 101 }))
    assert.notStrictEqual(Event.snapshotId(base), Event.snapshotId({ ...base, accountId: "acct_2" }))
    assert.match(Event.snapshotId(base), /^snap_[0-9a-f]{40}$/)
  })

  it("snapshot builds a `<object>.snapshot` event", () => {
    const e = Event.snapshot({
      source: "backfill",
      accountId: "acct_1",
      objectType: "checkout.session",
      objectId: "cs_1",
      versionTs: 5,
      apiVersion: "2025-01-27.acacia",
      data: { id: "cs_1" }
    })
    assert.strictEqual(e.type, "checkout.session.snapshot")
    assert.isTrue(Event.isSnapshot(e))
  })

  it("a snapshot id ignores key order; a malformed snapshot still fails the envelope schema", () => {
    const base = { accountId: "acct_1", objectType: "customer", objectId: "cus_1", versionTs: 100 }
    assert.strictEqual(
      Event.snapshotId({ ...base, data: { id: "cus_1", a: { x: 1, y: [2] } } }),
      Event.snapshotId({ ...base, data: { a: { y: [2], x: 1 }, id: "cus_1" } })
    )
    const input = { ...base, source: "backfill", apiVersion: null, data: { id: "cus_1" } }
    for (const bad of [{ objectId: "" }, { accountId: " acct_1" }, { versionTs: -1 }, { versionTs: 1.5 }]) {
      assert.throws(() => Event.snapshot({ ...input, ...bad }), /Expected|expected/, JSON.stringify(bad))
    }
  })

  it("digest: the canonical text (keys in jsonb order) and its hash, once per data object", () => {
    const data = { id: "cus_1", email: "a@b.c", metadata: { zz: "1", a: "2" }, amount: 12 }
    const d = Event.digest(data)
    assert.strictEqual(d.text, '{"id":"cus_1","email":"a@b.c","amount":12,"metadata":{"a":"2","zz":"1"}}')
    assert.strictEqual(Event.digest(data), d)
    assert.strictEqual(Event.digest({ ...data }).hash, d.hash)
    assert.notStrictEqual(Event.digest({ ...data, amount: 13 }).hash, d.hash)
  })

  it.effect("decode names the offending field", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Event.decode({
          id: "evt_1",
          type: "customer.created",
          source: "webhook",
          accountId: "acct_1",
          objectType: "customer",
          objectId: "cus_1",
          versionTs: 1.5,
          apiVersion: null,
          data: {},
          receivedAt: new Date()
        })
      )
      assert.match(error.message, /versionTs/)
    })
  )
})
