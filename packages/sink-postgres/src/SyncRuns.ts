/**
 * Runs you can watch: `<schema>._sync_runs` (one row per account and run) and
 * `<schema>._sync_run_objects` (one row per resource of a run), with a `<schema>.sync_runs` view
 * holding the columns users of today's engines query: `account_id, started_at, closed_at, status,
 * total_processed, complete_count, error_count, running_count, pending_count`.
 *
 * A run is `complete` only when every resource completed (or was skipped because the account cannot
 * list it); a run with a failed resource is `failed`, never complete.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { quote } from "./internal/names.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

/**
 * @since 0.1.0
 * @category models
 */
export type RunStatus = "running" | "complete" | "failed" | "interrupted"

/**
 * @since 0.1.0
 * @category models
 */
export type ObjectStatus = "pending" | "running" | "complete" | "skipped" | "error"

/**
 * The DDL of the run tables and the view (a sync-schema migration).
 *
 * @since 0.1.0
 * @category sql
 */
export const ddl = (schema: string): ReadonlyArray<string> => {
  const s = quote(schema)
  return [
    `CREATE TABLE ${s}."_sync_runs" (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      account_id text NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now(),
      closed_at timestamptz,
      status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed', 'interrupted')),
      triggered_by text NOT NULL DEFAULT 'cli',
      error_message text
    )`,
    `CREATE INDEX "_sync_runs_account" ON ${s}."_sync_runs" (account_id, started_at DESC)`,
    `CREATE TABLE ${s}."_sync_run_objects" (
      run_id bigint NOT NULL REFERENCES ${s}."_sync_runs" (id) ON DELETE CASCADE,
      object text NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'complete', 'skipped', 'error')),
      processed bigint NOT NULL DEFAULT 0,
      started_at timestamptz,
      finished_at timestamptz,
      error_message text,
      PRIMARY KEY (run_id, object)
    )`,
    `CREATE VIEW ${s}."sync_runs" AS
      SELECT r.id, r.account_id, r.started_at, r.closed_at, r.status, r.triggered_by, r.error_message,
        COALESCE(sum(o.processed), 0)::bigint AS total_processed,
        count(o.object) FILTER (WHERE o.status IN ('complete', 'skipped'))::int AS complete_count,
        count(o.object) FILTER (WHERE o.status = 'error')::int AS error_count,
        count(o.object) FILTER (WHERE o.status = 'running')::int AS running_count,
        count(o.object) FILTER (WHERE o.status = 'pending')::int AS pending_count
      FROM ${s}."_sync_runs" r LEFT JOIN ${s}."_sync_run_objects" o ON o.run_id = r.id
      GROUP BY r.id`
  ]
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunSummary {
  readonly id: number
  readonly accountId: string
  readonly startedAt: Date
  readonly closedAt: Date | null
  readonly status: RunStatus
  readonly totalProcessed: number
  readonly completeCount: number
  readonly errorCount: number
  readonly runningCount: number
  readonly pendingCount: number
  readonly errorMessage: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ObjectProgress {
  readonly runId: number
  readonly object: string
  readonly status: ObjectStatus
  readonly processed: number
  readonly errorMessage: string | null
}

const withSchema = <A>(f: (sql: SqlClient.SqlClient, s: string) => Effect.Effect<A, SqlError>) =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const { schema } = yield* PgSinkConfig
    return yield* f(sql, quote(schema))
  })

