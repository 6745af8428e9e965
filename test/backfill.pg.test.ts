import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { PgSink } from "@stripe-sync/sink-postgres"
import { Catalog, StripeClient } from "@stripe-sync/source-stripe"
import type { EmulatorHandle } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Layer, Logger, LogLevel, Random, Redacted } from "effect"
import * as Sync from "../packages/cli/src/Sync.js"
import { cli, completeLists, finished, json, waitFor, withEmulator } from "./harness/e2e.js"
import { PgTest } from "./harness/index.js"

/** The sync's own layers on the test database, in a schema of the test's own. */
const syncLayer = (emulator: EmulatorHandle, url: string, schema: string) =>
  Layer.mergeAll(
    StripeClient.layer({
      apiKey: Redacted.make("sk_test_e2e"),
      apiBase: emulator.url,
      rateLimit: 1000,
      endpointRateLimit: 1000
    }),
    PgSink.layerFromUrl({ url: Redacted.make(url), schema, maxConnections: 20 }),
    Logger.minimumLogLevel(LogLevel.Error)
  )

interface Comparison {
  readonly resources: number
  readonly objects: number
}

/**
 * Every table of the default resources equals the emulator's truth for the account: the same ids
 * (objects Stripe still lists) and the same `_raw_data`, field by field. Child tables hold every
 * item of their parents' complete lists.
 */
const assertEqualsTruth = (emulator: EmulatorHandle, schema: string, account: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    let resources = 0
    let objects = 0
    for (const resource of Catalog.defaults) {
      // the platform's connected accounts are not objects of an account's store: checked apart
      if (resource.object === "account") continue
      const truth = emulator.truth(resource.object, account).filter((o) => o.deleted !== true)
      const rows = yield* sql<{ id: string; raw: unknown }>`
        SELECT id, _raw_data AS raw FROM ${sql(schema)}.${sql(resource.table)}
        WHERE _account_id = ${account} ORDER BY id COLLATE "C"`
      const expected = new Map(
        truth.map((o) => [String(o.id), json(completeLists(emulator, account, resource, o))])
      )
      assert.deepStrictEqual(
        rows.map((r) => r.id),
        [...expected.keys()].sort(),
        `ids of ${resource.table}`
      )
      for (const row of rows) {
        const want = expected.get(row.id) as Record<string, unknown>
        const got = { ...(row.raw as Record<string, unknown>) }
        // a list Stripe returns only when expanded (checkout sessions' line_items) is not part of
        // the stored object; its items are checked in the child table below
        for (const embedded of resource.embeddedLists ?? []) {
          if (!(embedded.field in want)) delete got[embedded.field]
        }
        assert.deepStrictEqual(got, want, `${resource.table} ${row.id}`)
      }
      if (truth.length > 0) resources++
      objects += truth.length
    }
    for (const child of Catalog.children) {
      const parent = Catalog.byObject(child.parent)
      if (parent._tag === "None") continue
      const items = new Map<string, string>()
      for (const o of emulator.truth(parent.value.object, account)) {
        if (o.deleted === true) continue
        const list = o[child.field] as
          | { data?: ReadonlyArray<{ id: string }>; has_more?: boolean }
          | undefined
        for (const item of list?.data ?? []) items.set(item.id, String(o.id))
        if (list === undefined || list.has_more === true) {
          // a list only returned when expanded, or truncated: the emulator keeps every item beside the object
          for (const item of emulator.account(account).children.get(String(o.id)) ?? []) {
            items.set(String(item.id), String(o.id))
          }
        }
      }
      const rows = yield* sql<{ id: string; parent: string }>`
        SELECT id, _parent_id AS parent FROM ${sql(schema)}.${sql(child.table)} WHERE _account_id = ${account}`
      assert.deepStrictEqual(
        new Map(rows.map((r) => [r.id, r.parent])),
        items,
        `rows of ${child.table} and their parents`
      )
    }
    return { resources, objects } satisfies Comparison
  })

