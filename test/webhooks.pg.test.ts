/**
 * Webhooks end to end: the emulator signs and delivers real webhooks (with its retries) to the
 * webhook server of `stripe-sync serve` over HTTP; the events go through the log into the stripe
 * tables of a real PostgreSQL. Changes are made with the official SDK against the emulator.
 */
import * as Net from "node:net"
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgSink } from "@stripe-sync/sink-postgres"
import { Webhook } from "@stripe-sync/source-stripe"
import type { EmulatorHandle } from "@stripe-sync/stripe-emulator/Emulator"
import { Deferred, Effect, Logger, LogLevel, Redacted } from "effect"
import Stripe from "stripe"
import { serveWebhooks } from "../packages/cli/src/internal/serveCommand.js"
import { json, withEmulator } from "./harness/e2e.js"
import { FaultProxy, PgTest } from "./harness/index.js"

const sdk = (emulator: EmulatorHandle) =>
  new Stripe("sk_test_e2e", {
    host: emulator.host,
    port: emulator.port,
    protocol: "http",
    maxNetworkRetries: 0
  })

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

/** The webhook server + projection of `stripe-sync serve`, on `databaseUrl`, for the life of the scope. */
const startServer = (options: {
  readonly databaseUrl: string
  readonly port: number
  readonly secret: string
  readonly account: string
}) =>
  Effect.gen(function* () {
    const listening = yield* Deferred.make<string>()
    yield* serveWebhooks({
      port: options.port,
      host: "127.0.0.1",
      secrets: [Redacted.make(options.secret)],
      platformAccountId: options.account,
      onListening: (url) => Deferred.succeed(listening, url)
    }).pipe(
      Effect.provide(PgSink.layerFromUrl({ url: Redacted.make(options.databaseUrl), maxConnections: 8 })),
      Logger.withMinimumLogLevel(LogLevel.None),
      Effect.forkScoped
    )
    return yield* Deferred.await(listening)
  })

/** Polls until `condition` holds, or fails after `ms` naming `what`. */
const eventually = <E, R>(what: string, condition: Effect.Effect<boolean, E, R>, ms = 20_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("50 millis")
    }
  })

/** Every event recorded by the emulator has been acknowledged by an endpoint, and no attempt is pending. */
const deliveredAll = (emulator: EmulatorHandle) =>
  Effect.sync(() => {
    if (emulator.state.webhooks.pending > 0) return false
    const records = emulator.deliveries()
    const ok = new Set(records.filter((r) => r.ok).map((r) => r.eventId))
    return records.every((r) => ok.has(r.eventId))
  })

/** The rows of the types' tables equal the emulator's truth: `_raw_data` field by field, deletes as tombstones. */
const tablesMatch = (emulator: EmulatorHandle, tables: Record<string, string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const mismatches: Array<string> = []
    for (const [type, table] of Object.entries(tables)) {
      const rows = yield* sql<{ id: string; raw: unknown; deleted: boolean }>`
        SELECT id, _raw_data AS raw, deleted FROM stripe.${sql(table)}`
      const byId = new Map(rows.map((r) => [r.id, r]))
      for (const object of emulator.truth(type)) {
        const row = byId.get(String(object.id))
        if (row === undefined) mismatches.push(`${table} ${object.id}: missing`)
        else if (object.deleted === true) {
          if (!row.deleted) mismatches.push(`${table} ${object.id}: not a tombstone`)
        } else if (JSON.stringify(row.raw) !== JSON.stringify(json(object))) {
          // Key order aside: compare structurally.
          try {
            assert.deepStrictEqual(row.raw, json(object))
          } catch {
            mismatches.push(`${table} ${object.id}: differs`)
          }
        }
      }
    }
    return mismatches
  })

const tables = {
  customer: "customers",
  product: "products",
  price: "prices",
  subscription: "subscriptions",
  invoice: "invoices"
}

const count = (sql: SqlClient.SqlClient, where: string) =>
  Effect.map(
    sql<{ n: string }>`SELECT count(*)::text AS n FROM stripe._events WHERE ${sql.literal(where)}`,
    (r) => Number(r[0]?.n ?? 0)
  )

