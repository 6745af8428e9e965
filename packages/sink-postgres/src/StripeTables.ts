/**
 * The `stripe` tables projection: one table per Stripe resource (`stripe.customers`, …), primary
 * key `id`, the object in `_raw_data`, typed columns generated from it, child tables for embedded
 * lists, newer-wins by `versionTs`, a fixed rule for same-second states (then revalidation), and
 * tombstones that a late event never brings back.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { ProjectionError } from "@stripe-sync/core/PipelineError"
import * as Projection from "@stripe-sync/core/Projection"
import { type Request, RevalidationQueue } from "@stripe-sync/core/RevalidationQueue"
import { Effect, Option } from "effect"
import { quote, tables } from "./internal/names.js"
import { prepared } from "./PgPool.js"
import { PgSinkConfig } from "./PgSinkConfig.js"
import { ProjectionTarget } from "./ProjectionTarget.js"

/**
 * How a typed column is read from `_raw_data`: `bigint` (amounts, unix times), `boolean`, `text`,
 * `numeric`, `jsonb` (nested objects and arrays), or `ref` (an expandable reference: the id as text
 * whether expanded or not, indexed).
 *
 * @since 0.1.0
 * @category models
 */
export type ColumnKind = "bigint" | "boolean" | "text" | "numeric" | "jsonb" | "ref"

/**
 * @since 0.1.0
 * @category models
 */
export interface ColumnSpec {
  /** Stripe's field name, also the column's name. */
  readonly name: string
  readonly kind: ColumnKind
}

/**
 * An embedded list of a parent object kept in a child table (invoice `lines` →
 * `invoice_line_items`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildSpec {
  /** The parent's field holding the list, e.g. `lines`. */
  readonly field: string
  /** The child table, e.g. `invoice_line_items`. */
  readonly table: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TableSpec {
  /** Stripe's object name (`customer`, `checkout.session`). */
  readonly object: string
  /** The table, plural (`customers`). */
  readonly table: string
  /** Stripe can delete it, so a `<type>.deleted` event leaves a tombstone. */
  readonly deletable: boolean
  readonly columns: ReadonlyArray<ColumnSpec>
  /** Embedded lists kept in child tables. */
  readonly children?: ReadonlyArray<ChildSpec> | undefined
  /** A child table (rows come from parents' lists too): it has a `_parent_id` column. */
  readonly isChild?: boolean | undefined
}

