/**
 * Seeded randomised trials of the live sync (see trials/trial.ts): random changes, events delivered
 * through the webhook server, shuffled and duplicated into the log, or polled; once quiet every
 * compared table equals the emulator's truth. `pnpm trials --count <n> [--seed <s>]` runs more.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { PgTest } from "./harness/index.js"
import { runTrials } from "./trials/trial.js"

const base = Number(process.env.TRIAL_SEED ?? Math.floor(Math.random() * 1_000_000))
const count = Number(process.env.TRIAL_COUNT ?? 50)

describe("live sync trials", () => {
  layer(PgTest.layer(), { timeout: "300 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      `${count} seeded trials (seeds ${base}..${base + count - 1}; TRIAL_SEED=<s> to repeat)`,
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          console.log(`trials: seeds ${base}..${base + count - 1}`)
          const results = yield* runTrials({
            seeds: Array.from({ length: count }, (_, i) => base + i),
            databaseUrl: db.url,
            workers: 4
          }).pipe(Effect.tapError((e) => Effect.sync(() => console.error(String(e)))))
          for (const r of results)
            console.log(`seed ${r.seed} ${r.delivery}: ${r.ms}ms (${r.phases.join(", ")})`)
          const byDelivery = new Map<string, number>()
          for (const r of results) byDelivery.set(r.delivery, (byDelivery.get(r.delivery) ?? 0) + 1)
          assert.strictEqual(results.length, count)
          assert.isAbove(
            results.reduce((n, r) => n + r.events, 0),
            count * 10,
            "the trials recorded events"
          )
          assert.isAbove(
            results.reduce((n, r) => n + r.deleted, 0),
            0,
            "some trials deleted objects"
          )
          if (count >= 20) {
            assert.isAbove(
              results.reduce((n, r) => n + r.failedDeliveries, 0),
              0,
              "some webhook deliveries failed and were retried"
            )
          }
          if (count >= 3) assert.strictEqual(byDelivery.size, 3, "every delivery was tried")
        }),
      300_000
    )
  })
})
