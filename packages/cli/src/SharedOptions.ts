/**
 * The options every command accepts after its name (`stripe-sync sync --once --database-url …`),
 * each with an environment fallback. With @effect/cli a parent command parses only what comes before
 * a subcommand's name, so these sit on every leaf command.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import { Config, type Option, type Redacted } from "effect"

export const databaseUrl = Options.redacted("database-url").pipe(
  Options.withFallbackConfig(Config.redacted("DATABASE_URL")),
  Options.withDescription(
    "PostgreSQL URL (env DATABASE_URL). Without it, an embedded PostgreSQL runs in .stripe-sync/ of the working directory."
  ),
  Options.optional
)

export const stripeApiKey = Options.redacted("stripe-api-key").pipe(
  Options.withFallbackConfig(Config.redacted("STRIPE_API_KEY")),
  Options.withDescription("Stripe secret or restricted key, sk_… or rk_… (env STRIPE_API_KEY)."),
  Options.optional
)

export const stripeApiBase = Options.text("stripe-api-base").pipe(
  Options.withFallbackConfig(Config.string("STRIPE_API_BASE")),
  Options.withDescription(
    "Stripe API base URL, e.g. a local emulator's http://127.0.0.1:12111 (env STRIPE_API_BASE)."
  ),
  Options.optional
)

export const accountId = Options.text("account-id").pipe(
  Options.withFallbackConfig(Config.string("STRIPE_ACCOUNT_ID")),
  Options.withDescription(
    "The key's own account (acct_…), for a restricted key that may not read GET /v1/account (env STRIPE_ACCOUNT_ID)."
  ),
  Options.optional
)

export const schema = Options.text("schema").pipe(
  Options.withFallbackConfig(Config.string("STRIPE_SYNC_SCHEMA")),
  Options.withDescription("PostgreSQL schema for the tables and the event log (env STRIPE_SYNC_SCHEMA)."),
  Options.withDefault("stripe")
)

export const rateLimit = Options.integer("rate-limit").pipe(
  Options.withFallbackConfig(Config.integer("STRIPE_SYNC_RATE_LIMIT")),
  Options.withDescription(
    "Stripe requests per second per account (env STRIPE_SYNC_RATE_LIMIT; default 100 for live keys, 25 for test keys)."
  ),
  Options.optional
)

export const endpointRateLimit = Options.integer("endpoint-rate-limit").pipe(
  Options.withFallbackConfig(Config.integer("STRIPE_SYNC_ENDPOINT_RATE_LIMIT")),
  Options.withDescription(
    "Stripe requests per second per endpoint and account (env STRIPE_SYNC_ENDPOINT_RATE_LIMIT; default 25)."
  ),
  Options.optional
)

export const logLevel = Options.choice("log-level", ["debug", "info", "warning", "error"]).pipe(
  Options.withFallbackConfig(Config.literal("debug", "info", "warning", "error")("LOG_LEVEL")),
  Options.withDescription("Least severe log level shown (env LOG_LEVEL)."),
  Options.withDefault("info" as const)
)

export const logFormat = Options.choice("log-format", ["pretty", "json"]).pipe(
  Options.withFallbackConfig(Config.literal("pretty", "json")("LOG_FORMAT")),
  Options.withDescription(
    "pretty (for people) or json (one object per line, for machines) (env LOG_FORMAT)."
  ),
  Options.withDefault("pretty" as const)
)

/** All shared options, to spread into a command's options record. */
export const shared = {
  databaseUrl,
  stripeApiKey,
  stripeApiBase,
  accountId,
  schema,
  rateLimit,
  endpointRateLimit,
  logLevel,
  logFormat
}

export interface Shared {
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly stripeApiKey: Option.Option<Redacted.Redacted<string>>
  readonly stripeApiBase: Option.Option<string>
  readonly accountId: Option.Option<string>
  readonly schema: string
  readonly rateLimit: Option.Option<number>
  readonly endpointRateLimit: Option.Option<number>
  readonly logLevel: "debug" | "info" | "warning" | "error"
  readonly logFormat: "pretty" | "json"
}
