/**
 * One randomised trial of the live sync: a small emulated account is backfilled, the emulator then
 * applies random changes (its state machines, bursts of updates to one object within a second,
 * deletes), the events reach the log one of three ways, and once quiet (projection caught up,
 * revalidation drained) every compared table must equal the emulator's truth, deleted objects
 * included.
 *
 * Delivery, chosen by the seed:
 * - `webhooks`: the emulator signs and POSTs them to the real webhook server (duplicates, shuffled
 *   order, delays), half the time through a fault proxy cut during the changes, so that Stripe
 *   retries;
 * - `shuffled`: the events of `GET /v1/events` appended straight to the log in a shuffled order, a
 *   third of them twice, in random batches;
 * - `polling`: the Events API poller.
 */
import * as Net from "node:net"
import { SqlClient } from "@effect/sql"
import { EventLog } from "@stripe-sync/core/EventLog"
import * as Pipeline from "@stripe-sync/core/Pipeline"
import { RevalidationQueue } from "@stripe-sync/core/RevalidationQueue"
import { PgProjection, PgSink, StripeTables } from "@stripe-sync/sink-postgres"
import {
  Backfill,
  Catalog,
  EventsPoller,
  Revalidate,
  StripeClient,
  StripeEvent
} from "@stripe-sync/source-stripe"
import { ChangeDriver } from "@stripe-sync/stripe-emulator"
import { type EmulatorHandle, startEmulator } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Either, Fiber, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import { serveWebhooks } from "../../packages/cli/src/internal/serveCommand.js"
import { completeLists, json, waitFor } from "../harness/e2e.js"
import * as FaultProxy from "../harness/FaultProxy.js"

/**
 * The resources compared with the truth: every one the emulator's changes record events for (with
 * their child tables: subscription items, invoice line items). Not compared: invoice items (the
 * emulator's driver changes them without recording `invoiceitem.*` events) and balance transactions
 * (Stripe records no events for them), which a live sync from events cannot follow.
 */
export const comparedObjects = [
  "customer",
  "product",
  "price",
  "plan",
  "invoice",
  "subscription",
  "charge",
  "payment_intent",
  "refund",
  "dispute"
] as const

export type Delivery = "webhooks" | "shuffled" | "polling"

export interface TrialOptions {
  readonly seed: number
  /** A database URL; the trial works in its own schema (`trial_<seed>`), dropped first. */
  readonly databaseUrl: string
  /** Default: by the seed. */
  readonly delivery?: Delivery
  /** Random changes in all (default 15–50 by the seed). */
  readonly changes?: number
  /**
   * A schema to reuse (emptied first, its tables kept: much faster than migrating a new one); default
   * a new schema `trial_<seed>`, dropped afterwards.
   */
  readonly schema?: string
}

export interface TrialResult {
  readonly seed: number
  readonly delivery: Delivery
  readonly changes: number
  readonly events: number
  readonly compared: number
  readonly deleted: number
  readonly ms: number
  /** Webhook attempts that failed (and were retried by the emulator). */
  readonly failedDeliveries: number
  /** Time spent in each phase. */
  readonly phases: ReadonlyArray<string>
}

/** A small deterministic generator (mulberry32) for the trial's own choices. */
const rng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const resources = comparedObjects.map((o) => Option.getOrThrow(Catalog.byObject(o)))
const projection = StripeTables.projection({ tables: Catalog.tableSpecs(resources) })

