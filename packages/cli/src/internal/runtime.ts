import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import { PgSink } from "@stripe-sync/sink-postgres"
import { StripeClient } from "@stripe-sync/source-stripe"
import { Effect, Layer, Option, Redacted } from "effect"
import * as EmbeddedDatabase from "../EmbeddedDatabase.js"
import * as Logging from "../Logging.js"
import type { Shared } from "../SharedOptions.js"
import { UnknownResource } from "../Sync.js"

/** The database of a command: `--database-url`, or the embedded default for the life of the command. */
export const databaseUrl = (options: Pick<Shared, "databaseUrl">) =>
  Option.match(options.databaseUrl, {
    onSome: (url) => Effect.succeed(url),
    onNone: () =>
      Effect.map(EmbeddedDatabase.start({ dataDir: EmbeddedDatabase.defaultDataDir() }), (h) => h.url)
  })

/** The Postgres sink (every pipeline port, migrated) on the command's database. */
export const sinkLayer = (
  options: Pick<Shared, "databaseUrl" | "schema">,
  pool: { readonly maxConnections?: number } = {}
): Layer.Layer<PgSink.Services | PgClient.PgClient | SqlClient.SqlClient, unknown> =>
  Layer.unwrapScoped(
    Effect.map(databaseUrl(options), (url) =>
      PgSink.layerFromUrl({ url, schema: options.schema, ...pool, applicationName: "stripe-sync" })
    )
  )

/** Runs a command's effect with its logging settings. */
export const withLogging =
  (options: Pick<Shared, "logLevel" | "logFormat">) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.provide(effect, Logging.layer({ level: options.logLevel, format: options.logFormat }))

/** The Stripe client of a command: a required key (`--stripe-api-key` or `STRIPE_API_KEY`) and the shared options. */
export const stripeLayer = (options: Shared): Layer.Layer<StripeClient.StripeClient, UnknownResource> =>
  Layer.unwrapEffect(
    Option.match(options.stripeApiKey, {
      onNone: () =>
        Effect.fail(
          new UnknownResource({
            setting: "stripe api key",
            message: "no Stripe key: pass --stripe-api-key or set STRIPE_API_KEY (sk_… or rk_…)"
          })
        ),
      onSome: (apiKey) =>
        /^(sk|rk)_(test|live)_/.test(Redacted.value(apiKey))
          ? Effect.succeed(
              StripeClient.layer({
                apiKey,
                apiBase: Option.getOrUndefined(options.stripeApiBase),
                accountId: Option.getOrUndefined(options.accountId),
                rateLimit: Option.getOrUndefined(options.rateLimit),
                endpointRateLimit: Option.getOrUndefined(options.endpointRateLimit)
              })
            )
          : Effect.fail(
              new UnknownResource({
                setting: "stripe api key",
                message:
                  "the Stripe key must be a secret key (sk_test_…, sk_live_…) or a restricted key (rk_…)"
              })
            )
    })
  )
