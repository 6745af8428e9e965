/**
 * Your own projection as a plugin: `customer_revenue`, each customer's paid invoices and the amount
 * they paid, folded from the same log as the standard tables (backfill snapshots and live events
 * alike). It keeps the latest state of each invoice (newer wins, by `versionTs`) and sums them in a
 * view. Replay rebuilds it like any projection: `Replay.rebuild(customerRevenue)`.
 *
 *   DATABASE_URL=postgres://… pnpm exec tsx examples/custom-projection.ts   # folds the existing log
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PipelineError, Projection } from "@stripe-sync/core"
import { PgProjection, PgSink, ProjectionTarget } from "@stripe-sync/sink-postgres"
import { Config, Effect } from "effect"

export const customerRevenue = Projection.make<PgProjection.Requirements>({
  name: "customer_revenue",
  version: 1,
  // invoices, whether read by the backfill (`invoice.snapshot`) or delivered (`invoice.paid`, …)
  handles: ["invoice.*"],
  migrations: [
    {
      id: 1,
      name: "tables",
      run: Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* ProjectionTarget.ProjectionTarget
        yield* sql`CREATE TABLE ${sql(schema)}.invoice_payments (
          id text PRIMARY KEY,
          account_id text NOT NULL,
          customer text,
          status text,
          amount_paid bigint NOT NULL,
          currency text,
          version_ts bigint NOT NULL
        )`
        yield* sql`CREATE VIEW ${sql(schema)}.customer_revenue AS
          SELECT account_id, customer, currency, count(*) AS paid_invoices, sum(amount_paid) AS amount_paid
          FROM ${sql(schema)}.invoice_payments WHERE status = 'paid'
          GROUP BY account_id, customer, currency`
      })
    }
  ],
  // set-based: the latest state of each invoice in the batch, then one upsert for all of them
  apply: (events) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* ProjectionTarget.ProjectionTarget
      const latest = new Map<string, (typeof events)[number]>()
      for (const e of events) {
        if (e.objectType !== "invoice") continue
        const seen = latest.get(e.objectId)
        if (seen === undefined || e.versionTs >= seen.versionTs) latest.set(e.objectId, e)
      }
      if (latest.size === 0) return
      const rows = [...latest.values()].map((e) => ({
        id: e.objectId,
        account_id: e.accountId,
        customer: typeof e.data.customer === "string" ? e.data.customer : null,
        status: typeof e.data.status === "string" ? e.data.status : null,
        amount_paid: typeof e.data.amount_paid === "number" ? e.data.amount_paid : 0,
        currency: typeof e.data.currency === "string" ? e.data.currency : null,
        version_ts: e.versionTs
      }))
      yield* sql`
        INSERT INTO ${sql(schema)}.invoice_payments AS t
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(
          id text, account_id text, customer text, status text, amount_paid bigint, currency text, version_ts bigint)
        ON CONFLICT (id) DO UPDATE SET
          customer = excluded.customer, status = excluded.status, amount_paid = excluded.amount_paid,
          currency = excluded.currency, version_ts = excluded.version_ts
        WHERE t.version_ts <= excluded.version_ts`
    }).pipe(
      Effect.mapError(
        (cause) =>
          new PipelineError.ProjectionError({ projection: "customer_revenue", message: String(cause), cause })
      )
    )
})

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.gen(function* () {
    const databaseUrl = yield* Config.redacted("DATABASE_URL")
    const applied = yield* PgProjection.catchUp(customerRevenue).pipe(
      Effect.provide(PgSink.layerFromUrl({ url: databaseUrl }))
    )
    yield* Effect.log(`customer_revenue: ${applied} events folded; SELECT * FROM stripe.customer_revenue`)
  }).pipe(NodeRuntime.runMain)
}