describe("backfill, end to end", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      "a full backfill equals the emulator's truth, table by table, nested lists complete",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({ seed: "e2e-full", scale: 1.3 })
          const result = yield* Sync.backfill({ resources: Catalog.defaults, triggeredBy: "test" }).pipe(
            Effect.provide(syncLayer(emulator, db.url, "e2e_full"))
          )
          const sql = yield* SqlClient.SqlClient
          const compared = yield* assertEqualsTruth(emulator, "e2e_full", emulator.accountId)
          assert.isAtLeast(compared.objects, 5000)
          assert.isAtLeast(compared.resources, 20)
          assert.isAtLeast(result.objects, compared.objects)

          // canceled subscriptions are listed (status=all), the long lists are complete
          const canceled = emulator.truth("subscription").filter((s) => s.status === "canceled")
          assert.isAbove(canceled.length, 0)
          const [subs] = yield* sql<{ n: string }>`
            SELECT count(*) AS n FROM e2e_full.subscriptions WHERE status = 'canceled'`
          assert.strictEqual(Number(subs!.n), canceled.length)
          const lineCounts = yield* sql<{ n: string }>`
            SELECT count(*) AS n FROM e2e_full.invoice_line_items GROUP BY _parent_id HAVING count(*) = 25`
          assert.isAtLeast(lineCounts.length, 1, "an invoice with 25 line item rows")
          const itemCounts = yield* sql<{ n: string }>`
            SELECT count(*) AS n FROM e2e_full.subscription_items GROUP BY _parent_id HAVING count(*) = 12`
          assert.isAtLeast(itemCounts.length, 1, "a subscription with 12 item rows")

          // the run is recorded as complete, with every resource accounted for
          const [run] = yield* sql<{ status: string; error_count: number; total_processed: string }>`
            SELECT status, error_count, total_processed FROM e2e_full.sync_runs`
          assert.strictEqual(run!.status, "complete")
          assert.strictEqual(run!.error_count, 0)
          assert.strictEqual(Number(run!.total_processed), result.objects)
        }),
      120_000
    )

    it.scoped(
      "Connect: every connected account is backfilled with Stripe-Account into its own rows",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({
            seed: "e2e-connect",
            scale: 0.1,
            connectedAccounts: 2,
            connectedScale: 0.1
          })
          yield* Sync.backfill({
            resources: Catalog.defaults,
            connectedAccounts: "all",
            triggeredBy: "test"
          }).pipe(Effect.provide(syncLayer(emulator, db.url, "connect")))
          assert.strictEqual(emulator.connectedAccountIds.length, 2)
          for (const account of [emulator.accountId, ...emulator.connectedAccountIds]) {
            const compared = yield* assertEqualsTruth(emulator, "connect", account)
            assert.isAbove(compared.objects, 100, account)
          }
          const sql = yield* SqlClient.SqlClient
          const accounts = yield* sql<{ id: string; account: string }>`
            SELECT id, _account_id AS account FROM connect.accounts ORDER BY id COLLATE "C"`
          assert.deepStrictEqual(
            accounts,
            [...emulator.connectedAccountIds].sort().map((id) => ({ id, account: emulator.accountId }))
          )
          const runs = yield* sql<{ account_id: string; status: string }>`
            SELECT account_id, status FROM connect.sync_runs ORDER BY account_id`
          assert.deepStrictEqual(
            runs,
            [emulator.accountId, ...emulator.connectedAccountIds]
              .sort()
              .map((account_id) => ({ account_id, status: "complete" }))
          )
        }),
      120_000
    )

    it.scoped(
      "completes and is correct under a 429 storm and random 5xx",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({
            seed: "e2e-storm",
            scale: 0.3,
            faults: { errorRate: 0.08, rateLimit: { perSecond: 60, perEndpointPerSecond: 30 } }
          })
          yield* Sync.backfill({ resources: Catalog.defaults, triggeredBy: "test" }).pipe(
            Effect.provide(syncLayer(emulator, db.url, "storm"))
          )
          const byStatus: Record<string, number> = {}
          for (const statuses of Object.values(emulator.stats().byPath)) {
            for (const [status, n] of Object.entries(statuses)) byStatus[status] = (byStatus[status] ?? 0) + n
          }
          const compared = yield* assertEqualsTruth(emulator, "storm", emulator.accountId)
          assert.isAbove(compared.objects, 1000)
          // the faults did happen
          assert.isAbove(byStatus["429"] ?? 0, 0, JSON.stringify(byStatus))
          assert.isAbove(byStatus["500"] ?? 0, 0, JSON.stringify(byStatus))
        }),
      120_000
    )

    it.scoped(
      "a restricted key: without a permission that resource is skipped with one warning, the run completes",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* PgClient.PgClient
          const emulator = yield* withEmulator({
            seed: "e2e-restricted",
            scale: 0.05,
            restrictedKeys: { rk_test_customers_only: ["customers:read"] }
          })
          const args = [
            "backfill",
            "customers",
            "invoices",
            "--database-url",
            db.url,
            "--schema",
            "restricted"
          ]
          const env = { STRIPE_API_KEY: "rk_test_customers_only", STRIPE_API_BASE: emulator.url }
          // the key may not read its own account: a usage error that says what to do
          const denied = yield* finished(cli(args, env))
          assert.strictEqual(denied.code, 2, denied.output)
          assert.include(denied.output, "--account-id")
          const out = yield* finished(cli(args, { ...env, STRIPE_ACCOUNT_ID: emulator.accountId }))
          assert.strictEqual(out.code, 0, out.output)
          assert.strictEqual(out.output.match(/skipping invoices/g)?.length, 1, out.output)
          const customers = yield* sql<{ n: string }>`SELECT count(*) AS n FROM restricted.customers`
          assert.strictEqual(
            Number(customers[0]!.n),
            emulator.truth("customer").filter((c) => c.deleted !== true).length
          )
          const objects = yield* sql<{ object: string; status: string }>`
            SELECT object, status FROM restricted._sync_run_objects ORDER BY object`
          assert.deepStrictEqual(objects, [
            { object: "customer", status: "complete" },
            { object: "invoice", status: "skipped" }
          ])
        }),
      60_000
    )

    it.scoped(
      "a bad API key fails fast with exit code 2 and a message that says so",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({ seed: "e2e-key", scale: 0.05 })
          const started = Date.now()
          const out = yield* finished(
            cli(["backfill", "customers", "--database-url", db.url, "--schema", "badkey"], {
              STRIPE_API_KEY: "rk_test_revoked",
              STRIPE_API_BASE: emulator.url
            })
          )
          assert.strictEqual(out.code, 2, out.output)
          assert.match(out.output, /Invalid API Key|API key/i)
          assert.notInclude(out.output, "rk_test_revoked")
          assert.isBelow(Date.now() - started, 30_000)
        }),
      60_000
    )

    it.scoped(
      "the CLI killed with SIGKILL at random points resumes to the exact truth, no page logged twice",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* PgClient.PgClient
          const seed = Number(process.env.E2E_SEED ?? Math.floor(Math.random() * 2 ** 31))
          console.log(`SIGKILL resume test seed: ${seed} (E2E_SEED=${seed} replays it)`)
          const random = Random.make(seed)
          const emulator = yield* withEmulator({ seed: "e2e-kill", scale: 0.6, faults: { latencyMs: 15 } })
          const env = { STRIPE_API_KEY: "sk_test_e2e", STRIPE_API_BASE: emulator.url }
          const args = [
            "backfill",
            "--database-url",
            db.url,
            "--schema",
            "killed",
            "--lease-ttl",
            "2",
            "--rate-limit",
            "1000",
            "--endpoint-rate-limit",
            "1000"
          ]
          const expected = Catalog.defaults.reduce(
            (n, r) => n + emulator.truth(r.object).filter((o) => o.deleted !== true).length,
            0
          )
          const logged = Effect.gen(function* () {
            const exists = yield* sql<{ t: string | null }>`SELECT to_regclass('killed._events')::text AS t`
            if (exists[0]?.t == null) return 0
            const [row] = yield* sql<{ n: string }>`SELECT count(*) AS n FROM killed._events`
            return Number(row!.n)
          })
          let kills = 0
          for (let round = 0; round < 3; round++) {
            const before = yield* logged
            // somewhere in the next stretch of the backfill
            const target = before + Math.floor((0.1 + (yield* random.next) * 0.2) * expected)
            if (target >= expected * 0.95) break
            const child = cli(args, env)
            const exit = yield* Effect.fork(finished(child))
            yield* waitFor(
              `${target} events in the log`,
              Effect.map(logged, (n) => n >= target),
              90
            )
            child.kill("SIGKILL")
            const out = yield* exit.await
            assert.strictEqual(out._tag, "Success")
            kills++
          }
          assert.isAtLeast(kills, 2)
          const last = yield* finished(cli(args, env))
          assert.strictEqual(last.code, 0, last.output)

          yield* assertEqualsTruth(emulator, "killed", emulator.accountId).pipe(
            Effect.provideService(SqlClient.SqlClient, sql)
          )
          // no object's page was logged twice: the objects do not change, so one state each
          const twice = yield* sql<{ object_id: string; n: string }>`
            SELECT object_id, count(*) AS n FROM killed._events
            GROUP BY account_id, object_type, object_id HAVING count(*) > 1 LIMIT 5`
          assert.deepStrictEqual(twice, [])
          // and no range is left behind
          const [cursors] = yield* sql<{ n: string }>`SELECT count(*) AS n FROM killed._cursors`
          assert.strictEqual(Number(cursors!.n), 0)
        }),
      240_000
    )
  })
})
