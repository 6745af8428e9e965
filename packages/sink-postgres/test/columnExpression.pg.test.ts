/**
 * The `bigint` generated-column expression against the form it replaced (a regular expression over
 * the jsonb text): the same value for every input, over seeded random awkward JSON values, so
 * tables created with either form read alike.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { StripeTables } from "../src/index.js"

/** The first form of the `bigint` expression (tables created before the change keep it). */
const previousBigint = (name: string) => {
  const v = `"_raw_data"->'${name}'`
  return `CASE WHEN jsonb_typeof(${v}) = 'number' AND (${v})::text ~ '^-?[0-9]{1,18}$' THEN (${v})::text::bigint END`
}

/** A seeded PRNG (mulberry32), so a failure can be replayed from its seed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Number texts around the edges: digit counts 1 to 25, signs, fractions, exponents, zeros. */
const numberText = (random: () => number): string => {
  const digits = (n: number) => {
    let s = String(1 + Math.floor(random() * 9))
    for (let i = 1; i < n; i++) s += String(Math.floor(random() * 10))
    return s
  }
  const sign = random() < 0.4 ? "-" : ""
  const n = 1 + Math.floor(random() * 25)
  switch (Math.floor(random() * 9)) {
    case 0:
      return `${sign}0`
    case 1:
      return `${sign}${digits(n)}.${digits(1 + Math.floor(random() * 5))}`
    case 2:
      return `${sign}${digits(n)}.0`
    case 3:
      return `${sign}${digits(1 + Math.floor(random() * 3))}e${random() < 0.5 ? "-" : "+"}${Math.floor(random() * 30)}`
    case 4:
      return `${sign}0.${"0".repeat(Math.floor(random() * 5))}${digits(2)}E${Math.floor(random() * 22)}`
    case 5:
      // 17 to 20 digits: around the 18-digit bound and the int8 range
      return `${sign}${digits(17 + Math.floor(random() * 4))}`
    default:
      return `${sign}${digits(n)}`
  }
}

const awkward = (random: () => number): string => {
  const r = random()
  if (r < 0.6) return numberText(random)
  if (r < 0.7) return JSON.stringify(random() < 0.5 ? numberText(random) : `${Math.floor(random() * 1000)}`)
  if (r < 0.75) return random() < 0.5 ? "true" : "false"
  if (r < 0.8) return "null"
  if (r < 0.85) return `{"id": ${numberText(random)}, "amount": ${numberText(random)}}`
  if (r < 0.9) return `[${numberText(random)}]`
  if (r < 0.95) return `""`
  return "MISSING"
}

/** Values that must be in every run, whatever the seed. */
const fixed = [
  "0",
  "-0",
  "-0.0",
  "0.0",
  "1.0",
  "1e2",
  "1E+2",
  "1.5e1",
  "1e-2",
  "123456789012345678",
  "-123456789012345678",
  "999999999999999999",
  "-999999999999999999",
  "1000000000000000000",
  "-1000000000000000000",
  "9223372036854775807",
  "-9223372036854775808",
  "9223372036854775808",
  "1e30",
  "1e-30",
  "12345678901234567.8",
  '"12"',
  '"-3"',
  '"1.5"',
  '"12345678901234567890"',
  "true",
  "null",
  '{"id": 1}',
  "[1]",
  "MISSING"
]

describe("the bigint column expression", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect("gives what the regular-expression form gave, for awkward JSON values (seeded)", () =>
      Effect.gen(function* () {
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        const seed = Number(process.env.COLUMN_EXPRESSION_SEED ?? Date.now() % 1_000_000)
        console.log(
          `columnExpression property test seed: ${seed} (rerun with COLUMN_EXPRESSION_SEED=${seed})`
        )
        const random = prng(seed)
        const values = [...fixed]
        for (let i = 0; i < 5000; i++) values.push(awkward(random))
        const docs = values.map((v) => (v === "MISSING" ? `{"other": 1}` : `{"amount": ${v}, "other": 1}`))
        const current = StripeTables.columnExpression({ name: "amount", kind: "bigint" })
        yield* sql.unsafe(`CREATE TABLE bigint_forms (
          "n" integer PRIMARY KEY,
          "_raw_data" jsonb NOT NULL,
          "previous" bigint GENERATED ALWAYS AS (${previousBigint("amount")}) STORED,
          "current" bigint GENERATED ALWAYS AS (${current}) STORED
        )`)
        yield* sql.unsafe(
          `INSERT INTO bigint_forms (n, _raw_data) SELECT n, d::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS u(d, n)`,
          [docs]
        )
        const differ = yield* sql.unsafe<{ doc: string; previous: string | null; current: string | null }>(
          `SELECT _raw_data::text AS doc, previous::text, current::text FROM bigint_forms
           WHERE previous IS DISTINCT FROM current ORDER BY n LIMIT 10`
        )
        assert.deepStrictEqual(differ, [], `seed ${seed}`)
        // the run covered both outcomes, and the values at the bounds
        const [counts] = yield* sql.unsafe<{ total: number; some: number; none: number }>(
          `SELECT count(*)::int AS total, count(current)::int AS some, (count(*) - count(current))::int AS none
           FROM bigint_forms`
        )
        assert.strictEqual(counts!.total, docs.length)
        assert.isAbove(counts!.some, 1000, `seed ${seed}`)
        assert.isAbove(counts!.none, 1000, `seed ${seed}`)
        const bounds = yield* sql.unsafe<{ doc: string; current: string | null }>(
          `SELECT _raw_data->>'amount' AS doc, current::text FROM bigint_forms WHERE n <= $1 ORDER BY n`,
          [fixed.length]
        )
        const byValue = new Map(bounds.map((b) => [b.doc, b.current]))
        assert.strictEqual(byValue.get("-999999999999999999"), "-999999999999999999")
        assert.strictEqual(byValue.get("999999999999999999"), "999999999999999999")
        assert.strictEqual(byValue.get("1000000000000000000"), null)
        assert.strictEqual(byValue.get("100"), "100") // 1e2
        assert.strictEqual(byValue.get("0"), "0")
        assert.strictEqual(byValue.get("1.0"), null)
        assert.strictEqual(byValue.get("12"), null) // the string "12"
      })
    )
  })
})
