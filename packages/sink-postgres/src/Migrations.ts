/**
 * Migrations of the sync schema and of projections. Each run is one transaction that first takes a
 * transaction-level advisory lock derived from the schema, so concurrent starts serialise (the
 * second finds nothing to do) and two schemas in one database migrate independently. The record of
 * applied migrations lives inside the sync schema (`<schema>._migrations`,
 * `<schema>._projection_migrations`).
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Projection } from "@stripe-sync/core/Projection"
import { Effect } from "effect"
import { quote, type Tables, tables } from "./internal/names.js"
import { ProjectionTarget } from "./ProjectionTarget.js"
import { MigrationError } from "./SinkPostgresError.js"
import * as SyncRuns from "./SyncRuns.js"

interface SyncMigration {
  readonly id: number
  readonly name: string
  readonly run: (t: Tables, sql: SqlClient.SqlClient) => Effect.Effect<void, SqlError>
}

/**
 * The sink's own migrations, in order.
 *
 * @since 0.1.0
 * @category models
 */
export const syncMigrations: ReadonlyArray<SyncMigration> = [
  {
    id: 1,
    name: "event_log",
    run: (t, sql) =>
      Effect.all(
        [
          sql.unsafe(`CREATE TABLE ${t.events} (
            position bigint GENERATED ALWAYS AS IDENTITY,
            txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            event_id text NOT NULL,
            type text NOT NULL,
            source text NOT NULL,
            account_id text NOT NULL,
            object_type text NOT NULL,
            object_id text NOT NULL,
            version_ts bigint NOT NULL,
            api_version text,
            data jsonb NOT NULL,
            data_hash text NOT NULL,
            received_at timestamptz NOT NULL,
            CONSTRAINT _events_account_event UNIQUE (account_id, event_id)
          )`),
          sql.unsafe(`CREATE INDEX _events_log_order ON ${t.events} (txid, position)`),
          sql.unsafe(
            `CREATE INDEX _events_object ON ${t.events} (account_id, object_type, object_id, position)`
          ),
          // The page read of the log. A function so that its plan is always the ordered index scan that
          // stops after a page (a never-analysed table otherwise gets a bitmap scan of the whole range).
          sql.unsafe(`CREATE FUNCTION ${t.readPage}(
              after_txid xid8, after_position bigint, horizon xid8, page_size integer, exact text[], prefixes text[]
            )
            RETURNS TABLE (
              txid xid8, "position" bigint, event_id text, type text, source text, account_id text, object_type text,
              object_id text, version_ts bigint, api_version text, data jsonb, received_at timestamptz
            )
            LANGUAGE sql STABLE
            SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
            AS $$
              SELECT e.txid, e.position, e.event_id, e.type, e.source, e.account_id, e.object_type, e.object_id,
                e.version_ts, e.api_version, e.data, e.received_at
              FROM ${t.events} e
              WHERE (e.txid, e.position) > (after_txid, after_position) AND e.txid < horizon
                AND (exact IS NULL OR e.type = ANY (exact) OR e.type LIKE ANY (prefixes))
              ORDER BY e.txid, e.position
              LIMIT page_size
            $$`),
          sql.unsafe(`CREATE TABLE ${t.cursors} (
            source text NOT NULL,
            key text NOT NULL,
            value jsonb NOT NULL,
            leased_by text,
            lease_until timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, key)
          )`),
          sql.unsafe(`CREATE TABLE ${t.checkpoints} (
            projection text PRIMARY KEY,
            txid xid8 NOT NULL DEFAULT '0',
            position bigint NOT NULL DEFAULT 0,
            version integer NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
          )`),
          sql.unsafe(`CREATE TABLE ${t.revalidate} (
            account_id text NOT NULL,
            object_type text NOT NULL,
            object_id text NOT NULL,
            not_before bigint NOT NULL,
            reason text NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            requested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, object_type, object_id)
          )`),
          sql.unsafe(`CREATE INDEX _revalidate_due ON ${t.revalidate} (not_before, seq)`),
          sql.unsafe(`CREATE TABLE ${t.projectionMigrations} (
            target_schema text NOT NULL,
            projection text NOT NULL,
            id integer NOT NULL,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (target_schema, projection, id)
          )`)
        ],
        { discard: true }
      )
  },
  {
    id: 2,
    name: "sync_runs",
    run: (t, sql) =>
      Effect.forEach(SyncRuns.ddl(t.schema), (statement) => sql.unsafe(statement), { discard: true })
  },
  {
    id: 3,
    name: "managed_webhooks",
    run: (t, sql) =>
      // the webhook endpoints this tool created in Stripe, with their signing secrets
      sql.unsafe(`CREATE TABLE ${quote(t.schema)}."_managed_webhooks" (
        id text PRIMARY KEY,
        account_id text NOT NULL,
        url text NOT NULL,
        secret text NOT NULL,
        enabled_events jsonb NOT NULL,
        connect boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT _managed_webhooks_account_url UNIQUE (account_id, url, connect)
      )`)
  },
  {
    id: 4,
    name: "events_object_index",
    // The latest-state probe of the same-state snapshot skip finds an object's events by id, newest
    // first, and checks account and type on the row it reads anyway: an index on (object_id,
    // position) serves it, and costs appends about half of the four-column one it replaces.
    run: (t, sql) =>
      Effect.all(
        [
          sql.unsafe(`CREATE INDEX _events_object_id ON ${t.events} (object_id, position)`),
          sql.unsafe(`DROP INDEX ${quote(t.schema)}."_events_object"`)
        ],
        { discard: true }
      )
  }
]

