import * as Net from "node:net"
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { CursorStore, EventLog, Memory, Pipeline, RevalidationQueue } from "@stripe-sync/core"
import { PgProjection, PgSink } from "@stripe-sync/sink-postgres"
import {
  Backfill,
  Catalog,
  EventsPoller,
  Revalidate,
  StripeClient,
  StripeEvent
} from "@stripe-sync/source-stripe"
import { ChangeDriver } from "@stripe-sync/stripe-emulator"
import type { EmulatorHandle } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Either, Exit, Layer, Logger, LogLevel, Redacted } from "effect"
import * as Sync from "../packages/cli/src/Sync.js"
import { cli, waitFor, withEmulator } from "./harness/e2e.js"
import { PgTest } from "./harness/index.js"
import { compareWithTruth } from "./trials/trial.js"

const clientLayer = (emulator: EmulatorHandle) =>
  StripeClient.layer({
    apiKey: Redacted.make("sk_test_live"),
    apiBase: emulator.url,
    rateLimit: 10_000,
    endpointRateLimit: 10_000
  })

const syncLayer = (emulator: EmulatorHandle, url: string, schema: string) =>
  Layer.mergeAll(
    clientLayer(emulator),
    PgSink.layerFromUrl({ url: Redacted.make(url), schema, maxConnections: 8 }),
    Logger.minimumLogLevel(LogLevel.Error)
  )

