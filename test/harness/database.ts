/**
 * One database per test file on the shared test server of `globalSetup.ts`.
 *
 * `PgTest.layer()` CREATEs a uniquely named database (test file name + random suffix), provides a
 * `PgClient`/`SqlClient` connected to it plus `TestDatabase` (its name and URL), and DROPs it
 * `WITH (FORCE)` on release. `createTestDatabase()` is the same for code outside Effect (for example a
 * test spawning the CLI as a child process against the database).
 *
 * Types: the client keeps node-postgres' default parsers, so `int8`/`bigint` and `numeric` come back as
 * strings (exact, never rounded). Pass `client: { types }` to change that.
 */

import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { PgPool } from "@stripe-sync/sink-postgres"
import { Context, Effect, Layer, Redacted } from "effect"
import { expect, inject } from "vitest"

/** The database a test file runs against. */
export interface TestDatabaseInfo {
  readonly name: string
  /** Connection URL of this database (credentials included; tests only). */
  readonly url: string
  /** Admin URL of the shared server (the `postgres` database), for cluster-level queries. */
  readonly adminUrl: string
}

/** Tag of the per-file test database, provided by `layer()` next to the `PgClient`. */
export class TestDatabase extends Context.Tag("@stripe-sync/e2e/TestDatabase")<
  TestDatabase,
  TestDatabaseInfo
>() {}

export interface TestDatabaseOptions {
  /** Name prefix; defaults to the running test file's name. */
  readonly prefix?: string
  /** Admin URL; defaults to the one provided by the vitest global setup. */
  readonly adminUrl?: string
}

export interface LayerOptions extends TestDatabaseOptions {
  /** Extra `PgClient` options (pool size, `types`, `applicationName`, transforms). */
  readonly client?: Omit<PgClient.PgClientConfig, "url">
}

/** The admin URL of the shared test server, as provided by `globalSetup.ts`. */
export const adminUrl = (): string => inject("stripeSyncPgAdminUrl")

const slug = (value: string): string =>
  value
    .toLowerCase()
    .replace(/\.test\.[cm]?[jt]sx?$/, "")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")

const currentTestFile = (): string | undefined => {
  const path = expect.getState().testPath
  return path === undefined ? undefined : path.split(/[\\/]/).pop()
}

/** A fresh database name: `t_<file slug>_<random>`, within Postgres' 63-byte identifier limit. */
export const freshName = (prefix?: string): string => {
  const base = slug(prefix ?? currentTestFile() ?? "db").slice(0, 40) || "db"
  const suffix = Math.random().toString(36).slice(2, 10).padEnd(8, "0")
  return `t_${base}_${suffix}`
}

/** `url` with its database replaced by `database`. */
export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${encodeURIComponent(database)}`
  return parsed.toString()
}

const adminLayer = (url: string) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: 1, applicationName: "stripe-sync-test-admin" })

/** Runs `CREATE DATABASE` and returns the database's info (no cleanup; see `acquire`). */
export const create = (options: TestDatabaseOptions = {}): Effect.Effect<TestDatabaseInfo, SqlError> =>
  Effect.gen(function* () {
    const admin = options.adminUrl ?? adminUrl()
    const name = freshName(options.prefix)
    const sql = yield* PgClient.PgClient
    yield* sql`CREATE DATABASE ${sql(name)}`
    return { name, url: withDatabase(admin, name), adminUrl: admin }
  }).pipe(Effect.provide(adminLayer(options.adminUrl ?? adminUrl())), Effect.withSpan("PgTest.create"))

/** Runs `DROP DATABASE … WITH (FORCE)`, terminating any session still connected to it. */
export const drop = (database: TestDatabaseInfo): Effect.Effect<void, SqlError> =>
  Effect.gen(function* () {
    const sql = yield* PgClient.PgClient
    yield* sql`DROP DATABASE IF EXISTS ${sql(database.name)} WITH (FORCE)`
  }).pipe(Effect.provide(adminLayer(database.adminUrl)), Effect.withSpan("PgTest.drop"))

/** A scoped test database: created now, dropped when the scope closes. */
export const acquire = (options: TestDatabaseOptions = {}) =>
  Effect.acquireRelease(create(options), (database) => Effect.orDie(drop(database)))

/**
 * A per-file test database with a `PgClient` on it. Use it once per `describe` with `@effect/vitest`'s
 * `layer(PgTest.layer())`; each call builds a distinct database and pool.
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<PgClient.PgClient | SqlClient | TestDatabase, SqlError> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const database = yield* acquire(options)
      // The pool is built inside the same scope, so it closes before the database is dropped. The
      // sink's own pool (its hot statements prepared) unless options only PgClient has are asked for.
      const client = options.client ?? {}
      const plain = Object.keys(client).every((k) => k === "maxConnections" || k === "applicationName")
      const url = Redacted.make(database.url)
      return Layer.merge(
        plain
          ? PgPool.layer({
              url,
              maxConnections: client.maxConnections,
              applicationName: client.applicationName ?? "stripe-sync-test"
            })
          : PgClient.layer({ applicationName: "stripe-sync-test", ...client, url }),
        Layer.succeed(TestDatabase, database)
      )
    })
  )

/** A test database for code outside Effect: `{ name, url, drop() }`; call `drop()` in `afterAll`. */
export const createTestDatabase = async (
  options: TestDatabaseOptions = {}
): Promise<TestDatabaseInfo & { readonly drop: () => Promise<void> }> => {
  const database = await Effect.runPromise(create(options))
  return { ...database, drop: () => Effect.runPromise(drop(database)) }
}
