/**
 * The Sigma plugin against the emulator's Sigma APIs (both generations) over HTTP, into a real
 * PostgreSQL: first sync equals the truth, a second sync applies exactly what changed, rows newer
 * than `refreshed_at` wait, a run stopped between pages resumes exactly, replay gives identical tables.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Pipeline, Source } from "@stripe-sync/core"
import { PgProjection, PgSink, Replay } from "@stripe-sync/sink-postgres"
import { StripeClient } from "@stripe-sync/source-stripe"
import { type EmulatorHandle, startEmulator } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Layer, Logger, LogLevel, Option, Redacted, Stream } from "effect"
import Stripe from "stripe"
import { PgTest } from "../../../test/harness/index.js"
import { SigmaPlugin, SigmaQuery, SigmaSchema, SigmaSource, SigmaTables } from "../src/index.js"

const EPOCH = 1_790_000_000
const LAG = 3600
const names = ["balance_transactions", "customers", "charges"]
const tables = names.map((n) => Option.getOrThrow(SigmaSchema.byName(n)))
const projection = SigmaTables.projection({ tables })

interface Setup {
  readonly emulator: EmulatorHandle
  readonly clock: { now: number }
}

const setup = (seed: string) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<Setup> => {
      const clock = { now: EPOCH * 1000 }
      const emulator = await startEmulator({
        seed,
        scale: 0.1,
        epoch: EPOCH,
        clock: () => clock.now,
        sigma: { lagSeconds: LAG }
      })
      return { emulator, clock }
    }),
    ({ emulator }) => Effect.promise(() => emulator.stop())
  )

const layers = (emulator: EmulatorHandle, url: string, schema: string) =>
  Layer.mergeAll(
    StripeClient.layer({
      apiKey: Redacted.make("sk_test_sigma"),
      apiBase: emulator.url,
      rateLimit: 1000,
      endpointRateLimit: 1000
    }),
    PgSink.layerFromUrl({ url: Redacted.make(url), schema }),
    Logger.minimumLogLevel(LogLevel.Warning)
  )

const sourceOf = (s: Setup, api: "queries" | "query_runs", pageSize = 1000, refreshInterval = 0) =>
  Effect.map(StripeClient.StripeClient, (client) =>
    SigmaSource.make({
      client,
      tables,
      accountId: s.emulator.accountId,
      pageSize,
      refreshInterval: `${refreshInterval} seconds`,
      now: () => Math.floor(s.clock.now / 1000),
      query: {
        api,
        apiKey: Redacted.make("sk_test_sigma"),
        filesBase: s.emulator.url,
        pollInterval: "20 millis"
      }
    })
  )

const sync = (s: Setup, api: "queries" | "query_runs" = "queries") =>
  Effect.gen(function* () {
    yield* Pipeline.runSource(yield* sourceOf(s, api))
    yield* PgProjection.catchUp(projection, { target: "sigma" })
  })

/** Every synced table equals the emulator's objects visible at `refreshedAt`, column by column. */
const assertEqualsTruth = (s: Setup, sigmaSchema = "sigma") =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const refreshedAt = Math.floor(s.clock.now / 1000) - LAG
    const visible = (type: string) =>
      s.emulator
        .truth(type)
        .filter((o) => o.created! <= refreshedAt)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
    const bt = yield* sql<{ id: string; amount: string; fee: string; created: Date; type: string }>`
      SELECT id, amount, fee, created, type FROM ${sql(sigmaSchema)}.balance_transactions ORDER BY id COLLATE "C"`
    assert.deepStrictEqual(
      bt.map((r) => ({
        ...r,
        amount: Number(r.amount),
        fee: Number(r.fee),
        created: r.created.getTime() / 1000
      })),
      visible("balance_transaction").map((t) => ({
        id: t.id,
        amount: t.amount,
        fee: t.fee,
        created: t.created,
        type: t.type
      }))
    )
    const customers = yield* sql<{ id: string; email: string | null; created: Date }>`
      SELECT id, email, created FROM ${sql(sigmaSchema)}.customers ORDER BY id COLLATE "C"`
    assert.deepStrictEqual(
      customers.map((r) => ({ ...r, created: r.created.getTime() / 1000 })),
      visible("customer").map((c) => ({
        id: c.id,
        email: (c.email as string | null) ?? null,
        created: c.created
      }))
    )
    const charges = yield* sql<{ id: string; customer_id: string | null; captured: boolean }>`
      SELECT id, customer_id, captured FROM ${sql(sigmaSchema)}.charges ORDER BY id COLLATE "C"`
    assert.deepStrictEqual(
      charges,
      visible("charge").map((c) => ({
        id: c.id,
        customer_id: (c.customer as string | null) ?? null,
        captured: c.captured as boolean
      }))
    )
    return bt.length + customers.length + charges.length
  })

