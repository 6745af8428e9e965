import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgManagedWebhooks, PgSink } from "@stripe-sync/sink-postgres"
import { ManagedWebhooks, StripeClient } from "@stripe-sync/source-stripe"
import type { EmulatorHandle } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Exit, Layer, Logger, LogLevel, Redacted } from "effect"
import { cli, finished, withEmulator } from "./harness/e2e.js"
import { PgTest } from "./harness/index.js"

/** A process's view: its own Stripe client and its own pool on the database. */
const processLayer = (emulator: EmulatorHandle, url: string, schema: string) =>
  Layer.mergeAll(
    StripeClient.layer({ apiKey: Redacted.make("sk_test_managed"), apiBase: emulator.url }),
    Layer.effect(ManagedWebhooks.Store, PgManagedWebhooks.make()).pipe(
      Layer.provideMerge(PgSink.layerFromUrl({ url: Redacted.make(url), schema, maxConnections: 4 }))
    ),
    Logger.minimumLogLevel(LogLevel.Error)
  )

const runCli = (args: ReadonlyArray<string>, env: Record<string, string>) => finished(cli(args, env))

const endpointsIn = (emulator: EmulatorHandle) =>
  emulator.truth("webhook_endpoint").filter((e) => e.deleted !== true)

describe("managed webhook endpoints", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      "find-or-create from several processes at once creates one endpoint; its secret is kept",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({ seed: "managed-1", scale: 0.01 })
          const env = {
            DATABASE_URL: db.url,
            STRIPE_API_KEY: "sk_test_managed",
            STRIPE_API_BASE: emulator.url
          }
          const url = "https://sync.example.com/webhooks"
          const results = yield* Effect.all(
            Array.from({ length: 2 }, () =>
              runCli(["webhooks", "create", url, "--schema", "managed_cli", "--log-level", "error"], env)
            ),
            { concurrency: "unbounded" }
          )
          for (const r of results) assert.strictEqual(r.code, 0, r.output)
          const ids = results.map((r) => /(?:created|exists): (we_\S+)/.exec(r.output)?.[1])
          assert.strictEqual(new Set(ids).size, 1, results.map((r) => r.output).join("\n"))
          assert.strictEqual(results.filter((r) => /^created:/m.test(r.output)).length, 1)
          const inStripe = endpointsIn(emulator)
          assert.strictEqual(inStripe.length, 1)
          assert.strictEqual(inStripe[0]!.id, ids[0])
          assert.deepStrictEqual(inStripe[0]!.metadata, { managed_by: "stripe-sync" })

          // in-process too, two pools racing: still the same endpoint
          const again = yield* Effect.all(
            Array.from({ length: 4 }, () =>
              Effect.flatMap(StripeClient.StripeClient, (client) =>
                ManagedWebhooks.findOrCreate(client, { url })
              ).pipe(Effect.provide(processLayer(emulator, db.url, "managed_cli")))
            ),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(
            again.map((e) => [e.id, e.created]),
            again.map(() => [ids[0], false])
          )
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql<{
            id: string
            secret: string
          }>`SELECT id, secret FROM managed_cli._managed_webhooks`
          assert.strictEqual(rows.length, 1)
          assert.match(rows[0]!.secret, /^whsec_/)
          assert.strictEqual(Redacted.value(again[0]!.secret), rows[0]!.secret)

          const listed = yield* Effect.flatMap(StripeClient.StripeClient, ManagedWebhooks.list).pipe(
            Effect.provide(processLayer(emulator, db.url, "managed_cli"))
          )
          assert.deepStrictEqual(
            listed.map((e) => [e.id, e.url, e.stripe._tag]),
            [[ids[0], url, "Some"]]
          )
          // delete through the CLI
          const deleted = yield* runCli(
            ["webhooks", "delete", ids[0]!, "--schema", "managed_cli", "--log-level", "error"],
            env
          )
          assert.strictEqual(deleted.code, 0, deleted.output)
          assert.strictEqual(endpointsIn(emulator).length, 0)
          assert.strictEqual(
            (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM managed_cli._managed_webhooks`)[0]!.n,
            0
          )
        }),
      120_000
    )

    it.scoped(
      "list and delete only ever touch endpoints this database created",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const emulator = yield* withEmulator({ seed: "managed-2", scale: 0.01 })
          const ours = processLayer(emulator, db.url, "managed_ours")
          const theirs = processLayer(emulator, db.url, "managed_theirs")
          const mine = yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
            ManagedWebhooks.findOrCreate(client, { url: "https://prod.example.com/webhooks" })
          ).pipe(Effect.provide(ours))
          // another environment (another database), same Stripe account, same marker
          const other = yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
            ManagedWebhooks.findOrCreate(client, { url: "https://staging.example.com/webhooks" })
          ).pipe(Effect.provide(theirs))
          // an endpoint someone made by hand
          const manual = yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
            client.request("POST", "/v1/webhook_endpoints", {
              url: "https://hand.example.com/hook",
              enabled_events: ["*"]
            })
          ).pipe(Effect.provide(ours))
          const manualId = String(manual.body.id)

          const listed = yield* Effect.flatMap(StripeClient.StripeClient, ManagedWebhooks.list).pipe(
            Effect.provide(ours)
          )
          assert.deepStrictEqual(
            listed.map((e) => e.id),
            [mine.id]
          )
          for (const id of [other.id, manualId]) {
            const exit = yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
              ManagedWebhooks.remove(client, id)
            ).pipe(Effect.provide(ours), Effect.exit)
            assert.isTrue(Exit.isFailure(exit), `deleting ${id} is refused`)
            assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "NotManaged")
          }
          assert.deepStrictEqual(
            endpointsIn(emulator)
              .map((e) => e.id)
              .sort(),
            [mine.id, other.id, manualId].sort()
          )
          yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
            ManagedWebhooks.remove(client, mine.id)
          ).pipe(Effect.provide(ours))
          assert.deepStrictEqual(
            endpointsIn(emulator)
              .map((e) => e.id)
              .sort(),
            [other.id, manualId].sort()
          )
          // an endpoint deleted in Stripe behind our back is recreated by the next find-or-create
          yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
            client.request("DELETE", `/v1/webhook_endpoints/${other.id}`)
          ).pipe(Effect.provide(theirs))
          const recreated = yield* Effect.flatMap(StripeClient.StripeClient, (client) =>
            ManagedWebhooks.findOrCreate(client, { url: "https://staging.example.com/webhooks" })
          ).pipe(Effect.provide(theirs))
          assert.isTrue(recreated.created)
          assert.notStrictEqual(recreated.id, other.id)
        }),
      120_000
    )
  })
})
