/**
 * `pnpm trials --count <n> [--seed <s>] [--workers <w>]`: runs n randomised live-sync trials (see
 * trial.ts) with seeds s, s+1, …, and prints a line per trial and the totals. The first failure stops
 * the run and prints its seed (repeat it with `--seed <that seed> --count 1`).
 *
 * Postgres: `TEST_DATABASE_URL` (a database to work in) if set, else an embedded server in a
 * temporary directory.
 */
import * as os from "node:os"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import * as EmbeddedDatabase from "../../packages/cli/src/EmbeddedDatabase.js"
import { runTrials } from "./trial.js"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const count = Number(arg("count") ?? 100)
const seed = Number(arg("seed") ?? Math.floor(Math.random() * 1_000_000))
const workers = Number(arg("workers") ?? Math.max(2, Math.min(4, os.cpus().length * 2)))

const database = Effect.gen(function* () {
  const fromEnv = process.env.TEST_DATABASE_URL
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv
  const handle = yield* EmbeddedDatabase.start({ dataDir: EmbeddedDatabase.tmpDataDir() })
  return Redacted.value(handle.url)
})

const program = Effect.gen(function* () {
  const url = yield* database
  console.log(`trials: ${count} trials, seeds ${seed}..${seed + count - 1}, ${workers} workers`)
  const started = Date.now()
  let done = 0
  const results = yield* runTrials({
    seeds: Array.from({ length: count }, (_, i) => seed + i),
    databaseUrl: url,
    workers,
    onResult: (r) =>
      Effect.sync(() => {
        done++
        console.log(
          `[${done}/${count}] seed ${r.seed} ${r.delivery}: ${r.changes} changes, ${r.events} events, ${r.compared} objects compared (${r.deleted} deleted)${r.failedDeliveries > 0 ? `, ${r.failedDeliveries} webhook attempts failed and retried` : ""} in ${r.ms} ms`
        )
      })
  }).pipe(
    Effect.provide(
      Layer.unwrapEffect(Effect.sync(() => PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })))
    )
  )
  const seconds = (Date.now() - started) / 1000
  const total = (f: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + f(r), 0)
  console.log(
    `all ${results.length} trials equal the truth in ${seconds.toFixed(1)} s (${(seconds / results.length).toFixed(2)} s a trial with ${workers} workers): ${total((r) => r.changes)} changes, ${total((r) => r.events)} events, ${total((r) => r.compared)} objects compared, ${total((r) => r.deleted)} deleted, ${total((r) => r.failedDeliveries)} failed webhook attempts retried`
  )
})

Effect.runPromiseExit(Effect.scoped(program).pipe(Logger.withMinimumLogLevel(LogLevel.Error))).then(
  (exit) => {
    if (exit._tag === "Failure") {
      console.error(`FAILED (seeds from ${seed}):`, exit.cause.toString())
      process.exit(1)
    }
    process.exit(0)
  }
)
