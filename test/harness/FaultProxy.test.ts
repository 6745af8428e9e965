import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Redacted, Schedule } from "effect"
import { FaultProxy, PgTest } from "./index.js"

interface ValueRow {
  readonly n: number
}

/** A pool of one connection to the test database, through the proxy, for the current scope. */
const proxiedClient = (proxy: FaultProxy.FaultProxy, applicationName: string) =>
  Effect.gen(function* () {
    const db = yield* PgTest.TestDatabase
    const context = yield* Layer.build(
      PgClient.layer({
        url: Redacted.make(proxy.rewriteUrl(db.url)),
        maxConnections: 1,
        connectTimeout: "5 seconds",
        applicationName
      })
    )
    return Context.get(context, PgClient.PgClient)
  })

const proxyForTestDatabase = Effect.gen(function* () {
  const db = yield* PgTest.TestDatabase
  return yield* FaultProxy.make({ target: FaultProxy.targetOf(db.url) })
})

/** Re-runs `check` (which fails while its condition does not hold) until it succeeds, for up to ~10 s. */
const eventually = <A, E, R>(check: Effect.Effect<A, E, R>) =>
  Effect.retry(check, { schedule: Schedule.spaced("20 millis"), times: 500 })

const selectN = (sql: PgClient.PgClient, n: number) =>
  Effect.map(sql<ValueRow>`SELECT ${n}::int AS n`, (rows) => rows[0]?.n)

describe("FaultProxy", () => {
  layer(PgTest.layer(), { excludeTestServices: true })((it) => {
    it.scoped("passes traffic both ways", () =>
      Effect.gen(function* () {
        const db = yield* PgTest.TestDatabase
        const proxy = yield* proxyForTestDatabase
        const sql = yield* proxiedClient(proxy, "proxy-pass")
        const [row] = yield* sql<{ readonly db: string }>`SELECT current_database() AS db`
        assert.strictEqual(row?.db, db.name)
        // A multi-row result larger than one TCP segment comes back intact.
        const rows = yield* sql<{
          readonly s: string
        }>`SELECT repeat('x', 1000) || g AS s FROM generate_series(1, 500) g`
        assert.strictEqual(rows.length, 500)
        assert.strictEqual(rows[499]?.s, `${"x".repeat(1000)}500`)
        assert.strictEqual(proxy.stats().open, 1)
        assert.strictEqual(proxy.stats().refused, 0)
      })
    )

    it.scoped("cut() fails queries with a connection error; restore() lets a new connection work", () =>
      Effect.gen(function* () {
        const direct = yield* PgClient.PgClient
        const proxy = yield* proxyForTestDatabase
        const before = yield* proxiedClient(proxy, "proxy-cut")
        assert.strictEqual(yield* selectN(before, 1), 1)

        proxy.cut()
        const failed = yield* Effect.flip(selectN(before, 2))
        assert.strictEqual(failed._tag, "SqlError")
        const notConnected = yield* Effect.flip(Effect.scoped(proxiedClient(proxy, "proxy-cut-new")))
        assert.strictEqual(notConnected._tag, "SqlError")
        assert.isAbove(proxy.stats().refused, 0)
        assert.strictEqual(proxy.stats().open, 0)
        // The shared server itself never went down.
        assert.strictEqual(yield* selectN(direct, 3), 3)

        proxy.restore()
        const after = yield* proxiedClient(proxy, "proxy-restored")
        assert.strictEqual(yield* selectN(after, 4), 4)
      })
    )

    it.scoped("delay() holds traffic until it is forwarded", () =>
      Effect.gen(function* () {
        const proxy = yield* proxyForTestDatabase
        const sql = yield* proxiedClient(proxy, "proxy-delay")
        assert.strictEqual(yield* selectN(sql, 1), 1)

        proxy.delay(600_000)
        const query = yield* Effect.fork(selectN(sql, 2))
        yield* eventually(Effect.filterOrFail(Effect.sync(proxy.stats), (s) => s.held > 0))
        // The query cannot finish while its bytes are held by the proxy.
        assert.isTrue(Option.isNone(yield* Fiber.poll(query)))
        proxy.delay(0)
        assert.strictEqual(yield* Fiber.join(query), 2)

        // A small delay still lets every query through, in order.
        proxy.delay(5)
        const results = yield* Effect.forEach([10, 11, 12], (n) => selectN(sql, n))
        assert.deepStrictEqual(results, [10, 11, 12])
        proxy.delay(0)
      })
    )

    it.scoped("reset() kills an in-flight connection; new connections still work", () =>
      Effect.gen(function* () {
        const direct = yield* PgClient.PgClient
        const proxy = yield* proxyForTestDatabase
        const sql = yield* proxiedClient(proxy, "proxy-reset")
        const query = yield* Effect.fork(sql`SELECT pg_sleep(60)`)
        const [backend] = yield* eventually(
          Effect.filterOrFail(
            direct<{ readonly pid: number }>`
              SELECT pid FROM pg_stat_activity
              WHERE application_name = 'proxy-reset' AND state = 'active' AND query LIKE '%pg_sleep%'`,
            (rows) => rows.length === 1
          )
        )

        proxy.reset()
        const failed = yield* Effect.flip(Fiber.join(query))
        assert.strictEqual(failed._tag, "SqlError")
        // The server notices a lost client only at its next write: end the sleeping backend so it does not
        // hold the xmin horizon back for other test files.
        yield* direct`SELECT pg_terminate_backend(${backend!.pid})`

        assert.strictEqual(yield* selectN(sql, 5), 5)
      })
    )
  })
})