const fieldName = /^[a-z_][a-z0-9_]*$/

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`

/**
 * The generated-column expression of a column over `_raw_data`. Every expression is immutable and
 * never fails: a value of an unexpected JSON type gives NULL rather than a failed insert.
 *
 * A `bigint` is a JSON number written without a fraction in at most 18 digits (so it always fits),
 * else NULL. Postgres writes a jsonb number as `-?digits(.digits)?` (never an exponent), so "no
 * `.` and at most 18 digits" is what the first form, `(v)::text ~ '^-?[0-9]{1,18}$'`, tested; the
 * string functions cost about half of the regular expression (its automaton is rebuilt on every
 * call) and the two `jsonb` to text conversions. Tables created with the first form keep it (a
 * generated expression is not altered in place): both give the same value for every input (the
 * seeded property test `columnExpression.pg.test.ts`), so old and new tables read alike.
 *
 * @since 0.1.0
 * @category sql
 */
export const columnExpression = (column: ColumnSpec): string => {
  const v = `"_raw_data"->${literal(column.name)}`
  switch (column.kind) {
    case "bigint": {
      const t = `"_raw_data"->>${literal(column.name)}`
      return `CASE WHEN jsonb_typeof(${v}) = 'number' AND strpos(${t}, '.') = 0 AND length(ltrim(${t}, '-')) <= 18 THEN (${t})::bigint END`
    }
    case "numeric":
      return `CASE WHEN jsonb_typeof(${v}) = 'number' THEN (${v})::numeric END`
    case "boolean":
      return `CASE WHEN jsonb_typeof(${v}) = 'boolean' THEN (${v})::boolean END`
    case "text":
      return `CASE WHEN jsonb_typeof(${v}) IN ('string', 'number', 'boolean') THEN "_raw_data"->>${literal(column.name)} END`
    case "ref":
      return `CASE jsonb_typeof(${v}) WHEN 'string' THEN "_raw_data"->>${literal(column.name)} WHEN 'object' THEN ${v}->>'id' END`
    case "jsonb":
      return `CASE WHEN jsonb_typeof(${v}) <> 'null' THEN ${v} END`
  }
}

/** Column names the projection keeps for itself. */
const reserved = new Set([
  "id",
  "deleted",
  "_raw_data",
  "_account_id",
  "_version_ts",
  "_rank",
  "_event_id",
  "_event_position",
  "_last_synced_at",
  "_parent_id"
])

/**
 * The DDL that brings one table up to its spec: create it if absent, then add any missing typed
 * column (a new column is a migration, never a replay: Postgres computes it from `_raw_data`).
 *
 * @since 0.1.0
 * @category sql
 */
export const tableDdl = (schema: string, spec: TableSpec): ReadonlyArray<string> => {
  const table = `${quote(schema)}.${quote(spec.table)}`
  const columns = spec.columns.filter((c) => !reserved.has(c.name) && fieldName.test(c.name))
  const typed = (c: ColumnSpec) =>
    `${quote(c.name)} ${c.kind === "ref" ? "text" : c.kind} GENERATED ALWAYS AS (${columnExpression(c)}) STORED`
  const deleted = `"deleted" boolean GENERATED ALWAYS AS (COALESCE(CASE WHEN jsonb_typeof("_raw_data"->'deleted') = 'boolean' THEN ("_raw_data"->'deleted')::boolean END, false)) STORED`
  const index = (suffix: string, column: string) =>
    `CREATE INDEX IF NOT EXISTS ${quote(`${spec.table}_${suffix}`.slice(0, 63))} ON ${table} (${quote(column)})`
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (
  "id" text PRIMARY KEY,
  "_raw_data" jsonb NOT NULL,
  "_account_id" text NOT NULL,
  "_version_ts" bigint NOT NULL,
  "_rank" smallint NOT NULL DEFAULT 0,
  "_event_id" text,
  "_event_position" bigint,
  "_last_synced_at" timestamptz NOT NULL DEFAULT now(),${spec.isChild ? `\n  "_parent_id" text,` : ""}
  ${[deleted, ...columns.map(typed)].join(",\n  ")}
)`,
    // an existing table (an older catalog) gains the columns it lacks
    ...[deleted, ...columns.map(typed)].map((c) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${c}`),
    index("account_idx", "_account_id"),
    ...(spec.isChild ? [index("parent_idx", "_parent_id")] : []),
    ...columns.filter((c) => c.kind === "ref").map((c) => index(`${c.name}_idx`, c.name))
  ]
}

/** Rank of a state within one second: a tombstone first, then an API snapshot, then an event. */
const TOMBSTONE = 3
const SNAPSHOT = 2
const EVENT = 1

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The tables, usually the generated Stripe catalog's. */
  readonly tables: ReadonlyArray<TableSpec>
  /** Projection name (default `stripe_tables`). */
  readonly name?: string
  /** Bump to ask for a rebuild (default 1). */
  readonly version?: number
}

/**
 * The fixed order of states: a tombstone above every state that is not one (Stripe never brings a
 * deleted object back, so only a newer tombstone replaces a tombstone, and a tombstone replaces a
 * live row even when it is older), then newer wins (version, then rank, then event id by code
 * point). A total order, so the row never depends on arrival order or on where batches end. A
 * child row keeps its parent when the incoming state carries none (the child object read on its
 * own).
 */
const onConflict = (child: boolean) => `ON CONFLICT ("id") DO UPDATE SET
    "_raw_data" = excluded."_raw_data", "_account_id" = excluded."_account_id", "_version_ts" = excluded."_version_ts",
    "_rank" = excluded."_rank", "_event_id" = excluded."_event_id", "_event_position" = excluded."_event_position",
    "_last_synced_at" = excluded."_last_synced_at"${child ? `, "_parent_id" = COALESCE(excluded."_parent_id", t."_parent_id")` : ""}
  WHERE (excluded."_rank" = ${TOMBSTONE}, excluded."_version_ts", excluded."_rank", excluded."_event_id" COLLATE "C")
    > (t."_rank" = ${TOMBSTONE}, t."_version_ts", t."_rank", COALESCE(t."_event_id", '') COLLATE "C")`

/** A `jsonb` expression that is an embedded list (`{ object: "list", data: [...] }`). */
const isList = (list: string) =>
  `(jsonb_typeof(${list}) = 'object' AND ${list}->>'object' = 'list' AND jsonb_typeof(${list}->'data') = 'array')`

/**
 * The upsert of one table from the batch's events, read from the log by their `(txid, position)`
 * (the objects never travel through node): the winner per object by the fixed order (version,
 * rank, event id by code point), newer-wins against the stored row, tombstones kept. Returns the
 * same-second conflicts (with the stored row, and inside the batch when an object has several
 * events) and, for a table with child lists, the state of each list of the rows it wrote
 * (`c`omplete, `t`runcated, or null: no list).
 */
const upsertSql = (options: {
  readonly log: string
  readonly table: string
  readonly spec: TableSpec
  readonly duplicates: boolean
}): string => {
  const { log, table, spec, duplicates } = options
  const child = spec.isChild === true
  const tombstone = `e.data->'deleted' = 'true'::jsonb${
    spec.deletable ? ` OR (e.type LIKE '%.deleted' AND e.type <> 'customer.subscription.deleted')` : ""
  }`
  const lists = (spec.children ?? []).map((c, k) => {
    const list = `t."_raw_data"->${literal(c.field)}`
    return `CASE WHEN t."_rank" <> ${TOMBSTONE} AND ${isList(list)} THEN CASE WHEN ${list}->'has_more' = 'true'::jsonb THEN 't' ELSE 'c' END END AS c${k}`
  })
  const listColumns = lists.map((_, k) => `, c${k}`).join("")
  const listNulls = lists.map(() => ", NULL").join("")
  // Each event is fetched by its own index probe (the LATERAL … LIMIT 1 is never flattened into a join,
  // which a log without statistics plans as a sort of the whole log), and so is the stored row of each
  // object (a join would scan the whole table for every batch). `|| '{}'` detoasts the data once:
  // a value left toasted would be fetched and decompressed again by every generated column.
  return `WITH src AS MATERIALIZED (
  SELECT e.object_id AS id, e.account_id, e.version_ts, e.event_id, e.position, e.data || '{}'::jsonb AS data,
    CASE WHEN ${tombstone} THEN ${TOMBSTONE} WHEN e.type LIKE '%.snapshot' THEN ${SNAPSHOT} ELSE ${EVENT} END AS rank
  FROM unnest($1::xid8[], $2::int8[]) AS b(txid, position)
  CROSS JOIN LATERAL (
    SELECT l.object_id, l.account_id, l.version_ts, l.event_id, l.position, l.data, l.type FROM ${log} l
    WHERE l.txid = b.txid AND l.position = b.position LIMIT 1
  ) e
),
input AS MATERIALIZED (
  SELECT DISTINCT ON (s.id) s.id, s.account_id, s.version_ts, s.rank, s.event_id, s.position,
    CASE WHEN s.rank = ${TOMBSTONE} AND s.data->'deleted' IS DISTINCT FROM 'true'::jsonb
      THEN s.data || '{"deleted": true}'::jsonb ELSE s.data END AS data
  FROM src s
  ORDER BY s.id, s.rank = ${TOMBSTONE} DESC, s.version_ts DESC, s.rank DESC, s.event_id COLLATE "C" DESC
),
conflicts AS (
  SELECT i.id, i.account_id, i.version_ts FROM input i
  CROSS JOIN LATERAL (SELECT t."_raw_data", t."_rank" FROM ${table} t WHERE t."id" = i.id AND t."_version_ts" = i.version_ts LIMIT 1) t
  WHERE i.rank <> ${TOMBSTONE} AND t."_rank" <> ${TOMBSTONE} AND t."_raw_data" IS DISTINCT FROM i.data${
    duplicates
      ? `
  UNION
  SELECT i.id, i.account_id, i.version_ts FROM input i JOIN src s ON s.id = i.id
  WHERE s.version_ts = i.version_ts AND s.data IS DISTINCT FROM i.data
    AND i.rank <> ${TOMBSTONE} AND s.rank <> ${TOMBSTONE}`
      : ""
  }
),
upserted AS (
  INSERT INTO ${table} AS t ("id", "_raw_data", "_account_id", "_version_ts", "_rank", "_event_id", "_event_position", "_last_synced_at"${child ? `, "_parent_id"` : ""})
  SELECT id, data, account_id, version_ts, rank, event_id, position, now()${child ? ", NULL" : ""} FROM input
  ${onConflict(child)}
  RETURNING t."id", t."_version_ts", t."_account_id"${lists.map((l) => `, ${l}`).join("")}
)
${
  lists.length > 0
    ? `SELECT 'updated' AS kind, id, "_version_ts"::text AS version_ts, "_account_id" AS account_id${listColumns} FROM upserted
WHERE ${lists.map((_, k) => `c${k} IS NOT NULL`).join(" OR ")}
UNION ALL
`
    : ""
}SELECT 'conflict' AS kind, id, version_ts::text AS version_ts, account_id${listNulls} FROM conflicts`
}

/** The items of the `field` lists of the given parents (objects with a string id), as child rows. */
const itemsSql = (parent: string, field: string) =>
  `SELECT p."id" AS parent_id, item->>'id' AS id, item AS data, p."_account_id" AS account_id,
    p."_version_ts" AS version_ts, p."_rank" AS rank, p."_event_id" AS event_id, p."_event_position" AS position
  FROM ${parent} p CROSS JOIN LATERAL jsonb_array_elements(p."_raw_data"->${literal(field)}->'data') AS item
  WHERE p."id" = ANY($1::text[]) AND jsonb_typeof(item->'id') = 'string'`

/** Removes the children of parents with a complete list that the list no longer holds. */
const deleteChildrenSql = (parent: string, child: string, field: string) =>
  `WITH keep AS (${itemsSql(parent, field)})
DELETE FROM ${child} c WHERE c."_parent_id" = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM keep k WHERE k.parent_id = c."_parent_id" AND k.id = c."id")`

/** Upserts the items of the parents' lists (complete or truncated) into the child table. */
const upsertChildrenSql = (parent: string, child: string, field: string) =>
  `WITH items AS (
  SELECT DISTINCT ON (i.id) i.* FROM (${itemsSql(parent, field)}) i
  ORDER BY i.id, i.version_ts DESC, i.position DESC
)
INSERT INTO ${child} AS t ("id", "_raw_data", "_account_id", "_version_ts", "_rank", "_event_id", "_event_position", "_last_synced_at", "_parent_id")
SELECT id, data, account_id, version_ts, rank, event_id, position, now(), parent_id FROM items
${onConflict(true)}`

interface UpsertRow {
  readonly kind: "updated" | "conflict"
  readonly id: string
  readonly version_ts: string
  readonly account_id: string
  readonly [list: `c${number}`]: "c" | "t" | null
}

/**
 * The projection. Its `apply` reads the objects from the log itself (the runner reads the batch
 * without data): one upsert statement per table per batch, plus, for parents whose list changed,
 * one delete (complete lists) and one upsert per child table; it queues revalidations for
 * same-second conflicts and truncated lists.
 *
 * @since 0.1.0
 * @category constructors
 */
export const projection = (options: Options) => {
  const name = options.name ?? "stripe_tables"
  const byObject = new Map(options.tables.map((t) => [t.object, t]))
  const byTable = new Map(options.tables.map((t) => [t.table, t]))
  const fail = (message: string) => (cause: unknown) =>
    new ProjectionError({
      projection: name,
      message: `${message}: ${String((cause as { message?: unknown })?.message ?? cause)}`,
      cause
    })
  const statements = new Map<string, string>()
  const statement = (key: string, make: () => string): string => {
    let s = statements.get(key)
    if (s === undefined) {
      // prepared on the sink's pool (PgPool): each fold runs the same few statements
      s = prepared(make())
      statements.set(key, s)
    }
    return s
  }

  interface Group {
    readonly txids: Array<string>
    readonly positions: Array<string>
    readonly ids: Set<string>
    duplicates: boolean
  }

  return Projection.make({
    name,
    version: options.version ?? 1,
    handles: ["*"],
    readsData: false,
    migrations: [
      {
        id: 1,
        name: "stripe_tables",
        run: Effect.gen(function* () {
          const sql = (yield* SqlClient.SqlClient).withoutTransforms()
          const { schema } = yield* ProjectionTarget
          for (const spec of options.tables) {
            yield* sql.unsafe(`${tableDdl(schema, spec).join(";\n")};`).unprepared
          }
        })
      }
    ],
    apply: (events) =>
      Effect.gen(function* () {
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        const { schema } = yield* ProjectionTarget
        // the log is in the sync schema (the target is a shadow schema during a rebuild)
        const syncSchema = Option.match(yield* Effect.serviceOption(PgSinkConfig), {
          onNone: () => schema,
          onSome: (c) => c.schema
        })
        const log = tables(syncSchema).events
        const queue = yield* RevalidationQueue
        const groups = new Map<TableSpec, Group>()
        for (const event of events) {
          const spec = byObject.get(event.objectType)
          if (spec === undefined) continue
          let group = groups.get(spec)
          if (group === undefined) {
            group = { txids: [], positions: [], ids: new Set(), duplicates: false }
            groups.set(spec, group)
          }
          group.txids.push(event.txid.toString())
          group.positions.push(event.position.toString())
          if (group.ids.has(event.objectId)) group.duplicates = true
          else group.ids.add(event.objectId)
        }
        const revalidate: Array<Request> = []
        for (const [spec, group] of groups) {
          const table = `${quote(schema)}.${quote(spec.table)}`
          const rows = yield* sql.unsafe<UpsertRow>(
            statement(`${schema}\u0000${spec.table}\u0000${group.duplicates}`, () =>
              upsertSql({ log, table, spec, duplicates: group.duplicates })
            ),
            [group.txids, group.positions]
          )
          for (const row of rows) {
            if (row.kind !== "conflict") continue
            revalidate.push({
              accountId: row.account_id,
              objectType: spec.object,
              objectId: row.id,
              notBefore: Number(row.version_ts) + 1,
              reason: "two states in one second"
            })
          }
          for (const [k, childRef] of (spec.children ?? []).entries()) {
            const childSpec = byTable.get(childRef.table)
            if (childSpec === undefined) continue
            const complete: Array<string> = []
            const listed: Array<string> = []
            for (const row of rows) {
              const list = row.kind === "updated" ? row[`c${k}`] : null
              if (list === null || list === undefined) continue
              listed.push(row.id)
              if (list === "c") complete.push(row.id)
              else
                revalidate.push({
                  accountId: row.account_id,
                  objectType: spec.object,
                  objectId: row.id,
                  notBefore: Number(row.version_ts) + 1,
                  reason: `truncated ${childRef.field} list`
                })
            }
            if (listed.length === 0) continue
            const child = `${quote(schema)}.${quote(childSpec.table)}`
            if (complete.length > 0) {
              yield* sql.unsafe(
                statement(`${schema}\u0000${spec.table}\u0000${childRef.field}\u0000delete`, () =>
                  deleteChildrenSql(table, child, childRef.field)
                ),
                [complete]
              )
            }
            yield* sql.unsafe(
              statement(`${schema}\u0000${spec.table}\u0000${childRef.field}\u0000upsert`, () =>
                upsertChildrenSql(table, child, childRef.field)
              ),
              [listed]
            )
          }
        }
        if (revalidate.length > 0) yield* queue.request(revalidate)
      }).pipe(
        Effect.catchAll((e) =>
          Effect.fail(
            e instanceof ProjectionError ? e : fail("applying a batch to the stripe tables failed")(e)
          )
        )
      )
  })
}

/**
 * What the projection's `apply` and migrations need.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements = SqlClient.SqlClient | ProjectionTarget | RevalidationQueue