/**
 * Opens a run for an account, with every resource pending. Returns its id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: {
  readonly accountId: string
  readonly objects: ReadonlyArray<string>
  readonly triggeredBy?: string
}) =>
  withSchema((sql, s) =>
    sql
      .unsafe<{ id: string }>(
        `WITH run AS (
           INSERT INTO ${s}."_sync_runs" (account_id, triggered_by) VALUES ($1, $2) RETURNING id
         ), objects AS (
           INSERT INTO ${s}."_sync_run_objects" (run_id, object) SELECT run.id, o FROM run, unnest($3::text[]) AS o
         )
         SELECT id::text FROM run`,
        [options.accountId, options.triggeredBy ?? "cli", [...new Set(options.objects)]]
      )
      .pipe(Effect.map((rows) => Number(rows[0]!.id)))
  )

/**
 * Adds to the objects processed of several resources of a run, and marks them running (one
 * statement for all of them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const progress = (runId: number, counts: ReadonlyMap<string, number>) =>
  counts.size === 0
    ? Effect.void
    : withSchema((sql, s) =>
        sql.unsafe(
          `UPDATE ${s}."_sync_run_objects" o SET processed = o.processed + c.n,
             status = CASE WHEN o.status = 'pending' THEN 'running' ELSE o.status END,
             started_at = COALESCE(o.started_at, now())
           FROM unnest($2::text[], $3::int8[]) AS c(object, n)
           WHERE o.run_id = $1 AND o.object = c.object`,
          [runId, [...counts.keys()], [...counts.values()]]
        )
      ).pipe(Effect.asVoid)

/**
 * Sets one resource's status (complete, skipped, error, running).
 *
 * @since 0.1.0
 * @category constructors
 */
export const setObjectStatus = (runId: number, object: string, status: ObjectStatus, errorMessage?: string) =>
  withSchema((sql, s) =>
    sql.unsafe(
      `UPDATE ${s}."_sync_run_objects" SET status = $3, error_message = $4,
         started_at = COALESCE(started_at, now()),
         finished_at = CASE WHEN $3 IN ('complete', 'skipped', 'error') THEN now() ELSE NULL END
       WHERE run_id = $1 AND object = $2`,
      [runId, object, status, errorMessage ?? null]
    )
  ).pipe(Effect.asVoid)

/**
 * Closes a run: `complete` only if no resource is left pending, running or in error; otherwise the
 * given status (`failed` or `interrupted`) with the message.
 *
 * @since 0.1.0
 * @category constructors
 */
export const finish = (runId: number, requested: RunStatus, errorMessage?: string) =>
  withSchema((sql, s) =>
    sql
      .unsafe<{ status: RunStatus }>(
        `UPDATE ${s}."_sync_runs" r SET closed_at = now(), error_message = $3,
           status = CASE
             WHEN $2 = 'complete' AND EXISTS (
               SELECT 1 FROM ${s}."_sync_run_objects" o WHERE o.run_id = r.id AND o.status NOT IN ('complete', 'skipped')
             ) THEN 'failed'
             ELSE $2 END
         WHERE r.id = $1 RETURNING r.status`,
        [runId, requested, errorMessage ?? null]
      )
      .pipe(Effect.map((rows) => rows[0]?.status ?? requested))
  )

/**
 * The latest runs, newest first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const latest = (limit = 10) =>
  withSchema((sql, s) =>
    sql
      .unsafe<{
        id: string
        account_id: string
        started_at: Date
        closed_at: Date | null
        status: RunStatus
        total_processed: string
        complete_count: number
        error_count: number
        running_count: number
        pending_count: number
        error_message: string | null
      }>(`SELECT * FROM ${s}."sync_runs" ORDER BY started_at DESC, id DESC LIMIT $1`, [limit])
      .pipe(
        Effect.map((rows) =>
          rows.map(
            (r): RunSummary => ({
              id: Number(r.id),
              accountId: r.account_id,
              startedAt: r.started_at,
              closedAt: r.closed_at,
              status: r.status,
              totalProcessed: Number(r.total_processed),
              completeCount: r.complete_count,
              errorCount: r.error_count,
              runningCount: r.running_count,
              pendingCount: r.pending_count,
              errorMessage: r.error_message
            })
          )
        )
      )
  )

/**
 * Per-resource progress of a run.
 *
 * @since 0.1.0
 * @category constructors
 */
export const objects = (runId: number) =>
  withSchema((sql, s) =>
    sql
      .unsafe<{ object: string; status: ObjectStatus; processed: string; error_message: string | null }>(
        `SELECT object, status, processed, error_message FROM ${s}."_sync_run_objects" WHERE run_id = $1 ORDER BY object`,
        [runId]
      )
      .pipe(
        Effect.map((rows) =>
          rows.map(
            (r): ObjectProgress => ({
              runId,
              object: r.object,
              status: r.status,
              processed: Number(r.processed),
              errorMessage: r.error_message
            })
          )
        )
      )
  )