/** One poll of every account, then the projection and the revalidation queue until quiet. */
const pollAndSettle = (accounts: ReadonlyArray<Backfill.Account>, since: number, schema: string) =>
  Effect.gen(function* () {
    const client = yield* StripeClient.StripeClient
    yield* Pipeline.runSource(
      EventsPoller.make({ client, accounts, lag: 0, overlap: 5, startAfter: since, once: true })
    )
    const queue = yield* RevalidationQueue.RevalidationQueue
    const sql = yield* SqlClient.SqlClient
    yield* waitFor(
      "the projection and the revalidation queue to settle",
      Effect.gen(function* () {
        yield* PgProjection.catchUp(Sync.stripeTables)
        if ((yield* Revalidate.drainOnce({ client, platformAccountId: accounts[0]!.id })) > 0) return false
        const [behind] = yield* sql.unsafe<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${schema}"._events e, "${schema}"._checkpoints c
           WHERE c.projection = $1 AND (e.txid, e.position) > (c.txid, c.position)`,
          [Sync.stripeTables.name]
        )
        return behind?.n === 0 && (yield* queue.size) === 0
      }),
      30
    )
  })

/**
 * `stripe-sync sync …` as a child process, once it has printed `live` (or exited); killed with the
 * scope. `output()` is what it printed so far.
 */
const startSync = (args: ReadonlyArray<string>, env: Record<string, string>, live: string) =>
  Effect.gen(function* () {
    const child = cli(["sync", ...args], env)
    let output = ""
    child.stdout!.on("data", (c: Buffer) => {
      output += c.toString()
    })
    child.stderr!.on("data", (c: Buffer) => {
      output += c.toString()
    })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (child.exitCode === null) child.kill("SIGKILL")
      })
    )
    yield* waitFor(
      "the live phase",
      Effect.sync(() => output.includes(live) || child.exitCode !== null)
    )
    return { child, exited, output: () => output }
  })

describe("live sync, end to end", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      "every event type the emulator records for the core resources changes the right row (polling)",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const schema = "live_types"
          const emulator = yield* withEmulator({ seed: "live-types", scale: 0.05 })
          yield* Effect.gen(function* () {
            const client = yield* StripeClient.StripeClient
            const accounts = yield* Backfill.accounts(client, "none")
            const since = Math.floor(Date.now() / 1000) - 1
            yield* Sync.backfill({ resources: Catalog.defaults, triggeredBy: "test", progress: "lines" })
            const kinds = Object.keys(ChangeDriver.defaultWeights) as Array<ChangeDriver.ChangeKind>
            const sql = yield* SqlClient.SqlClient
            for (const kind of kinds) {
              // each kind alone, until it applied once
              const driver = ChangeDriver.make(emulator, {
                seed: kind,
                weights: Object.fromEntries(kinds.map((k) => [k, k === kind ? 1 : 0]))
              })
              let change: ChangeDriver.AppliedChange | undefined
              for (let i = 0; i < 10 && change === undefined; i++) change = driver.step()
              assert.strictEqual(change?.kind, kind, `${kind} applied`)
              yield* pollAndSettle(accounts, since, schema)
              const result = yield* compareWithTruth(emulator, schema, [emulator.accountId])
              assert.deepStrictEqual(result.problems, [], `after ${kind}`)
              if (kind === "customer.delete") {
                const [row] = yield* sql<{ deleted: boolean }>`
                  SELECT deleted FROM ${sql(schema)}.customers WHERE id = ${change!.objectId}`
                assert.strictEqual(row?.deleted, true, "customer.deleted leaves a tombstone")
              }
              if (kind === "subscription.cancel") {
                const [row] = yield* sql<{ deleted: boolean; status: string }>`
                  SELECT deleted, status FROM ${sql(schema)}.subscriptions WHERE id = ${change!.objectId}`
                assert.deepStrictEqual(
                  row,
                  { deleted: false, status: "canceled" },
                  "a cancellation keeps the row"
                )
              }
              if (kind === "invoice.delete_draft") {
                const [row] = yield* sql<{ deleted: boolean }>`
                  SELECT deleted FROM ${sql(schema)}.invoices WHERE id = ${change!.objectId}`
                assert.strictEqual(row?.deleted, true, "a deleted draft invoice leaves a tombstone")
              }
            }
            // every event type recorded reached the log through the poller
            const recorded = new Set(emulator.truth("event").map((e) => String(e.type)))
            const logged = new Set(
              (yield* sql<{ type: string }>`
                SELECT DISTINCT type FROM ${sql(schema)}._events WHERE source = 'events_api'`).map(
                (r) => r.type
              )
            )
            assert.deepStrictEqual([...logged].sort(), [...recorded].sort())
            for (const type of [
              "customer.created",
              "customer.updated",
              "customer.deleted",
              "product.created",
              "product.updated",
              "product.deleted",
              "price.created",
              "invoice.created",
              "invoice.finalized",
              "invoice.paid",
              "invoice.voided",
              "invoice.deleted",
              "customer.subscription.created",
              "customer.subscription.updated",
              "customer.subscription.deleted",
              "payment_intent.succeeded",
              "charge.succeeded",
              "charge.dispute.created"
            ]) {
              assert.isTrue(logged.has(type), `${type} was exercised`)
            }
          }).pipe(Effect.provide(syncLayer(emulator, db.url, schema)))
        }),
      120_000
    )

    it.scoped(
      "connected accounts' events are polled with Stripe-Account into their own rows",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const schema = "live_connect"
          const emulator = yield* withEmulator({ seed: "live-connect", scale: 0.02, connectedAccounts: 2 })
          yield* Effect.gen(function* () {
            const client = yield* StripeClient.StripeClient
            const accounts = yield* Backfill.accounts(client, "all")
            assert.strictEqual(accounts.length, 3)
            const since = Math.floor(Date.now() / 1000) - 1
            yield* Sync.backfill({
              resources: Catalog.defaults,
              connectedAccounts: "all",
              triggeredBy: "test",
              progress: "lines"
            })
            const seed = Math.floor(Math.random() * 1_000_000)
            console.log(`connect polling seed ${seed}`)
            ChangeDriver.make(emulator, { seed, accounts: "all" }).steps(60)
            yield* pollAndSettle(accounts, since, schema)
            const result = yield* compareWithTruth(
              emulator,
              schema,
              accounts.map((a) => a.id)
            )
            assert.deepStrictEqual(result.problems, [], `seed ${seed}`)
            const sql = yield* SqlClient.SqlClient
            const perAccount = yield* sql<{ account_id: string }>`
              SELECT DISTINCT account_id FROM ${sql(schema)}._events WHERE source = 'events_api'`
            assert.isAtLeast(perAccount.length, 2, "events of more than one account")
          }).pipe(Effect.provide(syncLayer(emulator, db.url, schema)))
        }),
      120_000
    )

    it.scoped(
      "changes made during the backfill are not lost: polling from the backfill's start minus the lag",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const schema = "live_during"
          const emulator = yield* withEmulator({ seed: "live-during", scale: 0.15 })
          yield* Effect.gen(function* () {
            const client = yield* StripeClient.StripeClient
            const accounts = yield* Backfill.accounts(client, "none")
            const seed = Math.floor(Math.random() * 1_000_000)
            console.log(`changes during the backfill, seed ${seed}`)
            const started = Math.floor(Date.now() / 1000)
            const driver = ChangeDriver.start(emulator, { seed, ratePerSecond: 40 })
            yield* Sync.backfill({
              resources: Catalog.defaults,
              triggeredBy: "test",
              progress: "lines"
            }).pipe(Effect.ensuring(Effect.sync(() => driver.stop())))
            assert.isAbove(driver.applied.length, 0, "changes happened during the backfill")
            yield* pollAndSettle(accounts, started - 1, schema)
            const result = yield* compareWithTruth(emulator, schema, [emulator.accountId])
            assert.deepStrictEqual(result.problems, [], `seed ${seed}`)
          }).pipe(Effect.provide(syncLayer(emulator, db.url, schema)))
        }),
      120_000
    )

    it.scoped(
      "revalidation per object type: the tables hold the API's object, not a stale payload",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const schema = "live_revalidate"
          const emulator = yield* withEmulator({ seed: "live-revalidate", scale: 0.01 })
          yield* Effect.gen(function* () {
            const client = yield* StripeClient.StripeClient
            const platform = yield* client.platformAccountId
            yield* PgProjection.migrate(Sync.stripeTables)
            const onEvents = Revalidate.onEvents(["customer"])
            yield* PgProjection.migrate(onEvents)
            const truth = emulator.truth("customer")[0]!
            // a webhook whose payload is not what the API says now
            const stale = { ...truth, email: "stale@example.com", metadata: { stale: "yes" } }
            const now = Math.floor(Date.now() / 1000)
            const event = Either.getOrThrow(
              StripeEvent.toEnvelope(
                {
                  id: "evt_stale_1",
                  object: "event",
                  type: "customer.updated",
                  created: now,
                  api_version: client.apiVersion,
                  data: { object: stale }
                },
                { source: "webhook", platformAccountId: platform }
              )
            )
            const log = yield* EventLog.EventLog
            yield* log.append({ events: [event] })
            yield* PgProjection.catchUp(onEvents)
            yield* PgProjection.catchUp(Sync.stripeTables)
            const sql = yield* SqlClient.SqlClient
            const email = sql<{
              email: string
            }>`SELECT email FROM ${sql(schema)}.customers WHERE id = ${String(truth.id)}`
            assert.strictEqual((yield* email)[0]?.email, "stale@example.com", "the payload first")
            assert.strictEqual(yield* Revalidate.drainOnce({ client, platformAccountId: platform }), 1)
            yield* waitFor(
              "the API's object in the table",
              Effect.gen(function* () {
                yield* PgProjection.catchUp(Sync.stripeTables)
                return (yield* email)[0]?.email === truth.email
              }),
              10
            )
            const [row] = yield* sql<{ raw: unknown }>`
              SELECT _raw_data AS raw FROM ${sql(schema)}.customers WHERE id = ${String(truth.id)}`
            assert.deepStrictEqual(row?.raw, JSON.parse(JSON.stringify(truth)))
          }).pipe(Effect.provide(syncLayer(emulator, db.url, schema)))
        }),
      60_000
    )

    it.scoped(
      "a cursor older than Stripe's 30-day retention fails with the command that fixes it",
      () =>
        Effect.gen(function* () {
          const emulator = yield* withEmulator({ seed: "live-retention", scale: 0.01 })
          const exit = yield* Effect.gen(function* () {
            const client = yield* StripeClient.StripeClient
            const accounts = yield* Backfill.accounts(client, "none")
            const cursors = yield* CursorStore.CursorStore
            const old = Math.floor(Date.now() / 1000) - 31 * 24 * 3600
            yield* cursors.put([
              {
                source: EventsPoller.sourceName,
                key: "default",
                value: { accounts: { [accounts[0]!.id]: { upTo: old, seen: [] } } }
              }
            ])
            return yield* Pipeline.runSource(EventsPoller.make({ client, accounts, once: true })).pipe(
              Effect.exit
            )
          }).pipe(Effect.provide(Layer.merge(clientLayer(emulator), Memory.layer)))
          assert.isTrue(Exit.isFailure(exit))
          const error = Exit.isFailure(exit) ? exit.cause : undefined
          const failure = error && error._tag === "Fail" ? error.error : undefined
          assert.strictEqual(failure?._tag, "EventsRetentionExceeded")
          assert.include((failure as EventsPoller.EventsRetentionExceeded).message, "stripe-sync sync")
        }),
      60_000
    )

    it.scoped(
      "stripe-sync sync: backfill, then live (polling and webhooks) until SIGTERM; random changes converge to the truth; a restart resumes polling without a second backfill",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({ seed: "live-cli", scale: 0.05 })
          const port = yield* Effect.async<number>((resume) => {
            const server = Net.createServer()
            server.listen(0, "127.0.0.1", () => {
              const p = (server.address() as Net.AddressInfo).port
              server.close(() => resume(Effect.succeed(p)))
            })
          })
          const endpoint = yield* Effect.promise(() =>
            fetch(`${emulator.url}/v1/webhook_endpoints`, {
              method: "POST",
              headers: {
                authorization: "Bearer sk_test_cli",
                "content-type": "application/x-www-form-urlencoded"
              },
              body: `url=${encodeURIComponent(`http://127.0.0.1:${port}/webhooks`)}&enabled_events[]=*`
            }).then((r) => r.json() as Promise<{ secret: string }>)
          )
          const first = yield* startSync(
            [
              "--webhook-port",
              String(port),
              "--webhook-secret",
              endpoint.secret,
              "--poll-events",
              "1",
              "--events-lag",
              "0",
              "--schema",
              "live_cli",
              "--log-level",
              "error"
            ],
            { DATABASE_URL: db.url, STRIPE_API_KEY: "sk_test_cli", STRIPE_API_BASE: emulator.url },
            "live: polling events every 1 s and webhooks on port"
          )
          const { child, exited } = first
          assert.include(first.output(), "live:", first.output())
          yield* waitFor(
            "the webhook server",
            Effect.promise(() =>
              fetch(`http://127.0.0.1:${port}/healthz`).then(
                (r) => r.ok,
                () => false
              )
            )
          )
          const seed = Math.floor(Math.random() * 1_000_000)
          console.log(`sync live seed ${seed}`)
          const driver = ChangeDriver.make(emulator, { seed })
          for (let round = 0; round < 3; round++) {
            driver.steps(15)
            yield* Effect.sleep("300 millis")
          }
          let last: ReadonlyArray<string> = []
          yield* waitFor(
            "the tables to equal the truth",
            Effect.map(compareWithTruth(emulator, "live_cli", [emulator.accountId]), (r) => {
              last = r.problems
              return r.problems.length === 0
            }),
            60
          ).pipe(Effect.catchAllDefect(() => Effect.fail(new Error(`seed ${seed}: ${last.join("\n")}`))))
          const sql = yield* SqlClient.SqlClient
          const sources = (yield* sql<{ source: string }>`
            SELECT DISTINCT source FROM live_cli._events ORDER BY source`).map((r) => r.source)
          assert.includeMembers(sources, ["backfill", "webhook"], "webhooks were received")
          child.kill("SIGTERM")
          const code = yield* Effect.promise(() => exited)
          assert.strictEqual(code, 130, first.output())

          // A restart goes straight to polling from the stored cursor: no second backfill, and the
          // changes made while it was down arrive.
          const backfilled = yield* sql<{ n: number }>`
            SELECT count(*)::int AS n FROM live_cli._events WHERE source = 'backfill'`
          driver.steps(15)
          const restarted = yield* startSync(
            ["--poll-events", "1", "--events-lag", "0", "--schema", "live_cli", "--log-level", "error"],
            { DATABASE_URL: db.url, STRIPE_API_KEY: "sk_test_cli", STRIPE_API_BASE: emulator.url },
            "live: polling events every 1 s"
          )
          const again = restarted.output()
          assert.include(again, "resuming: the last backfill completed", again)
          assert.notInclude(again, "done:", again)
          driver.steps(15)
          yield* waitFor(
            "the tables to equal the truth after the restart",
            Effect.map(compareWithTruth(emulator, "live_cli", [emulator.accountId]), (r) => {
              last = r.problems
              return r.problems.length === 0
            }),
            60
          ).pipe(Effect.catchAllDefect(() => Effect.fail(new Error(`seed ${seed}: ${last.join("\n")}`))))
          const backfilledAfter = yield* sql<{ n: number }>`
            SELECT count(*)::int AS n FROM live_cli._events WHERE source = 'backfill'`
          assert.strictEqual(backfilledAfter[0]!.n, backfilled[0]!.n, "no second backfill")
          restarted.child.kill("SIGTERM")
          assert.strictEqual(yield* Effect.promise(() => restarted.exited), 130, restarted.output())
        }),
      180_000
    )
  })
})