describe("webhooks end to end", () => {
  layer(PgTest.layer(), { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.scoped(
      "events from the emulator land, the right rows change; bad input is refused and changes nothing",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* SqlClient.SqlClient
          const emulator = yield* withEmulator({
            seed: "webhooks-e2e",
            generate: false,
            webhooks: { retry: { initialDelayMs: 100, factor: 2, maxAttempts: 8, maxDelayMs: 1000 } }
          })
          const stripe = sdk(emulator)
          const port = yield* freePort
          const endpoint = yield* Effect.promise(() =>
            stripe.webhookEndpoints.create({
              url: `http://127.0.0.1:${port}/webhooks`,
              enabled_events: ["*"]
            })
          )
          const secret = String(endpoint.secret)
          const url = yield* startServer({ databaseUrl: db.url, port, secret, account: emulator.accountId })

          // Create, update and delete through the official SDK.
          const objects = yield* Effect.promise(async () => {
            const ada = await stripe.customers.create({ email: "ada@example.com", name: "Ada" })
            await stripe.customers.update(ada.id, { name: "Ada Lovelace", metadata: { tier: "gold" } })
            const gone = await stripe.customers.create({ email: "gone@example.com" })
            await stripe.customers.del(gone.id)
            const product = await stripe.products.create({ name: "Widget" })
            await stripe.products.update(product.id, { description: "A widget" })
            const price = await stripe.prices.create({
              product: product.id,
              currency: "usd",
              unit_amount: 1500,
              recurring: { interval: "month" }
            })
            const oneOff = await stripe.products.create({ name: "Discontinued" })
            await stripe.products.del(oneOff.id)
            const sub = await stripe.subscriptions.create({ customer: ada.id, items: [{ price: price.id }] })
            await stripe.subscriptions.update(sub.id, { metadata: { seats: "3" } })
            await stripe.invoiceItems.create({ customer: ada.id, amount: 700, currency: "usd" })
            const invoice = await stripe.invoices.create({ customer: ada.id })
            await stripe.invoices.finalizeInvoice(invoice.id)
            await stripe.invoices.pay(invoice.id)
            await stripe.invoiceItems.create({ customer: ada.id, amount: 300, currency: "usd" })
            const draft = await stripe.invoices.create({ customer: ada.id })
            await stripe.invoices.del(draft.id)
            await stripe.subscriptions.cancel(sub.id)
            return { ada, gone, product, oneOff, price, sub, invoice, draft }
          })

          yield* eventually("every webhook acknowledged", deliveredAll(emulator))
          const deliveries = emulator.deliveries()
          assert.isTrue(deliveries.length >= 20, `${deliveries.length} deliveries`)
          assert.deepStrictEqual(
            [...new Set(deliveries.map((d) => d.status))],
            [200],
            "every delivery answered 200 the first time"
          )
          yield* eventually(
            "the tables equal the emulator's truth",
            Effect.map(tablesMatch(emulator, tables), (m) => m.length === 0)
          )
          assert.deepStrictEqual(yield* tablesMatch(emulator, tables), [])

          // The rows that changed, field by field.
          const customer = yield* sql<{ email: string; name: string; deleted: boolean; account: string }>`
            SELECT email, name, deleted, _account_id AS account FROM stripe.customers WHERE id = ${objects.ada.id}`
          assert.deepStrictEqual(customer, [
            { email: "ada@example.com", name: "Ada Lovelace", deleted: false, account: emulator.accountId }
          ])
          const gone = yield* sql<{
            deleted: boolean
          }>`SELECT deleted FROM stripe.customers WHERE id = ${objects.gone.id}`
          assert.deepStrictEqual(gone, [{ deleted: true }])
          const products = yield* sql<{ id: string; description: string | null; deleted: boolean }>`
            SELECT id, description, deleted FROM stripe.products
            WHERE id IN (${objects.product.id}, ${objects.oneOff.id}) ORDER BY deleted`
          assert.deepStrictEqual(products, [
            { id: objects.product.id, description: "A widget", deleted: false },
            { id: objects.oneOff.id, description: null, deleted: true }
          ])
          const sub = yield* sql<{
            status: string
          }>`SELECT status FROM stripe.subscriptions WHERE id = ${objects.sub.id}`
          assert.deepStrictEqual(sub, [{ status: "canceled" }])
          const invoices = yield* sql<{ id: string; status: string | null; deleted: boolean }>`
            SELECT id, status, deleted FROM stripe.invoices WHERE id IN (${objects.invoice.id}, ${objects.draft.id}) ORDER BY deleted`
          assert.deepStrictEqual(invoices, [
            { id: objects.invoice.id, status: "paid", deleted: false },
            { id: objects.draft.id, status: "draft", deleted: true }
          ])
          const events = yield* count(sql, "source = 'webhook'")
          assert.strictEqual(events, new Set(deliveries.map((d) => d.eventId)).size)

          // Bad input: each refused with its status, nothing stored, no row changed.
          const rowsBefore = yield* sql`SELECT id, _raw_data FROM stripe.customers ORDER BY id`
          const eventsBefore = yield* count(sql, "true")
          const now = Math.floor(Date.now() / 1000)
          const evil = JSON.stringify({
            id: "evt_evil_1",
            object: "event",
            created: now,
            type: "customer.updated",
            api_version: "2026-10-28.endive",
            data: { object: { ...(json(objects.ada) as object), name: "Mallory" } }
          })
          const send = (body: string, headers: Record<string, string>) =>
            Effect.promise(async () => {
              const res = await fetch(`${url}/webhooks`, {
                method: "POST",
                headers: { "content-type": "application/json", ...headers },
                body
              })
              const text = await res.text()
              return {
                status: res.status,
                reason:
                  res.status === 200 ? "ok" : (JSON.parse(text) as { error: { reason: string } }).error.reason
              }
            })
          const signed = (body: string, t = now, key = secret) => ({
            "stripe-signature": Webhook.sign(body, key, t)
          })
          const refused = yield* Effect.all({
            wrongSecret: send(evil, signed(evil, now, "whsec_not_ours")),
            stale: send(evil, signed(evil, now - 301)),
            missing: send(evil, {}),
            tampered: send(evil.replace("Mallory", "Mallorie"), signed(evil)),
            malformed: send('{"id":"evt_evil_2",', signed('{"id":"evt_evil_2",')),
            huge: send(
              JSON.stringify({ ...JSON.parse(evil), padding: "x".repeat(2 * 1024 * 1024) }),
              signed(JSON.stringify({ ...JSON.parse(evil), padding: "x".repeat(2 * 1024 * 1024) }))
            )
          })
          assert.deepStrictEqual(refused, {
            wrongSecret: { status: 400, reason: "bad_signature" },
            stale: { status: 400, reason: "stale_timestamp" },
            missing: { status: 400, reason: "missing_signature" },
            tampered: { status: 400, reason: "bad_signature" },
            malformed: { status: 400, reason: "invalid_json" },
            huge: { status: 413, reason: "too_large" }
          })
          assert.strictEqual(yield* count(sql, "true"), eventsBefore)

          // Unknown event types and objects outside the catalog are stored and acknowledged.
          const unknownType = JSON.stringify({
            id: "evt_unknown_type_1",
            object: "event",
            created: now,
            type: "future_product.materialized",
            data: { object: { id: "fp_1", object: "future_product", shiny: true } }
          })
          const outside = JSON.stringify({
            id: "evt_outside_1",
            object: "event",
            created: now,
            type: "issuing_card.created",
            data: { object: { id: "ic_1", object: "issuing.card", last4: "4242" } }
          })
          assert.deepStrictEqual(yield* send(unknownType, signed(unknownType)), { status: 200, reason: "ok" })
          assert.deepStrictEqual(yield* send(outside, signed(outside)), { status: 200, reason: "ok" })
          const kept = yield* sql<{ event_id: string; type: string; object_type: string }>`
            SELECT event_id, type, object_type FROM stripe._events
            WHERE event_id IN ('evt_unknown_type_1', 'evt_outside_1') ORDER BY event_id`
          assert.deepStrictEqual(kept, [
            { event_id: "evt_outside_1", type: "issuing_card.created", object_type: "issuing.card" },
            {
              event_id: "evt_unknown_type_1",
              type: "future_product.materialized",
              object_type: "future_product"
            }
          ])
          assert.strictEqual(yield* count(sql, "true"), eventsBefore + 2)
          // Nothing corrupted: once the projection has passed those events, the customers are as before.
          yield* eventually(
            "the projection passed the unknown events",
            Effect.map(
              sql<{ n: string }>`
                SELECT count(*)::text AS n FROM stripe._checkpoints c, stripe._events e
                WHERE c.projection = 'stripe_tables' AND e.event_id = 'evt_outside_1'
                  AND (c.txid, c.position) >= (e.txid, e.position)`,
              (r) => r[0]?.n === "1"
            )
          )
          assert.deepStrictEqual(
            yield* sql`SELECT id, _raw_data FROM stripe.customers ORDER BY id`,
            rowsBefore
          )
        }),
      60_000
    )
  })
})