const logged = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ n: string }>`SELECT count(*) AS n FROM stripe._events WHERE source = 'sigma'`
  return Number(rows[0]!.n)
})

describe("plugin-sigma", () => {
  layer(PgTest.layer(), { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      "first sync equals the truth; a second applies exactly the changes; later rows wait for refreshed_at",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const s = yield* setup("sigma-sync")
          const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
            effect.pipe(Effect.provide(layers(s.emulator, db.url, "stripe")))
          yield* run(sync(s))
          const first = yield* run(assertEqualsTruth(s))
          assert.isAbove(first, 100)
          const sql = yield* SqlClient.SqlClient
          const perType =
            yield* sql`SELECT object_type, count(*) AS n, count(DISTINCT object_id) AS d FROM stripe._events GROUP BY 1`
          assert.strictEqual(yield* run(logged), first, JSON.stringify(perType))

          // a change to an old customer, and a new one (created now: not in Sigma for an hour)
          const stripe = new Stripe("sk_test_sigma", {
            host: s.emulator.host,
            port: s.emulator.port,
            protocol: "http"
          })
          const old = s.emulator.truth("customer").find((c) => c.deleted !== true)!
          yield* Effect.promise(() => stripe.customers.update(old.id, { email: "changed@example.com" }))
          const created = yield* Effect.promise(() => stripe.customers.create({ email: "new@example.com" }))
          yield* run(sync(s))
          assert.strictEqual(yield* run(assertEqualsTruth(s)), first)
          // the edit is visible at once (Sigma holds the object's current state), the new row is not yet
          assert.strictEqual(yield* run(logged), first + 1)
          assert.deepStrictEqual(yield* sql`SELECT id FROM sigma.customers WHERE id = ${created.id}`, [])

          s.clock.now += (LAG + 1) * 1000
          yield* run(sync(s))
          // every row visible now (the new customer, and whatever else was created in the last hour) once,
          // plus the one change
          const third = yield* run(assertEqualsTruth(s))
          assert.isAbove(third, first)
          assert.strictEqual(yield* run(logged), third + 1)
          assert.deepStrictEqual(yield* sql`SELECT email FROM sigma.customers WHERE id = ${created.id}`, [
            { email: "new@example.com" }
          ])

          // replay rebuilds identical tables
          const contents = Effect.forEach(names, (name) =>
            Effect.map(sql`SELECT * FROM sigma.${sql(name)} ORDER BY id COLLATE "C"`, (rows) =>
              rows.map(({ _last_synced_at, ...r }) => r)
            )
          )
          const before = yield* contents
          yield* run(Replay.rebuild(projection, { target: "sigma" }))
          const after = yield* contents
          assert.strictEqual(after.flat().length, third)
          assert.deepStrictEqual(after, before)
          yield* run(assertEqualsTruth(s))
        })
    )

    it.scoped("the older query runs API (CSV files) gives the same tables", () =>
      Effect.gen(function* () {
        const db = yield* PgTest.TestDatabase
        const s = yield* setup("sigma-v1")
        const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          effect.pipe(Effect.provide(layers(s.emulator, db.url, "v1log")))
        // CSV edge cases: quotes, commas and newlines in a field, an empty value
        const stripe = new Stripe("sk_test_sigma", {
          host: s.emulator.host,
          port: s.emulator.port,
          protocol: "http"
        })
        const [a, b] = s.emulator.truth("customer").filter((c) => c.deleted !== true)
        const tricky = 'Plan "Pro", yearly\nsecond line, with ""quotes"" and a trailing comma,'
        yield* Effect.promise(() => stripe.customers.update(a!.id, { description: tricky }))
        yield* Effect.promise(() => stripe.customers.update(b!.id, { description: "" }))
        yield* run(
          Effect.gen(function* () {
            yield* Pipeline.runSource(yield* sourceOf(s, "query_runs"))
            yield* PgProjection.catchUp(projection, { target: "sigma_v1" })
          })
        )
        assert.isAbove(yield* run(assertEqualsTruth(s, "sigma_v1")), 100)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ id: string; description: string | null }>`
          SELECT id, description FROM sigma_v1.customers WHERE id IN (${a!.id}, ${b!.id})`
        assert.deepStrictEqual(Object.fromEntries(rows.map((r) => [r.id, r.description])), {
          [a!.id]: tricky,
          [b!.id]: null
        })
      })
    )

    it.scoped("a run stopped between pages resumes without loss or duplicates", () =>
      Effect.gen(function* () {
        const db = yield* PgTest.TestDatabase
        const s = yield* setup("sigma-kill")
        const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          effect.pipe(Effect.provide(layers(s.emulator, db.url, "killed")))
        // pages of 7 rows; the first run stops after 4 pages (its cursors are committed with them)
        yield* run(
          Effect.flatMap(sourceOf(s, "queries", 7), (source) =>
            Pipeline.runSource(
              Source.makeRaw<SigmaQuery.SigmaError, never>({
                name: source.name,
                read: source.read.pipe(Stream.take(4))
              })
            )
          )
        )
        yield* run(Effect.flatMap(sourceOf(s, "queries", 7), (source) => Pipeline.runSource(source)))
        yield* run(PgProjection.catchUp(projection, { target: "sigma_killed" }))
        const rows = yield* run(assertEqualsTruth(s, "sigma_killed"))
        const sql = yield* SqlClient.SqlClient
        const [count] = yield* sql<{ n: string; distinct: string }>`
          SELECT count(*) AS n, count(DISTINCT (object_type, object_id)) AS distinct FROM killed._events`
        assert.strictEqual(Number(count!.n), rows)
        assert.strictEqual(Number(count!.distinct), rows)
      })
    )

    it.scoped("tables whose rows change are read again only once their refresh interval has passed", () =>
      Effect.gen(function* () {
        const db = yield* PgTest.TestDatabase
        const s = yield* setup("sigma-interval")
        const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          effect.pipe(Effect.provide(layers(s.emulator, db.url, "interval")))
        const syncHourly = run(
          Effect.flatMap(sourceOf(s, "queries", 1000, 3600), (source) => Pipeline.runSource(source))
        )
        const changes = run(
          Effect.map(
            Effect.flatMap(
              SqlClient.SqlClient,
              (sql) => sql<{ n: string }>`
              SELECT count(*) AS n FROM interval._events WHERE object_type = 'sigma.customers'`
            ),
            (rows) => Number(rows[0]!.n)
          )
        )
        yield* syncHourly
        const first = yield* changes
        const stripe = new Stripe("sk_test_sigma", {
          host: s.emulator.host,
          port: s.emulator.port,
          protocol: "http"
        })
        const old = s.emulator.truth("customer").find((c) => c.deleted !== true)!
        yield* Effect.promise(() => stripe.customers.update(old.id, { email: "hourly@example.com" }))
        s.clock.now += 60_000
        yield* syncHourly
        assert.strictEqual(yield* changes, first)
        s.clock.now += 3600_000
        yield* syncHourly
        // the change, and every customer created in the hour the clock moved that Sigma now shows
        const visible = s.emulator.sigmaTruth("customers").length
        assert.strictEqual(yield* changes, visible + 1)
      })
    )

    it.scoped("Sigma not enabled: one typed error that says so", () =>
      Effect.gen(function* () {
        const emulator = yield* Effect.acquireRelease(
          Effect.promise(() => startEmulator({ seed: "sigma-off", scale: 0.01, sigma: { enabled: false } })),
          (e) => Effect.promise(() => e.stop())
        )
        const client = yield* StripeClient.StripeClient.pipe(
          Effect.provide(StripeClient.layer({ apiKey: Redacted.make("sk_test_off"), apiBase: emulator.url }))
        )
        const failure = yield* Effect.flip(SigmaQuery.run(client, "SELECT 1"))
        assert.strictEqual(failure._tag, "SigmaNotEnabled")
        assert.match(failure.message, /Sigma is not/)
        // the plugin: a warning and an outcome that says so, not a failure of the sync
        const db = yield* PgTest.TestDatabase
        const outcome = yield* SigmaPlugin.sync({ tables: ["customers"] }).pipe(
          Effect.provide(
            Layer.mergeAll(
              StripeClient.layer({ apiKey: Redacted.make("sk_test_off"), apiBase: emulator.url }),
              PgSink.layerFromUrl({ url: Redacted.make(db.url), schema: "off" }),
              Logger.minimumLogLevel(LogLevel.Error)
            )
          )
        )
        assert.deepStrictEqual(outcome, { enabled: false, tables: 1, applied: 0 })
      })
    )
  })
})
