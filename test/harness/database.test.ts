import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { inject } from "vitest"
import { PgTest } from "./index.js"

interface DbRow {
  readonly db: string
}

describe("PgTest.layer", () => {
  layer(PgTest.layer())((it) => {
    it.effect("gives the file its own database: create table, insert, read back", () =>
      Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        const db = yield* PgTest.TestDatabase
        const [current] = yield* sql<DbRow>`SELECT current_database() AS db`
        assert.strictEqual(current?.db, db.name)
        assert.match(db.name, /^t_database_[a-z0-9]{8}$/)

        yield* sql`CREATE TABLE harness_items (id int PRIMARY KEY, name text NOT NULL, big int8 NOT NULL)`
        yield* sql`INSERT INTO harness_items ${sql.insert([
          { id: 1, name: "one", big: "9007199254740993" },
          { id: 2, name: "two", big: "2" }
        ])}`
        const rows = yield* sql<{ readonly id: number; readonly name: string; readonly big: string }>`
          SELECT id, name, big FROM harness_items ORDER BY id`
        // int8 keeps node-postgres' default parser: a string, exact beyond 2^53.
        assert.deepStrictEqual(rows, [
          { id: 1, name: "one", big: "9007199254740993" },
          { id: 2, name: "two", big: "2" }
        ])
      })
    )
  })

  it.live("two layers give two distinct databases, each dropped on release", () =>
    Effect.gen(function* () {
      const names = yield* Effect.scoped(
        Effect.gen(function* () {
          const a = yield* Layer.build(PgTest.layer({ prefix: "pair" }))
          const b = yield* Layer.build(PgTest.layer({ prefix: "pair" }))
          const sqlA = Context.get(a, PgClient.PgClient)
          const sqlB = Context.get(b, PgClient.PgClient)
          const [rowA] = yield* sqlA<DbRow>`SELECT current_database() AS db`
          const [rowB] = yield* sqlB<DbRow>`SELECT current_database() AS db`
          assert.strictEqual(rowA?.db, Context.get(a, PgTest.TestDatabase).name)
          assert.strictEqual(rowB?.db, Context.get(b, PgTest.TestDatabase).name)
          assert.notStrictEqual(rowA?.db, rowB?.db)
          yield* sqlA`CREATE TABLE only_in_a (id int)`
          const inB = yield* sqlB<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'`
          assert.strictEqual(inB[0]?.n, 0)
          return [rowA!.db, rowB!.db]
        })
      )
      const left = yield* Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        return yield* sql<DbRow>`SELECT datname AS db FROM pg_database WHERE datname IN ${sql.in(names)}`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(inject("stripeSyncPgAdminUrl")) })))
      assert.deepStrictEqual(left, [])
    })
  )

  it.live("createTestDatabase gives a plain { name, url, drop } for non-Effect callers", () =>
    Effect.gen(function* () {
      const db = yield* Effect.promise(() => PgTest.createTestDatabase({ prefix: "plain" }))
      assert.match(db.name, /^t_plain_[a-z0-9]{8}$/)
      assert.strictEqual(new URL(db.url).pathname, `/${db.name}`)
      const [row] = yield* Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        return yield* sql<DbRow>`SELECT current_database() AS db`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(db.url) })))
      assert.strictEqual(row?.db, db.name)
      yield* Effect.promise(() => db.drop())
      const left = yield* Effect.gen(function* () {
        const sql = yield* PgClient.PgClient
        return yield* sql<DbRow>`SELECT datname AS db FROM pg_database WHERE datname = ${db.name}`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(db.adminUrl) })))
      assert.deepStrictEqual(left, [])
    })
  )
})
