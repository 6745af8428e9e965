/**
 * Runs examples/webhook-server.ts against the emulator (real signed webhooks, with its retries) and a
 * real PostgreSQL: the custom `customer_emails` table and the standard tables both follow Stripe.
 */
import * as Net from "node:net"
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { startEmulator } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import Stripe from "stripe"
import { PgTest } from "../../test/harness/index.js"
import { WebhookServerLive } from "../webhook-server.js"

const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const server = Net.createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        server.close(() => resolve(port))
      })
    })
)

const eventually = <E, R>(what: string, condition: Effect.Effect<boolean, E, R>, ms = 20_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("50 millis")
    }
  })

describe("examples/webhook-server.ts", () => {
  layer(PgTest.layer(), { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.scoped(
      "folds real webhooks into customer_emails and the stripe tables",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* SqlClient.SqlClient
          const emulator = yield* Effect.acquireRelease(
            Effect.promise(() =>
              startEmulator({
                seed: "example-webhooks",
                generate: false,
                webhooks: { retry: { initialDelayMs: 100 } }
              })
            ),
            (e) => Effect.promise(() => e.stop())
          )
          const stripe = new Stripe("sk_test_example", {
            host: emulator.host,
            port: emulator.port,
            protocol: "http",
            maxNetworkRetries: 0
          })
          const port = yield* freePort
          const endpoint = yield* Effect.promise(() =>
            stripe.webhookEndpoints.create({
              url: `http://127.0.0.1:${port}/webhooks`,
              enabled_events: ["*"]
            })
          )
          yield* Layer.build(
            WebhookServerLive({
              databaseUrl: Redacted.make(db.url),
              secrets: [Redacted.make(String(endpoint.secret))],
              platformAccountId: emulator.accountId,
              port,
              host: "127.0.0.1"
            }).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)))
          )

          const ids = yield* Effect.promise(async () => {
            const ada = await stripe.customers.create({ email: "ada@example.com" })
            await stripe.customers.update(ada.id, { email: "ada@lovelace.example" })
            const bob = await stripe.customers.create({ email: "bob@example.com" })
            const eve = await stripe.customers.create({ email: "eve@example.com" })
            await stripe.customers.del(eve.id)
            return { ada: ada.id, bob: bob.id, eve: eve.id }
          })

          const expected = [
            { customer_id: ids.ada, email: "ada@lovelace.example", deleted: false },
            { customer_id: ids.bob, email: "bob@example.com", deleted: false },
            { customer_id: ids.eve, email: "eve@example.com", deleted: true }
          ].sort((a, b) => (a.customer_id < b.customer_id ? -1 : 1))
          const emails = sql<{ customer_id: string; email: string; deleted: boolean }>`
            SELECT customer_id, email, deleted FROM stripe.customer_emails
            WHERE account_id = ${emulator.accountId} ORDER BY customer_id`
          yield* eventually(
            "customer_emails to follow Stripe",
            Effect.map(emails, (rows) => JSON.stringify(rows) === JSON.stringify(expected)).pipe(
              Effect.catchAll(() => Effect.succeed(false))
            )
          )
          assert.deepStrictEqual(yield* emails, expected)
          yield* eventually(
            "stripe.customers to follow Stripe",
            Effect.map(
              sql<{ n: string }>`SELECT count(*)::text AS n FROM stripe.customers WHERE deleted`,
              (r) => r[0]?.n === "1"
            ).pipe(Effect.catchAll(() => Effect.succeed(false)))
          )
          const customers = yield* sql<{ id: string; email: string; deleted: boolean }>`
            SELECT id, email, deleted FROM stripe.customers ORDER BY id`
          assert.deepStrictEqual(
            customers,
            expected.map((e) => ({ id: e.customer_id, email: e.email, deleted: e.deleted }))
          )
        }),
      60_000
    )
  })
})
