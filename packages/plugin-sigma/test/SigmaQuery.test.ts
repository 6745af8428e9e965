import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import * as SigmaQuery from "../src/SigmaQuery.js"
import * as SigmaSchema from "../src/SigmaSchema.js"
import { pageSql } from "../src/SigmaSource.js"

describe("Sigma CSV", () => {
  it("parses quotes, commas and newlines in fields, and empty values as null", () => {
    const csv =
      'id,description,amount,note\r\ntxn_1,"Payment for ""Pro"", yearly",100,\ntxn_2,"two\nlines",,"x"\n'
    assert.deepStrictEqual(SigmaQuery.parseCsv(csv), {
      columns: ["id", "description", "amount", "note"],
      rows: [
        { id: "txn_1", description: 'Payment for "Pro", yearly', amount: "100", note: null },
        { id: "txn_2", description: "two\nlines", amount: null, note: "x" }
      ]
    })
  })

  it("reads timestamps with and without a zone as UTC instants", () => {
    assert.strictEqual(SigmaQuery.timestamp("2024-01-31 12:00:00"), "2024-01-31T12:00:00.000Z")
    assert.strictEqual(SigmaQuery.timestamp("2024-01-31 12:00:00.250"), "2024-01-31T12:00:00.250Z")
    assert.strictEqual(SigmaQuery.timestamp("2024-01-31T12:00:00Z"), "2024-01-31T12:00:00.000Z")
    assert.strictEqual(SigmaQuery.timestamp("2024-01-31T14:00:00+02:00"), "2024-01-31T12:00:00.000Z")
    assert.strictEqual(SigmaQuery.timestamp("not a time"), "not a time")
  })
})

describe("Sigma schema and SQL", () => {
  it("knows the tables of Stripe's Sigma schema, with keys and cursors", () => {
    assert.isAtLeast(SigmaSchema.all.length, 300)
    const bt = Option.getOrThrow(SigmaSchema.byName("balance_transactions"))
    assert.deepStrictEqual([bt.primaryKey, bt.cursor, bt.appendOnly], [["id"], "created", true])
    assert.isFalse(Option.getOrThrow(SigmaSchema.byName("customers")).appendOnly)
    for (const name of SigmaSchema.defaultNames) assert.isTrue(Option.isSome(SigmaSchema.byName(name)), name)
  })

  it("pages by keyset: (timestamp, key) for append-only tables, the key for refreshed ones", () => {
    const bt = Option.getOrThrow(SigmaSchema.byName("balance_transactions"))
    assert.strictEqual(
      pageSql(bt, { kind: "incremental", ts: "2024-01-31T12:00:00.000Z", key: ["txn_'1"] }, 100),
      `SELECT * FROM "balance_transactions" WHERE ("created" > timestamp '2024-01-31 12:00:00.000' OR ("created" = timestamp '2024-01-31 12:00:00.000' AND "id" > 'txn_''1')) ORDER BY "created", "id" LIMIT 100`
    )
    const customers = Option.getOrThrow(SigmaSchema.byName("customers"))
    assert.strictEqual(
      pageSql(
        customers,
        { kind: "refresh", lastRefreshedAt: null, running: { after: ["cus_9"], refreshedAt: 1 } },
        10
      ),
      `SELECT * FROM "customers" WHERE "id" > 'cus_9' ORDER BY "id" LIMIT 10`
    )
  })

  it("gives PostgreSQL names to columns longer than 63 bytes, distinct and stable", () => {
    const long = "a".repeat(70)
    assert.strictEqual(SigmaSchema.pgColumn("amount"), "amount")
    assert.strictEqual(SigmaSchema.pgColumn(long).length, 63)
    assert.notStrictEqual(SigmaSchema.pgColumn(long), SigmaSchema.pgColumn(`${long}b`))
  })
})