describe("webhooks while the database is cut off", () => {
  layer(PgTest.layer(), { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.scoped(
      "requests during the outage get 503, the emulator's retries land, no event is lost",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* SqlClient.SqlClient
          const proxy = yield* FaultProxy.make({ target: FaultProxy.targetOf(db.url) })
          const emulator = yield* withEmulator({
            seed: "webhooks-outage",
            generate: false,
            webhooks: { retry: { initialDelayMs: 200, factor: 1.5, maxAttempts: 30, maxDelayMs: 1000 } }
          })
          const stripe = sdk(emulator)
          const port = yield* freePort
          const endpoint = yield* Effect.promise(() =>
            stripe.webhookEndpoints.create({
              url: `http://127.0.0.1:${port}/webhooks`,
              enabled_events: ["*"]
            })
          )
          yield* startServer({
            databaseUrl: proxy.rewriteUrl(db.url),
            port,
            secret: String(endpoint.secret),
            account: emulator.accountId
          })
          const create = (from: number, to: number) =>
            Effect.promise(async () => {
              for (let i = from; i < to; i++)
                await stripe.customers.create({ email: `c${i}@example.com`, metadata: { n: String(i) } })
            })

          yield* create(0, 10)
          yield* eventually("the first customers acknowledged", deliveredAll(emulator))
          proxy.cut()
          yield* create(10, 20)
          yield* eventually(
            "deliveries refused with 503 during the outage",
            Effect.sync(() => emulator.deliveries().filter((d) => d.status === 503).length >= 10)
          ).pipe(
            Effect.tapDefect(() =>
              Effect.sync(() =>
                console.error(
                  "deliveries so far:",
                  JSON.stringify(emulator.deliveries().map((d) => [d.eventId, d.attempt, d.status, d.error]))
                )
              )
            )
          )
          proxy.restore()
          yield* create(20, 30)
          yield* eventually("every webhook acknowledged after the outage", deliveredAll(emulator), 30_000)

          const deliveries = emulator.deliveries()
          const statuses = [...new Set(deliveries.map((d) => d.status))].sort()
          assert.deepStrictEqual(statuses, [200, 503])
          const eventIds = [...new Set(deliveries.map((d) => d.eventId))].sort()
          assert.strictEqual(eventIds.length, 30)
          const stored = yield* sql<{ event_id: string }>`
            SELECT event_id FROM stripe._events WHERE source = 'webhook' ORDER BY event_id`
          assert.deepStrictEqual(
            stored.map((r) => r.event_id),
            eventIds,
            "each event stored once"
          )
          yield* eventually(
            "every customer in the table",
            Effect.map(
              sql<{ n: string }>`SELECT count(*)::text AS n FROM stripe.customers`,
              (r) => r[0]?.n === "30"
            ),
            30_000
          )
          const rows = yield* sql<{
            email: string
          }>`SELECT email FROM stripe.customers ORDER BY (_raw_data->'metadata'->>'n')::int`
          assert.deepStrictEqual(
            rows.map((r) => r.email),
            Array.from({ length: 30 }, (_, i) => `c${i}@example.com`)
          )
        }),
      90_000
    )
  })
})
