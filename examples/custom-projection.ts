/**
 * A third-party projection plugin: each customer's paid invoices, folded from the same log as the
 * standard tables. Newer wins by `versionTs`, one statement per batch, rebuilt by `Replay.rebuild`.
 * Run it with `PgProjection.catchUp(customerRevenue)` (once) or `PgProjection.run(…)` (live).
 */
import { SqlClient } from "@effect/sql"
import { Projection } from "@stripe-sync/core"
import { ProjectionError } from "@stripe-sync/core/PipelineError"
import { type PgProjection, ProjectionTarget } from "@stripe-sync/sink-postgres"
import { Effect } from "effect"

const fail = (cause: unknown) =>
  new ProjectionError({ projection: "customer_revenue", message: `${cause}`, cause })

export const customerRevenue = Projection.make<PgProjection.Requirements>({
  name: "customer_revenue",
  version: 1,
  handles: ["invoice.*"], // `invoice.snapshot` from the backfill, `invoice.paid` … from webhooks
  migrations: [
    {
      id: 1,
      name: "tables",
      run: Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* ProjectionTarget.ProjectionTarget
        yield* sql`CREATE TABLE ${sql(schema)}.invoice_payments (id text PRIMARY KEY, account_id text NOT NULL,
          customer text, status text, amount_paid bigint NOT NULL, currency text, version_ts bigint NOT NULL)`
        yield* sql`CREATE VIEW ${sql(schema)}.customer_revenue AS
          SELECT account_id, customer, currency, count(*) AS paid_invoices, sum(amount_paid) AS amount_paid
          FROM ${sql(schema)}.invoice_payments WHERE status = 'paid' GROUP BY account_id, customer, currency`
      })
    }
  ],
  apply: (events) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* ProjectionTarget.ProjectionTarget
      const latest = new Map<string, (typeof events)[number]>() // the newest state of each invoice
      for (const e of events) {
        if (e.objectType === "invoice" && e.versionTs >= (latest.get(e.objectId)?.versionTs ?? 0)) {
          latest.set(e.objectId, e)
        }
      }
      if (latest.size === 0) return
      const rows = [...latest.values()].map(
        ({ objectId: id, accountId: account_id, versionTs: version_ts, data }) => {
          const { customer, status, amount_paid = 0, currency } = data
          return { id, account_id, customer, status, amount_paid, currency, version_ts }
        }
      )
      yield* sql`INSERT INTO ${sql(schema)}.invoice_payments AS t
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(id text, account_id text,
          customer text, status text, amount_paid bigint, currency text, version_ts bigint)
        ON CONFLICT (id) DO UPDATE SET customer = excluded.customer, status = excluded.status,
          amount_paid = excluded.amount_paid, currency = excluded.currency, version_ts = excluded.version_ts
        WHERE t.version_ts <= excluded.version_ts`
    }).pipe(Effect.mapError(fail))
})