const freePort = () =>
  Effect.async<number>((resume) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/** Every event of every account after `since` (unix seconds, exclusive), as Stripe lists them. */
const listEvents = (client: StripeClient.Service, accounts: ReadonlyArray<Backfill.Account>, since: number) =>
  Effect.gen(function* () {
    const out: Array<Record<string, unknown>> = []
    for (const account of accounts) {
      let after: string | undefined
      for (;;) {
        const page = yield* client.list(
          "/v1/events",
          { limit: 100, "created[gt]": since, ...(after ? { starting_after: after } : {}) },
          { account: account.connected ? account.id : undefined }
        )
        out.push(...page.data)
        const last = page.data[page.data.length - 1]
        if (!page.has_more || last === undefined) break
        after = String(last.id)
      }
    }
    return out
  })

/**
 * Asserts that every compared table equals the emulator's truth: the same ids (deleted ones
 * included, as tombstones), live rows field by field (embedded lists complete), and the child rows
 * of every live parent.
 */
export const compareWithTruth = (emulator: EmulatorHandle, schema: string, accounts: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    let compared = 0
    let deleted = 0
    const problems: Array<string> = []
    for (const account of accounts) {
      for (const resource of resources) {
        const truth = emulator.truth(resource.object, account)
        const rows = yield* sql<{ id: string; raw: Record<string, unknown>; deleted: boolean }>`
          SELECT id, _raw_data AS raw, deleted FROM ${sql(schema)}.${sql(resource.table)}
          WHERE _account_id = ${account}`
        const byId = new Map(rows.map((r) => [r.id, r]))
        const expectedIds = new Set(truth.map((o) => String(o.id)))
        for (const row of rows) {
          if (!expectedIds.has(row.id))
            problems.push(`${resource.table} ${row.id}: a row the truth does not have`)
        }
        for (const o of truth) {
          const id = String(o.id)
          const row = byId.get(id)
          if (row === undefined) {
            problems.push(`${resource.table} ${id}: missing${o.deleted === true ? " (deleted)" : ""}`)
            continue
          }
          compared++
          if (o.deleted === true) {
            deleted++
            if (row.deleted !== true)
              problems.push(`${resource.table} ${id}: deleted in the truth, not in the table`)
            continue
          }
          const want = json(completeLists(emulator, account, resource, o)) as Record<string, unknown>
          const got = { ...row.raw }
          for (const embedded of resource.embeddedLists ?? []) {
            if (!(embedded.field in want)) delete got[embedded.field]
          }
          if (JSON.stringify(sorted(got)) !== JSON.stringify(sorted(want))) {
            const fields = [...new Set([...Object.keys(got), ...Object.keys(want)])].filter(
              (k) => JSON.stringify(sorted(got[k])) !== JSON.stringify(sorted(want[k]))
            )
            problems.push(
              `${resource.table} ${id}: differs in ${fields.join(", ")} (version ${row.raw.created}; table ${JSON.stringify(fields.map((f) => got[f])).slice(0, 300)}, truth ${JSON.stringify(fields.map((f) => want[f])).slice(0, 300)})`
            )
          }
        }
        // child rows of live parents: exactly the items of their complete lists
        for (const embedded of resource.embeddedLists ?? []) {
          const items = new Map<string, string>()
          const live = new Set<string>()
          for (const o of truth) {
            if (o.deleted === true) continue
            live.add(String(o.id))
            const list = o[embedded.field] as
              | { data?: ReadonlyArray<{ id: string }>; has_more?: boolean }
              | undefined
            const data =
              list?.has_more === true
                ? (emulator.account(account).children.get(String(o.id)) ?? [])
                : (list?.data ?? [])
            for (const item of data) items.set(String(item.id), String(o.id))
          }
          const childRows = yield* sql<{ id: string; parent: string }>`
            SELECT id, _parent_id AS parent FROM ${sql(schema)}.${sql(embedded.table)}
            WHERE _account_id = ${account}`
          const got = new Map(childRows.filter((r) => live.has(r.parent)).map((r) => [r.id, r.parent]))
          for (const [id, parent] of items) {
            if (got.get(id) !== parent) problems.push(`${embedded.table} ${id}: missing under ${parent}`)
          }
          for (const [id, parent] of got) {
            if (!items.has(id))
              problems.push(`${embedded.table} ${id}: a row under ${parent} the truth does not have`)
          }
        }
      }
    }
    return { compared, deleted, problems }
  })

const sorted = (v: unknown): unknown => {
  if (v === null || typeof v !== "object") return v
  if (Array.isArray(v)) return v.map(sorted)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v).sort()) out[k] = sorted((v as Record<string, unknown>)[k])
  return out
}

