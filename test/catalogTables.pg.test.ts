import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { StripeTables } from "@stripe-sync/sink-postgres"
import { Catalog } from "@stripe-sync/source-stripe"
import { Effect } from "effect"
import { PgTest } from "./harness/index.js"

const q = (name: string) => `"${name.replace(/"/g, '""')}"`

describe("the catalog's tables on Postgres", () => {
  layer(PgTest.layer())((it) => {
    it.effect("every table of the catalog takes its typed columns as STORED generated columns", () =>
      Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        yield* sql.unsafe(`CREATE SCHEMA cat`)
        const specs = Catalog.tableSpecs()
        for (const spec of specs) {
          yield* sql.unsafe(`${StripeTables.tableDdl("cat", spec).join(";\n")};`).unprepared
        }
        const count = yield* sql<{ n: string }>`SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'cat'`
        assert.strictEqual(Number(count[0].n), specs.length)
        // every typed column is there, generated and stored
        const columns = yield* sql<{ n: string }>`
          SELECT count(*) AS n FROM information_schema.columns
          WHERE table_schema = 'cat' AND is_generated = 'ALWAYS' AND column_name <> 'deleted'`
        const expected = specs.reduce(
          (n, s) => n + s.columns.filter((c) => c.name !== "id" && c.name !== "deleted").length,
          0
        )
        assert.strictEqual(Number(columns[0].n), expected)
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
          (c) => `${q(c.name)} ${c.pgType} GENERATED ALWAYS AS (${StripeTables.columnExpression(c)}) STORED`
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
