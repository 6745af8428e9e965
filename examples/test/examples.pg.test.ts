/**
 * The examples run as users run them: against the emulator over HTTP and a real PostgreSQL.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgProjection, PgSink, Replay } from "@stripe-sync/sink-postgres"
import { startEmulator } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { PgTest } from "../../test/harness/index.js"
import * as BackfillCustomers from "../backfill-customers.js"
import { customerRevenue } from "../custom-projection.js"

const sorted = (ids: Iterable<string>) => [...ids].sort()

describe("examples", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.scoped("backfill-customers, then the custom customer_revenue projection, then its replay", () =>
      Effect.gen(function* () {
        const db = yield* PgTest.TestDatabase
        const emulator = yield* Effect.acquireRelease(
          Effect.promise(() => startEmulator({ seed: "examples", scale: 0.2 })),
          (e) => Effect.promise(() => e.stop())
        )
        const layers = Layer.merge(
          BackfillCustomers.layer({
            apiKey: Redacted.make("sk_test_examples"),
            apiBase: emulator.url,
            databaseUrl: Redacted.make(db.url)
          }),
          Logger.minimumLogLevel(LogLevel.Warning)
        )
        yield* BackfillCustomers.backfillCustomers.pipe(Effect.provide(layers))

        const sql = yield* SqlClient.SqlClient
        const live = (type: string) =>
          emulator
            .truth(type)
            .filter((o) => o.deleted !== true)
            .map((o) => String(o.id))
        const customers = yield* sql<{ id: string }>`SELECT id FROM stripe.customers`
        assert.deepStrictEqual(sorted(customers.map((r) => r.id)), sorted(live("customer")))
        const invoices = yield* sql<{ id: string }>`SELECT id FROM stripe.invoices`
        assert.deepStrictEqual(sorted(invoices.map((r) => r.id)), sorted(live("invoice")))
        const lines = yield* sql<{ n: string }>`SELECT count(*) AS n FROM stripe.invoice_line_items`
        assert.isAbove(Number(lines[0]!.n), invoices.length)

        // the custom projection folds the same log
        const sink = PgSink.layerFromUrl({ url: Redacted.make(db.url) })
        yield* PgProjection.catchUp(customerRevenue).pipe(Effect.provide(sink))
        const expected = new Map<string, { paid: number; amount: number }>()
        for (const invoice of emulator.truth("invoice")) {
          if (invoice.status !== "paid" || invoice.deleted === true) continue
          const key = `${invoice.customer}/${invoice.currency}`
          const sum = expected.get(key) ?? { paid: 0, amount: 0 }
          expected.set(key, { paid: sum.paid + 1, amount: sum.amount + Number(invoice.amount_paid) })
        }
        assert.isAbove(expected.size, 10)
        const revenue = sql<{
          customer: string
          currency: string
          paid_invoices: string
          amount_paid: string
        }>`
          SELECT customer, currency, paid_invoices, amount_paid FROM stripe.customer_revenue`
        const asMap = (
          rows: ReadonlyArray<{
            customer: string
            currency: string
            paid_invoices: string
            amount_paid: string
          }>
        ) =>
          new Map(
            rows.map((r) => [
              `${r.customer}/${r.currency}`,
              { paid: Number(r.paid_invoices), amount: Number(r.amount_paid) }
            ])
          )
        assert.deepStrictEqual(asMap(yield* revenue), expected)

        // replay rebuilds it to the same content
        yield* Replay.rebuild(customerRevenue).pipe(Effect.provide(sink))
        assert.deepStrictEqual(asMap(yield* revenue), expected)
      })
    )
  })
})
