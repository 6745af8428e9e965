/**
 * `pnpm demo`: the whole sync on local parts only. Starts the Stripe emulator with a generated
 * account (and one Connect account), an embedded PostgreSQL in `.stripe-sync/demo`, runs the full
 * sync, then prints the row count of every table and a sample SQL query with its result.
 *
 * Options: `--scale <k>` (account size, about 4,300 objects per unit; default 1), `--seed <s>`.
 */

import * as path from "node:path"
import { parseArgs } from "node:util"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Catalog, StripeClient } from "@stripe-sync/source-stripe"
import { startEmulator } from "@stripe-sync/stripe-emulator/Emulator"
import { Console, Effect, Layer, Option, Redacted } from "effect"
import * as EmbeddedDatabase from "./EmbeddedDatabase.js"
import { exitCode } from "./ExitCode.js"
import { sinkLayer } from "./internal/runtime.js"
import * as Logging from "./Logging.js"
import * as Sync from "./Sync.js"

const { values } = parseArgs({
  options: { scale: { type: "string", default: "1" }, seed: { type: "string", default: "demo" } }
})
const scale = Number(values.scale)

const sampleQuery = `SELECT c.id, c.email, count(i.id) AS paid_invoices, sum(i.amount_paid) AS amount_paid, i.currency
FROM stripe.customers c
JOIN stripe.invoices i ON i.customer = c.id AND i.status = 'paid'
GROUP BY c.id, c.email, i.currency
ORDER BY sum(i.amount_paid) DESC
LIMIT 5`

const program = Effect.gen(function* () {
  if (!Number.isFinite(scale) || scale <= 0) {
    return yield* Effect.dieMessage(`--scale takes a positive number, got "${values.scale}"`)
  }
  yield* Console.log(`Starting the Stripe emulator (seed "${values.seed}", scale ${scale}) …`)
  const emulator = yield* Effect.acquireRelease(
    Effect.promise(() => startEmulator({ seed: values.seed, scale, connectedAccounts: 1 })),
    (e) => Effect.promise(() => e.stop())
  )
  yield* Console.log(`  ${emulator.url} (platform account ${emulator.accountId})`)
  yield* Console.log("Starting the embedded PostgreSQL in .stripe-sync/demo …")
  const database = yield* EmbeddedDatabase.start({
    dataDir: path.join(process.cwd(), ".stripe-sync", "demo", "postgres")
  })
  const layer = Layer.merge(
    StripeClient.layer({
      apiKey: Redacted.make("sk_test_demo"),
      apiBase: emulator.url,
      // the emulator is not Stripe: no need to hold to test mode's 25 requests a second
      rateLimit: 1000,
      endpointRateLimit: 1000
    }),
    sinkLayer({ databaseUrl: Option.some(database.url), schema: "stripe" }, { maxConnections: 20 })
  )
  const plainClient = PgClient.layer({ url: database.url })
  yield* Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // a fresh demo each time: the previous run's log and tables go
    yield* sql`DROP SCHEMA IF EXISTS stripe CASCADE`
  }).pipe(Effect.provide(plainClient))

  yield* Console.log("Syncing every resource of the platform and its Connect account …")
  const result = yield* Sync.backfill({
    resources: Catalog.defaults,
    connectedAccounts: "all",
    triggeredBy: "demo"
  }).pipe(Effect.provide(layer))

  yield* Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const tables = [...Catalog.defaults.map((r) => r.table), ...Catalog.children.map((c) => c.table)]
    // table names come from the catalog (plain identifiers), not from input
    const counts = yield* sql.unsafe<{ table: string; rows: string }>(
      tables.map((t) => `SELECT '${t}' AS "table", count(*) AS rows FROM stripe.${t}`).join(" UNION ALL ")
    )
    const nonEmpty = counts.filter((c) => Number(c.rows) > 0).sort((a, b) => Number(b.rows) - Number(a.rows))
    yield* Console.log(
      `\nSynced ${result.objects.toLocaleString("en-US")} objects in ${result.seconds.toFixed(1)} s into ${nonEmpty.length} tables:`
    )
    yield* Console.table(Object.fromEntries(nonEmpty.map((c) => [`stripe.${c.table}`, Number(c.rows)])))
    const runs =
      yield* sql`SELECT account_id, status, total_processed, complete_count, error_count FROM stripe.sync_runs ORDER BY started_at`
    yield* Console.log("stripe.sync_runs:")
    yield* Console.table(runs)
    yield* Console.log(`A query joining customers to their paid invoices:\n\n${sampleQuery}\n`)
    yield* Console.table(yield* sql.unsafe(sampleQuery))
    yield* Console.log(
      "\nOn a real account: STRIPE_API_KEY=sk_… pnpm stripe-sync sync --once --database-url postgres://…"
    )
  }).pipe(Effect.provide(plainClient))
})

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.merge(NodeContext.layer, Logging.layer({ level: "info", format: "pretty" }))),
  NodeRuntime.runMain({ disablePrettyLogger: true, teardown: (exit, onExit) => onExit(exitCode(exit)) })
)
