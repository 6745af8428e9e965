import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import * as Catalog from "../src/Catalog.js"

const q = (name: string) => `"${name.replace(/"/g, '""')}"`

describe("Catalog column expressions on Postgres", () => {
  layer(PgTest.layer())((it) => {
    it.effect("every table of the catalog takes its typed columns as STORED generated columns", () =>
      Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        yield* sql.unsafe(`CREATE SCHEMA cat`)
        for (const spec of [...Catalog.all, ...Catalog.children]) {
          const columns = spec.columns.map(
            (c) => `${q(c.name)} ${c.pgType} GENERATED ALWAYS AS (${Catalog.columnExpression(c)}) STORED`
          )
          yield* sql.unsafe(
            `CREATE TABLE cat.${q(spec.table)} ("id" text PRIMARY KEY, "_raw_data" jsonb NOT NULL, ${columns.join(", ")})`
          )
        }
        const count = yield* sql<{ n: string }>`SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'cat'`
        assert.strictEqual(Number(count[0].n), Catalog.all.length + Catalog.children.length)
      })
    )

    it.effect("reads each kind, expanded or not, and gives NULL for values of another JSON type", () =>
      Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        const columns: ReadonlyArray<{ name: string; kind: Catalog.ColumnKind; pgType: string }> = [
          { name: "amount", kind: "bigint", pgType: "bigint" },
          { name: "percent_off", kind: "numeric", pgType: "numeric" },
          { name: "livemode", kind: "boolean", pgType: "boolean" },
          { name: "email", kind: "text", pgType: "text" },
          { name: "customer", kind: "ref", pgType: "text" },
          { name: "address", kind: "jsonb", pgType: "jsonb" }
        ]
        const ddl = columns.map(
          (c) => `${q(c.name)} ${c.pgType} GENERATED ALWAYS AS (${Catalog.columnExpression(c)}) STORED`
        )
        yield* sql.unsafe(
          `CREATE TABLE kinds ("id" text PRIMARY KEY, "_raw_data" jsonb NOT NULL, ${ddl.join(", ")})`
        )
        const rows = [
          {
            id: "a",
            data: {
              amount: 1234,
              percent_off: 12.5,
              livemode: true,
              email: "a@example.com",
              customer: "cus_1",
              address: { city: "Paris" }
            }
          },
          {
            id: "b",
            data: { amount: 1.5, percent_off: "x", livemode: "yes", email: null, customer: { id: "cus_2" } }
          },
          { id: "c", data: { amount: "12", livemode: false, email: 7, customer: null, address: null } }
        ]
        for (const row of rows) {
          // a bigint beyond 2^53 is kept exact: Stripe's JSON text goes in as is
          const text = JSON.stringify(row.data).replace(":1234,", ":9007199254740993,")
          yield* sql`INSERT INTO kinds (id, _raw_data) VALUES (${row.id}, ${text}::jsonb)`
        }
        const out = yield* sql<Record<string, string | boolean | null | object>>`
          SELECT id, amount::text, percent_off::text, livemode, email, customer, address FROM kinds ORDER BY id`
        assert.deepStrictEqual(out[0], {
          id: "a",
          amount: "9007199254740993",
          percent_off: "12.5",
          livemode: true,
          email: "a@example.com",
          customer: "cus_1",
          address: { city: "Paris" }
        })
        assert.deepStrictEqual(out[1], {
          id: "b",
          amount: null,
          percent_off: null,
          livemode: null,
          email: null,
          customer: "cus_2",
          address: null
        })
        assert.deepStrictEqual(out[2], {
          id: "c",
          amount: null,
          percent_off: null,
          livemode: false,
          email: "7",
          customer: null,
          address: null
        })
      })
    )
  })
})
