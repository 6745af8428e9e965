/**
 * The Sigma projection: each Sigma table folded into `<target>.<table>` (run it with
 * `{ target: "sigma" }`), typed columns from the Sigma schema, one row per account and primary key,
 * upserted when the incoming state is at least as new (`_version_ts`, Sigma's `refreshed_at`).
 * One statement per table per batch. `Replay.rebuild(projection, { target: "sigma" })` rebuilds it.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { type Event, Projection } from "@stripe-sync/core"
import { ProjectionError } from "@stripe-sync/core/PipelineError"
import { type PgProjection, ProjectionTarget } from "@stripe-sync/sink-postgres"
import { Effect } from "effect"
import * as SigmaSchema from "./SigmaSchema.js"

const q = (name: string) => `"${name.replace(/"/g, '""')}"`

/**
 * The DDL of one table.
 *
 * @since 0.1.0
 */
export const tableDdl = (schema: string, table: SigmaSchema.Table): string => {
  const columns = table.columns.map(
    ([name, type]) => `${q(SigmaSchema.pgColumn(name))} ${SigmaSchema.pgType(type)}`
  )
  const key = ["_account_id", ...table.primaryKey.map(SigmaSchema.pgColumn)].map(q).join(", ")
  return `CREATE TABLE IF NOT EXISTS ${q(schema)}.${q(table.name)} (
  ${columns.join(",\n  ")},
  "_account_id" text NOT NULL,
  "_version_ts" bigint NOT NULL,
  "_event_position" bigint NOT NULL,
  "_last_synced_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (${key})
)`
}

const upsertSql = (schema: string, table: SigmaSchema.Table): string => {
  const cols = table.columns.map(([name, type]) => ({
    name,
    pg: SigmaSchema.pgColumn(name),
    type: SigmaSchema.pgType(type)
  }))
  const key = new Set(["_account_id", ...table.primaryKey.map(SigmaSchema.pgColumn)])
  const names = [...cols.map((c) => c.pg), "_account_id", "_version_ts", "_event_position"].map(q).join(", ")
  const values = [
    ...cols.map((c) => `(r->'d'->>${`'${c.name.replace(/'/g, "''")}'`})::${c.type}`),
    "r->>'a'",
    "(r->>'v')::bigint",
    "(r->>'p')::bigint"
  ].join(", ")
  const updates = [...cols.map((c) => c.pg), "_version_ts", "_event_position"]
    .filter((c) => !key.has(c))
    .map((c) => `${q(c)} = excluded.${q(c)}`)
  return `INSERT INTO ${q(schema)}.${q(table.name)} AS t (${names})
SELECT ${values} FROM jsonb_array_elements($1::jsonb) AS r
ON CONFLICT (${[...key].map(q).join(", ")}) DO UPDATE SET ${[...updates, `"_last_synced_at" = now()`].join(", ")}
WHERE t."_version_ts" <= excluded."_version_ts"`
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tables: ReadonlyArray<SigmaSchema.Table>
  readonly name?: string
}

/**
 * The projection over the given tables.
 *
 * @since 0.1.0
 * @category constructors
 */
export const projection = (options: Options): Projection.Projection<PgProjection.Requirements> => {
  const name = options.name ?? "sigma_tables"
  const tables = options.tables.filter(SigmaSchema.syncable)
  const byObjectType = new Map(tables.map((t) => [`sigma.${t.name}`, t]))
  const fail = (cause: unknown) =>
    new ProjectionError({
      projection: name,
      message: `${(cause as { message?: unknown })?.message ?? cause}`,
      cause
    })
  const ensured = new Set<string>()
  const ensure = Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const { schema } = yield* ProjectionTarget.ProjectionTarget
    yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${q(schema)}`)
    for (const table of tables) yield* sql.unsafe(tableDdl(schema, table))
  })
  return Projection.make<PgProjection.Requirements>({
    name,
    version: 1,
    handles: tables.map((t) => `sigma.${t.name}.*`),
    // the tables are created if missing (a table added to the set later gets its table then)
    migrations: [{ id: 1, name: "sigma_tables", run: ensure }],
    apply: (events) =>
      Effect.gen(function* () {
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        const { schema } = yield* ProjectionTarget.ProjectionTarget
        if (!ensured.has(schema)) {
          yield* ensure
          ensured.add(schema)
        }
        // the newest state of each row in the batch, per table
        const latest = new Map<SigmaSchema.Table, Map<string, Event.StoredEvent>>()
        for (const event of events) {
          const table = byObjectType.get(event.objectType)
          if (table === undefined) continue
          let rows = latest.get(table)
          if (rows === undefined) {
            rows = new Map()
            latest.set(table, rows)
          }
          const id = `${event.accountId}\u0000${event.objectId}`
          const seen = rows.get(id)
          if (seen === undefined || event.versionTs >= seen.versionTs) rows.set(id, event)
        }
        for (const [table, rows] of latest) {
          const payload = [...rows.values()].map((e) => ({
            d: e.data,
            a: e.accountId,
            v: e.versionTs,
            p: String(e.position)
          }))
          yield* sql.unsafe(upsertSql(schema, table), [JSON.stringify(payload)])
        }
      }).pipe(Effect.mapError(fail))
  })
}
