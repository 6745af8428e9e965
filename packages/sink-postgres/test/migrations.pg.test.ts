/**
 * (g) Two processes running migrations at once on an empty database both succeed; a second schema
 * in the same database migrates at the same time on its own.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { customerSnapshot, unique } from "../../core/test/contracts/fixtures.js"
import { Migrations, PgEventLog } from "../src/index.js"

const script = fileURLToPath(new URL("./fixtures/migrateProcess.ts", import.meta.url))
const root = fileURLToPath(new URL("../../../", import.meta.url))

/** Starts a migrating process; it migrates once every process has said it is ready. */
const runProcess = (url: string, schema: string, ready: Effect.Latch, allReady: Effect.Effect<void>) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, url, schema], { cwd: root })
    let stdout = ""
    let stderr = ""
    let started = false
    child.stdout.on("data", (d) => {
      stdout += String(d)
    })
    child.stderr.on("data", (d) => {
      stderr += String(d)
      if (!started && stderr.includes("ready\n")) {
        started = true
        Effect.runFork(
          Effect.zipRight(
            Effect.zipRight(ready.open, allReady),
            Effect.sync(() => child.stdin.write("go\n"))
          )
        )
      }
    })
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("migrations (postgres)", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect("(g) two processes migrating an empty database at once both succeed", () =>
      Effect.gen(function* () {
        const database = yield* PgTest.TestDatabase
        const sql = yield* SqlClient.SqlClient
        const latches = yield* Effect.all([Effect.makeLatch(), Effect.makeLatch(), Effect.makeLatch()])
        const allReady = Effect.all(
          latches.map((l) => l.await),
          { discard: true }
        )
        const results = yield* Effect.all(
          [
            runProcess(database.url, "stripe", latches[0], allReady),
            runProcess(database.url, "stripe", latches[1], allReady),
            runProcess(database.url, "second", latches[2], allReady)
          ],
          { concurrency: "unbounded" }
        )
        for (const r of results) assert.strictEqual(r.code, 0, r.stderr)
        const [a, b, c] = results.map((r) => JSON.parse(r.stdout) as Array<string>)
        // exactly one of the two applied the migration; the other found nothing to do
        assert.deepStrictEqual(
          [a, b].sort((x, y) => y!.length - x!.length),
          [["0001_event_log", "0002_sync_runs", "0003_managed_webhooks", "0004_events_object_index"], []]
        )
        assert.deepStrictEqual(c, [
          "0001_event_log",
          "0002_sync_runs",
          "0003_managed_webhooks",
          "0004_events_object_index"
        ])
        const tables = yield* sql<{ schema: string; name: string }>`
          SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
          WHERE table_schema IN ('stripe', 'second') ORDER BY 1, 2`
        const expected = [
          "_checkpoints",
          "_cursors",
          "_events",
          "_managed_webhooks",
          "_migrations",
          "_projection_migrations",
          "_revalidate",
          "_sync_run_objects",
          "_sync_runs",
          "sync_runs"
        ]
        assert.deepStrictEqual(
          tables.map((t) => `${t.schema}.${t.name}`),
          [...expected.map((n) => `second.${n}`), ...expected.map((n) => `stripe.${n}`)]
        )
        const recorded = yield* sql<{ id: number }>`SELECT id FROM stripe._migrations`
        assert.deepStrictEqual(
          recorded.map((r) => r.id),
          [1, 2, 3, 4]
        )
      })
    )

    it.scoped(
      "an existing log upgrades: the object index is replaced and the same-state skip still holds",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* Migrations.run("upgraded")
          // back to the state of a database made before migration 4
          yield* sql.unsafe(`DROP INDEX upgraded._events_object_id`)
          yield* sql.unsafe(
            `CREATE INDEX _events_object ON upgraded._events (account_id, object_type, object_id, position)`
          )
          yield* sql.unsafe(`DELETE FROM upgraded._migrations WHERE id = 4`)
          const log = yield* PgEventLog.make("upgraded")
          const accountId = unique("acct")
          assert.deepStrictEqual(
            yield* log.append({ events: [customerSnapshot(accountId, "cus_1", "A", 1)] }),
            {
              appended: 1,
              skipped: 0
            }
          )
          assert.deepStrictEqual(yield* Migrations.run("upgraded"), ["0004_events_object_index"])
          const indexes = yield* sql<{ name: string }>`
          SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'upgraded' AND tablename = '_events' ORDER BY 1`
          assert.deepStrictEqual(
            indexes.map((i) => i.name),
            ["_events_account_event", "_events_log_order", "_events_object_id"]
          )
          assert.deepStrictEqual(
            yield* log.append({
              events: [
                customerSnapshot(accountId, "cus_1", "A", 2),
                customerSnapshot(accountId, "cus_1", "B", 3)
              ]
            }),
            { appended: 1, skipped: 1 }
          )
        })
    )
  })
})