const migrationLockKey = (schema: string) => `stripe-sync:migrate:${schema}`

const lockSchema = (sql: SqlClient.SqlClient, schema: string) =>
  sql`SELECT pg_advisory_xact_lock(hashtextextended(${migrationLockKey(schema)}, 0))`

/**
 * Creates the sync schema if needed and applies the sink's pending migrations. Returns the names
 * of the migrations it applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = Effect.fn("Migrations.run")(function* (schema: string) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(schema)
  const fail = (migration: string) => (cause: unknown) =>
    new MigrationError({
      schema,
      owner: "sync",
      migration,
      message: `migration ${migration} of schema "${schema}" failed: ${String((cause as { message?: unknown })?.message ?? cause)}`,
      cause
    })
  return yield* sql
    .withTransaction(
      Effect.gen(function* () {
        yield* lockSchema(sql, schema)
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`)
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${t.migrations} (
          id integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`)
        const done = new Set(
          (yield* sql.unsafe<{ id: number }>(`SELECT id FROM ${t.migrations}`)).map((r) => Number(r.id))
        )
        const applied: Array<string> = []
        for (const m of syncMigrations) {
          if (done.has(m.id)) continue
          const name = `${String(m.id).padStart(4, "0")}_${m.name}`
          yield* m.run(t, sql).pipe(Effect.mapError(fail(name)))
          yield* sql.unsafe(`INSERT INTO ${t.migrations} (id, name) VALUES ($1, $2)`, [m.id, m.name])
          applied.push(name)
        }
        return applied
      })
    )
    .pipe(Effect.mapError((e) => (e._tag === "MigrationError" ? e : fail("(runner)")(e))))
})

/**
 * Applies a projection's pending migrations to its target schema (created if needed), recording
 * them in `<sync schema>._projection_migrations` per target schema and projection. The migrations
 * run with `ProjectionTarget` set to `target`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const runProjection = Effect.fn("Migrations.runProjection")(function* <R>(
  projection: Projection<R>,
  options: { readonly schema: string; readonly target: string }
) {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(options.schema)
  const fail = (migration: string) => (cause: unknown) =>
    new MigrationError({
      schema: options.target,
      owner: projection.name,
      migration,
      message: `migration ${migration} of projection ${projection.name} (schema "${options.target}") failed: ${String((cause as { message?: unknown })?.message ?? cause)}`,
      cause
    })
  return yield* sql
    .withTransaction(
      Effect.gen(function* () {
        yield* lockSchema(sql, options.target)
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quote(options.target)}`)
        const done = new Set(
          (yield* sql.unsafe<{ id: number }>(
            `SELECT id FROM ${t.projectionMigrations} WHERE target_schema = $1 AND projection = $2`,
            [options.target, projection.name]
          )).map((r) => Number(r.id))
        )
        const applied: Array<string> = []
        for (const m of [...projection.migrations].sort((a, b) => a.id - b.id)) {
          if (done.has(m.id)) continue
          const name = `${String(m.id).padStart(4, "0")}_${m.name}`
          yield* m.run.pipe(Effect.mapError(fail(name)))
          yield* sql.unsafe(
            `INSERT INTO ${t.projectionMigrations} (target_schema, projection, id, name) VALUES ($1, $2, $3, $4)`,
            [options.target, projection.name, m.id, m.name]
          )
          applied.push(name)
        }
        return applied
      })
    )
    .pipe(
      Effect.mapError((e) =>
        typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "MigrationError"
          ? (e as MigrationError)
          : fail("(runner)")(e)
      ),
      Effect.provideService(ProjectionTarget, { schema: options.target })
    )
})
