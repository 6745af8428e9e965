/**
 * Settings of the Postgres sink: the sync schema (default `stripe`) and, for `PgSink.layerFromUrl`,
 * the database URL.
 *
 * @since 0.1.0
 */
import { ConfigurationError } from "@stripe-sync/core/PipelineError"
import { Config, Context, Effect, Layer } from "effect"
import { isIdentifier } from "./internal/names.js"

/**
 * The sync schema every table of the sink lives in (internal tables are prefixed `_`).
 *
 * @since 0.1.0
 * @category config
 */
export class PgSinkConfig extends Context.Tag("@stripe-sync/sink-postgres/PgSinkConfig")<
  PgSinkConfig,
  { readonly schema: string }
>() {}

/**
 * @since 0.1.0
 * @category config
 */
export const defaults = { schema: "stripe" } as const

/**
 * Checks a schema name: a lower-case identifier of at most 40 characters (room for the
 * `_shadow_…` schemas of a rebuild).
 *
 * @since 0.1.0
 * @category constructors
 */
export const validateSchema = (schema: string): Effect.Effect<string, ConfigurationError> =>
  isIdentifier(schema, 40)
    ? Effect.succeed(schema)
    : Effect.fail(
        new ConfigurationError({
          setting: "schema",
          message: `"${schema}" is not a valid schema name: use lower-case letters, digits and _, starting with a letter or _, at most 40 characters`
        })
      )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: { readonly schema?: string } = {}
): Layer.Layer<PgSinkConfig, ConfigurationError> =>
  Layer.effect(
    PgSinkConfig,
    Effect.map(validateSchema(options.schema ?? defaults.schema), (schema) => ({ schema }))
  )

/**
 * `STRIPE_SYNC_SCHEMA` (default `stripe`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<{ readonly schema: string }> = Config.all({
  schema: Config.string("STRIPE_SYNC_SCHEMA").pipe(
    Config.withDefault(defaults.schema),
    Config.withDescription("The PostgreSQL schema of the synced tables and the event log")
  )
})