/** Runs one trial; fails with a message naming the seed when a table differs from the truth. */
export const runTrial = (options: TrialOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const started = Date.now()
      const { seed } = options
      const random = rng(seed)
      const deliveries: ReadonlyArray<Delivery> = ["webhooks", "shuffled", "polling"]
      const delivery = options.delivery ?? deliveries[seed % 3]!
      const changes = options.changes ?? 15 + Math.floor(random() * 35)
      const connected = seed % 4 === 3 ? 1 : 0
      const emulator = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startEmulator({
            seed: `trial-${seed}`,
            scale: 0.02,
            connectedAccounts: connected,
            webhooks: {
              duplicateRate: 0.3,
              reorderWindowMs: 150,
              retry: { initialDelayMs: 20, maxDelayMs: 200, maxAttempts: 30 }
            }
          })
        ),
        (e) => Effect.promise(() => e.stop())
      )
      const schema = options.schema ?? `trial_${seed}`
      const admin = yield* SqlClient.SqlClient
      if (options.schema === undefined) {
        yield* admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        yield* Effect.addFinalizer(() =>
          Effect.ignore(admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
        )
      } else {
        // empty every table but the migration records (the checkpoint starts over at zero)
        const existing = yield* admin.unsafe<{ name: string }>(
          `SELECT tablename AS name FROM pg_tables WHERE schemaname = $1
           AND tablename NOT IN ('_migrations', '_projection_migrations')`,
          [schema]
        )
        if (existing.length > 0) {
          yield* admin.unsafe(
            `TRUNCATE ${existing.map((t) => `"${schema}"."${t.name}"`).join(", ")} RESTART IDENTITY`
          )
        }
      }
      const services = yield* Layer.build(
        Layer.mergeAll(
          StripeClient.layer({
            apiKey: Redacted.make("sk_test_trial"),
            apiBase: emulator.url,
            rateLimit: 100_000,
            endpointRateLimit: 100_000
          }),
          PgSink.layerFromUrl({ url: Redacted.make(options.databaseUrl), schema, maxConnections: 6 })
        )
      )
      return yield* Effect.gen(function* () {
        const client = yield* StripeClient.StripeClient
        const setup = Date.now() - started
        const accounts = yield* Backfill.accounts(client, connected > 0 ? "all" : "none")
        const platform = accounts[0]!.id
        yield* PgProjection.migrate(projection)
        const phases: Array<string> = []
        let mark = Date.now()
        const phase = (name: string) =>
          Effect.sync(() => {
            phases.push(`${name} ${Date.now() - mark}ms`)
            mark = Date.now()
          })
        yield* phase(`setup ${setup}ms, migrate`)
        const backfillStart = Math.floor(Date.now() / 1000)
        yield* Pipeline.runSource(
          Backfill.make({
            list: Backfill.listWith(client),
            resources,
            accounts,
            apiVersion: client.apiVersion,
            concurrency: 4
          })
        )
        yield* PgProjection.catchUp(projection)
        yield* phase("backfill")

        // live delivery
        let server: Option.Option<Fiber.RuntimeFiber<unknown, unknown>> = Option.none()
        let proxy: Option.Option<FaultProxy.FaultProxy> = Option.none()
        if (delivery === "webhooks") {
          const port = yield* freePort()
          // Stripe posts through a fault proxy: an outage during the changes makes it retry
          const faults = yield* FaultProxy.make({ target: { host: "127.0.0.1", port } })
          proxy = Option.some(faults)
          const proxied = `http://127.0.0.1:${faults.port}/webhooks`
          // the platform's own events, and (a Connect endpoint) its connected accounts' events
          const secrets: Array<Redacted.Redacted<string>> = []
          for (const connect of connected > 0 ? [false, true] : [false]) {
            const endpoint = yield* client.request("POST", "/v1/webhook_endpoints", {
              url: proxied,
              enabled_events: ["*"],
              connect
            })
            secrets.push(Redacted.make(String(endpoint.body.secret)))
          }
          server = Option.some(
            yield* Effect.forkScoped(
              serveWebhooks({
                port,
                host: "127.0.0.1",
                secrets,
                platformAccountId: platform,
                projection: false
              })
            )
          )
          yield* waitFor(
            "the webhook server",
            Effect.promise(() =>
              fetch(`http://127.0.0.1:${port}/healthz`).then(
                (r) => r.ok,
                () => false
              )
            )
          )
        }

        // random changes in a few bursts (many share a second)
        const outage = Option.isSome(proxy) && random() < 0.5
        if (outage) Option.getOrThrow(proxy).cut()
        const driver = ChangeDriver.make(emulator, { seed, accounts: "all" })
        let applied = 0
        const rounds = 1 + Math.floor(random() * 3)
        for (let round = 0; round < rounds; round++) {
          applied += driver.steps(Math.ceil(changes / rounds)).length
          if (round < rounds - 1) yield* Effect.sleep(Math.floor(random() * 600))
        }
        if (outage) {
          yield* Effect.sleep(Math.floor(random() * 500))
          Option.getOrThrow(proxy).restore()
        }
        const events = yield* listEvents(client, accounts, backfillStart - 1)
        yield* phase("changes")

        switch (delivery) {
          case "webhooks": {
            const stores = [platform, ...emulator.connectedAccountIds].map((a) => emulator.account(a))
            yield* waitFor(
              "every webhook delivered",
              Effect.sync(() =>
                stores.every((s) => s.collection("event").items.every((e) => e.pending_webhooks === 0))
              )
            )
            break
          }
          case "shuffled": {
            const copies = events.flatMap((e) => (random() < 0.3 ? [e, e] : [e]))
            for (let i = copies.length - 1; i > 0; i--) {
              const j = Math.floor(random() * (i + 1))
              ;[copies[i], copies[j]] = [copies[j]!, copies[i]!]
            }
            const log = yield* EventLog
            for (let i = 0; i < copies.length; ) {
              const n = 1 + Math.floor(random() * 10)
              const batch = copies
                .slice(i, i + n)
                .flatMap((raw) =>
                  Either.getOrThrow(
                    Either.map(
                      StripeEvent.toEnvelope(raw, { source: "webhook", platformAccountId: platform }),
                      (e) => [e]
                    )
                  )
                )
              yield* log.append({ events: batch })
              i += n
            }
            break
          }
          case "polling": {
            const poller = EventsPoller.make({
              client,
              accounts,
              lag: 0,
              overlap: 5,
              startAfter: backfillStart - 1,
              once: true
            })
            yield* Pipeline.runSource(poller)
            // a second pass finds nothing new
            yield* Pipeline.runSource(poller)
            break
          }
        }
        if (Option.isSome(server)) yield* Fiber.interrupt(server.value)
        yield* phase("delivery")

        // quiet: fold, drain revalidations once their second has passed, until nothing is left
        const queue = yield* RevalidationQueue
        yield* waitFor(
          "the revalidation queue to drain",
          Effect.gen(function* () {
            yield* PgProjection.catchUp(projection)
            const taken = yield* Revalidate.drainOnce({ client, platformAccountId: platform })
            if (taken > 0) return false
            // the projection has applied the whole log (catchUp stops at the server-wide horizon,
            // which other trials' transactions hold back)
            const [behind] = yield* admin.unsafe<{ n: number }>(
              `SELECT count(*)::int AS n FROM "${schema}"._events e, "${schema}"._checkpoints c
               WHERE c.projection = $1 AND (e.txid, e.position) > (c.txid, c.position)`,
              [projection.name]
            )
            return behind?.n === 0 && (yield* queue.size) === 0
          })
        )

        yield* phase("settle")
        const result = yield* compareWithTruth(emulator, schema, [platform, ...emulator.connectedAccountIds])
        if (result.problems.length > 0) {
          const sources = yield* admin.unsafe<{ source: string; n: number }>(
            `SELECT source, count(*)::int AS n FROM "${schema}"._events GROUP BY source ORDER BY source`
          )
          result.problems.unshift(`log: ${sources.map((r) => `${r.source} ${r.n}`).join(", ")}`)
          return yield* Effect.fail(
            new Error(
              `trial seed ${seed} (${delivery}, ${applied} changes, ${events.length} events): ${result.problems.length} differences from the truth:\n  ${result.problems.slice(0, 20).join("\n  ")}`
            )
          )
        }
        return {
          seed,
          delivery,
          changes: applied,
          events: events.length,
          compared: result.compared,
          deleted: result.deleted,
          ms: Date.now() - started,
          failedDeliveries: emulator.deliveries().filter((d) => !d.ok).length,
          phases
        } satisfies TrialResult
      }).pipe(Effect.provide(services), Effect.provide(Logger.minimumLogLevel(LogLevel.Error)))
    })
  )

/**
 * Runs trials of `seeds` on `workers` parallel workers, each in its own reused schema; stops at the
 * first failure (its message names the seed).
 */
export const runTrials = (options: {
  readonly seeds: ReadonlyArray<number>
  readonly databaseUrl: string
  readonly workers?: number
  readonly onResult?: (result: TrialResult) => Effect.Effect<void>
}) =>
  Effect.gen(function* () {
    const queue = [...options.seeds]
    const results: Array<TrialResult> = []
    const worker = (slot: number) =>
      Effect.gen(function* () {
        for (let seed = queue.shift(); seed !== undefined; seed = queue.shift()) {
          const result = yield* runTrial({
            seed,
            databaseUrl: options.databaseUrl,
            schema: `trial_slot_${slot}`
          })
          results.push(result)
          if (options.onResult) yield* options.onResult(result)
        }
      })
    yield* Effect.all(
      Array.from({ length: options.workers ?? 4 }, (_, slot) => worker(slot)),
      { concurrency: "unbounded", discard: true }
    )
    return results
  })
