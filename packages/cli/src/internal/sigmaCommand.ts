/**
 * `stripe-sync sigma sync [tables…]`: Sigma tables into the log and `sigma.<table>` (the default
 * set, the tables named, or `all`), through Stripe's Queries API or the older query runs.
 */
import { Args, Command, Options } from "@effect/cli"
import { SigmaPlugin } from "@stripe-sync/plugin-sigma"
import { Console, Duration, Effect, Layer, Option } from "effect"
import * as SharedOptions from "../SharedOptions.js"
import * as Sync from "../Sync.js"
import { sinkLayer, stripeLayer, withLogging } from "./runtime.js"

const report = (target: string) => (outcome: SigmaPlugin.Outcome) =>
  Console.log(
    outcome.enabled
      ? `sigma: ${outcome.tables} tables synced, ${outcome.applied} rows applied to ${target}.*`
      : "sigma: not enabled on this account, nothing synced"
  )

/** `--sigma <tables>` of `stripe-sync sync`: `default`, `all`, or table names separated by commas. */
export const sigmaOption = Options.text("sigma").pipe(
  Options.withDescription(
    "Also sync Sigma tables: `default` (the default set), `all`, or names separated by commas (see `stripe-sync sigma sync`)."
  ),
  Options.optional
)

const pluginOptions = (value: string, options: SharedOptions.Shared): SigmaPlugin.Options => {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  return {
    tables: value === "all" ? "all" : value === "default" || names.length === 0 ? undefined : names,
    apiKey: Option.getOrUndefined(options.stripeApiKey),
    filesBase: Option.getOrUndefined(options.stripeApiBase)
  }
}

/** `sync --once --sigma …`: one Sigma run after the backfill. */
export const sigmaOnce = (sigma: Option.Option<string>, options: SharedOptions.Shared) =>
  Option.match(sigma, {
    onNone: () => Effect.void,
    onSome: (value) =>
      SigmaPlugin.sync(pluginOptions(value, options)).pipe(
        Effect.flatMap(report("sigma")),
        Effect.provide(Layer.merge(stripeLayer(options), sinkLayer(options))),
        withLogging(options)
      )
  })

/** `sync --sigma …` live: the Sigma loop alongside the other live parts. */
export const sigmaLive = (sigma: Option.Option<string>, options: SharedOptions.Shared) =>
  Option.match(sigma, {
    onNone: () => [],
    onSome: (value) => [SigmaPlugin.loop(pluginOptions(value, options))]
  })

const sync = Command.make(
  "sync",
  {
    ...SharedOptions.shared,
    tables: Args.text({ name: "tables" }).pipe(
      Args.withDescription("Sigma tables (default: the default set; `all`: every table with a primary key)."),
      Args.repeated
    ),
    api: Options.choice("api", ["queries", "query_runs"]).pipe(
      Options.withDescription(
        "queries: Stripe's Queries API (/v2/data/query_runs, default); query_runs: /v1/sigma/query_runs + files."
      ),
      Options.withDefault("queries" as const)
    ),
    pageSize: Options.integer("page-size").pipe(
      Options.withDescription("Rows per query (default 5000)."),
      Options.withDefault(5000)
    ),
    refreshInterval: Options.text("refresh-interval").pipe(
      Options.withDescription(
        'How often tables whose rows change are read again in full, e.g. "24 hours" (default) or "0 seconds".'
      ),
      Options.withDefault("24 hours")
    ),
    target: Options.text("sigma-schema").pipe(
      Options.withDescription("Schema of the sigma tables (default sigma)."),
      Options.withDefault("sigma")
    )
  },
  ({ tables, api, pageSize, refreshInterval, target, ...options }) =>
    Effect.gen(function* () {
      const interval = yield* Option.match(Duration.decodeUnknown(refreshInterval), {
        onNone: () =>
          Effect.fail(
            new Sync.UnknownResource({
              setting: "refresh interval",
              message: `--refresh-interval ${refreshInterval} is not a duration (e.g. "24 hours", "30 minutes")`
            })
          ),
        onSome: Effect.succeed
      })
      const outcome = yield* SigmaPlugin.sync({
        tables: tables.length === 1 && tables[0] === "all" ? "all" : tables.length > 0 ? tables : undefined,
        api,
        pageSize,
        refreshInterval: interval,
        target,
        apiKey: Option.getOrUndefined(options.stripeApiKey),
        // the emulator (and any other API base) serves the files of query runs itself
        filesBase: Option.getOrUndefined(options.stripeApiBase)
      })
      yield* report(target)(outcome)
    }).pipe(Effect.provide(Layer.merge(stripeLayer(options), sinkLayer(options))), withLogging(options))
).pipe(
  Command.withDescription(
    "Sync Sigma tables into the event log and the sigma schema (append-only tables incrementally, the others refreshed in full)."
  )
)

/**
 * `stripe-sync sigma …`.
 *
 * @since 0.1.0
 */
export const sigma = Command.make("sigma").pipe(
  Command.withDescription("Stripe Sigma tables: sync [tables…]."),
  Command.withSubcommands([sync])
)
