/**
 * A custom pipeline in a few lines: the list backfill of two resources (customers and invoices)
 * into the `stripe` tables projection, on the Postgres sink.
 *
 *   STRIPE_API_KEY=sk_test_… DATABASE_URL=postgres://… pnpm exec tsx examples/backfill-customers.ts
 *
 * (`STRIPE_API_BASE=http://127.0.0.1:12111` points it at the emulator: `pnpm stripe-sync emulator`.)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Pipeline } from "@stripe-sync/core"
import { PgProjection, PgSink, StripeTables } from "@stripe-sync/sink-postgres"
import { Backfill, Catalog, StripeClient } from "@stripe-sync/source-stripe"
import { Config, Effect, Layer, Option, type Redacted } from "effect"

const resources = [
  Option.getOrThrow(Catalog.byTable("customers")),
  Option.getOrThrow(Catalog.byTable("invoices"))
]

/** The `stripe` tables projection for those two resources (and the invoices' line items). */
export const tables = StripeTables.projection({ tables: Catalog.tableSpecs(resources) })

/** Backfills customers and invoices of the key's account, then folds the log into the tables. */
export const backfillCustomers = Effect.gen(function* () {
  const client = yield* StripeClient.StripeClient
  const source = Backfill.make({
    list: Backfill.listWith(client),
    resources,
    accounts: yield* Backfill.accounts(client, "none"),
    apiVersion: client.apiVersion
  })
  yield* Pipeline.runSource(source) // pages and their cursors, appended to the log together
  return yield* PgProjection.catchUp(tables) // the log, folded into stripe.customers, stripe.invoices, …
})

/** The layers: the Stripe client and the Postgres sink. */
export const layer = (config: {
  readonly apiKey: Redacted.Redacted
  readonly apiBase?: string | undefined
  readonly databaseUrl: Redacted.Redacted
  readonly schema?: string
}) =>
  Layer.merge(
    StripeClient.layer({ apiKey: config.apiKey, apiBase: config.apiBase }),
    PgSink.layerFromUrl({ url: config.databaseUrl, schema: config.schema ?? "stripe" })
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.gen(function* () {
    const apiKey = yield* Config.redacted("STRIPE_API_KEY")
    const apiBase = yield* Config.option(Config.string("STRIPE_API_BASE"))
    const databaseUrl = yield* Config.redacted("DATABASE_URL")
    const applied = yield* backfillCustomers.pipe(
      Effect.provide(layer({ apiKey, apiBase: Option.getOrUndefined(apiBase), databaseUrl }))
    )
    yield* Effect.log(`folded ${applied} events into stripe.customers and stripe.invoices`)
  }).pipe(NodeRuntime.runMain)
}
