/**
 * The `stripe` tables projection: one table per Stripe resource (`stripe.customers`, …), primary
 * key `id`, the object in `_raw_data`, typed columns generated from it, child tables for embedded
 * lists, newer-wins by `versionTs`, a fixed rule for same-second states (then revalidation), and
 * tombstones that a late event never brings back.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { StoredEvent } from "@stripe-sync/core/Event"
import { ProjectionError } from "@stripe-sync/core/PipelineError"
import * as Projection from "@stripe-sync/core/Projection"
import { type Request, RevalidationQueue } from "@stripe-sync/core/RevalidationQueue"
import { Effect } from "effect"
import { quote } from "./internal/names.js"
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
 * @since 0.1.0
 * @category sql
 */
export const columnExpression = (column: ColumnSpec): string => {
  const v = `"_raw_data"->${literal(column.name)}`
  switch (column.kind) {
    case "bigint":
      return `CASE WHEN jsonb_typeof(${v}) = 'number' AND (${v})::text ~ '^-?[0-9]{1,18}$' THEN (${v})::text::bigint END`
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

interface Candidate {
  readonly id: string
  readonly accountId: string
  readonly versionTs: number
  readonly rank: number
  readonly eventId: string
  readonly position: bigint
  readonly data: Record<string, unknown>
  readonly json: string
}

/** The fixed order of states (event ids compared by code point, as `COLLATE "C"` does in SQL). */
const isAfter = (a: Candidate, b: Candidate): boolean =>
  a.versionTs !== b.versionTs
    ? a.versionTs > b.versionTs
    : a.rank !== b.rank
      ? a.rank > b.rank
      : a.eventId > b.eventId

interface EmbeddedList {
  readonly data: ReadonlyArray<Record<string, unknown>>
  readonly complete: boolean
}

const embeddedList = (value: unknown): EmbeddedList | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const list = value as { object?: unknown; data?: unknown; has_more?: unknown }
  if (list.object !== "list" || !Array.isArray(list.data)) return undefined
  return {
    data: list.data.filter(
      (item): item is Record<string, unknown> =>
        typeof item === "object" && item !== null && typeof (item as { id?: unknown }).id === "string"
    ),
    complete: list.has_more !== true
  }
}

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
 * The projection. Its `apply` writes one upsert statement per table per batch (plus one per child
 * table for parents whose list changed) and queues revalidations for same-second conflicts and
 * truncated lists.
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

  const isTombstone = (event: StoredEvent, spec: TableSpec): boolean =>
    event.data.deleted === true ||
    (spec.deletable && event.type.endsWith(".deleted") && event.type !== "customer.subscription.deleted")

  const candidate = (event: StoredEvent, spec: TableSpec): Candidate => {
    const tombstone = isTombstone(event, spec)
    const data = tombstone && event.data.deleted !== true ? { ...event.data, deleted: true } : event.data
    return {
      id: event.objectId,
      accountId: event.accountId,
      versionTs: event.versionTs,
      rank: tombstone ? TOMBSTONE : event.type.endsWith(".snapshot") ? SNAPSHOT : EVENT,
      eventId: event.id,
      position: event.position,
      data,
      json: JSON.stringify(data)
    }
  }

  const upsert = (
    schema: string,
    spec: TableSpec,
    rows: ReadonlyArray<Candidate>,
    parentIds?: ReadonlyArray<string | null>
  ) =>
    Effect.gen(function* () {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      const table = `${quote(schema)}.${quote(spec.table)}`
      const child = spec.isChild === true
      const result = yield* sql.unsafe<{ kind: string; id: string; version_ts: string; account_id: string }>(
        `WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int2[], $5::text[], $6::int8[], $7::text[]${child ? ", $8::text[]" : ""})
    AS i(id, account_id, version_ts, rank, event_id, position, data${child ? ", parent_id" : ""})
),
conflicts AS (
  SELECT i.id, i.account_id, i.version_ts FROM input i JOIN ${table} t ON t."id" = i.id
  WHERE t."_version_ts" = i.version_ts AND t."_raw_data" IS DISTINCT FROM i.data::jsonb
    AND i.rank <> ${TOMBSTONE} AND t."_rank" <> ${TOMBSTONE}
),
upserted AS (
  INSERT INTO ${table} AS t ("id", "_raw_data", "_account_id", "_version_ts", "_rank", "_event_id", "_event_position", "_last_synced_at"${child ? `, "_parent_id"` : ""})
  SELECT id, data::jsonb, account_id, version_ts, rank, event_id, position, now()${child ? ", parent_id" : ""} FROM input
  ON CONFLICT ("id") DO UPDATE SET
    "_raw_data" = excluded."_raw_data", "_account_id" = excluded."_account_id", "_version_ts" = excluded."_version_ts",
    "_rank" = excluded."_rank", "_event_id" = excluded."_event_id", "_event_position" = excluded."_event_position",
    "_last_synced_at" = excluded."_last_synced_at"${child ? `, "_parent_id" = COALESCE(excluded."_parent_id", t."_parent_id")` : ""}
  WHERE (t."deleted" IS NOT TRUE OR excluded."_rank" = ${TOMBSTONE})
    AND (excluded."_version_ts", excluded."_rank", excluded."_event_id" COLLATE "C") > (t."_version_ts", t."_rank", COALESCE(t."_event_id", '') COLLATE "C")
  RETURNING t."id", t."_version_ts", t."_account_id"
)
SELECT 'updated' AS kind, id, "_version_ts"::text AS version_ts, "_account_id" AS account_id FROM upserted
UNION ALL
SELECT 'conflict', id, version_ts::text, account_id FROM conflicts`,
        [
          rows.map((r) => r.id),
          rows.map((r) => r.accountId),
          rows.map((r) => r.versionTs),
          rows.map((r) => r.rank),
          rows.map((r) => r.eventId),
          rows.map((r) => r.position.toString()),
          rows.map((r) => r.json),
          ...(child ? [parentIds ?? rows.map(() => null)] : [])
        ]
      )
      return {
        updated: new Set(result.filter((r) => r.kind === "updated").map((r) => r.id)),
        conflicts: result
          .filter((r) => r.kind === "conflict")
          .map((r) => ({ id: r.id, accountId: r.account_id, versionTs: Number(r.version_ts) }))
      }
    })

  /** Replaces (complete list) or updates (truncated list) the children of updated parents. */
  const writeChildren = (
    schema: string,
    childSpec: TableSpec,
    parents: ReadonlyArray<{ readonly parent: Candidate; readonly list: EmbeddedList }>
  ) =>
    Effect.gen(function* () {
      if (parents.length === 0) return
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      const table = `${quote(schema)}.${quote(childSpec.table)}`
      const complete = parents.filter((p) => p.list.complete)
      if (complete.length > 0) {
        // children no longer in a complete list are removed; the rest are upserted below
        const keepParents = complete.flatMap((p) => p.list.data.map(() => p.parent.id))
        const keepIds = complete.flatMap((p) => p.list.data.map((item) => item.id as string))
        yield* sql.unsafe(
          `DELETE FROM ${table} c WHERE c."_parent_id" = ANY($1::text[])
             AND NOT EXISTS (
               SELECT 1 FROM unnest($2::text[], $3::text[]) AS k(parent_id, id)
               WHERE k.parent_id = c."_parent_id" AND k.id = c."id"
             )`,
          [complete.map((p) => p.parent.id), keepParents, keepIds]
        )
      }
      const items: Array<Candidate> = []
      const parentIds: Array<string> = []
      const seen = new Set<string>()
      for (const { parent, list } of parents) {
        for (const item of list.data) {
          const id = item.id as string
          if (seen.has(id)) continue
          seen.add(id)
          items.push({
            id,
            accountId: parent.accountId,
            versionTs: parent.versionTs,
            rank: parent.rank === TOMBSTONE ? EVENT : parent.rank,
            eventId: parent.eventId,
            position: parent.position,
            data: item,
            json: JSON.stringify(item)
          })
          parentIds.push(parent.id)
        }
      }
      if (items.length > 0) yield* upsert(schema, childSpec, items, parentIds)
    })

  return Projection.make({
    name,
    version: options.version ?? 1,
    handles: ["*"],
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
        const { schema } = yield* ProjectionTarget
        const queue = yield* RevalidationQueue
        // the winner per table and object, and the same-second conflicts inside the batch
        const winners = new Map<TableSpec, Map<string, Candidate>>()
        const revalidate: Array<Request> = []
        for (const event of events) {
          const spec = byObject.get(event.objectType)
          if (spec === undefined) continue
          const c = candidate(event, spec)
          let perTable = winners.get(spec)
          if (perTable === undefined) {
            perTable = new Map()
            winners.set(spec, perTable)
          }
          const current = perTable.get(c.id)
          if (
            current !== undefined &&
            current.versionTs === c.versionTs &&
            current.json !== c.json &&
            current.rank !== TOMBSTONE &&
            c.rank !== TOMBSTONE
          ) {
            revalidate.push({
              accountId: c.accountId,
              objectType: spec.object,
              objectId: c.id,
              notBefore: c.versionTs + 1,
              reason: "two states in one second"
            })
          }
          if (current === undefined || isAfter(c, current)) perTable.set(c.id, c)
        }
        for (const [spec, perTable] of winners) {
          const rows = [...perTable.values()]
          const { updated, conflicts } = yield* upsert(schema, spec, rows)
          for (const conflict of conflicts) {
            revalidate.push({
              accountId: conflict.accountId,
              objectType: spec.object,
              objectId: conflict.id,
              notBefore: conflict.versionTs + 1,
              reason: "two states in one second"
            })
          }
          for (const childRef of spec.children ?? []) {
            const childSpec = byTable.get(childRef.table)
            if (childSpec === undefined) continue
            const parents: Array<{ parent: Candidate; list: EmbeddedList }> = []
            for (const row of rows) {
              if (!updated.has(row.id) || row.rank === TOMBSTONE) continue
              const list = embeddedList(row.data[childRef.field])
              if (list === undefined) continue
              parents.push({ parent: row, list })
              if (!list.complete) {
                revalidate.push({
                  accountId: row.accountId,
                  objectType: spec.object,
                  objectId: row.id,
                  notBefore: row.versionTs + 1,
                  reason: `truncated ${childRef.field} list`
                })
              }
            }
            yield* writeChildren(schema, childSpec, parents)
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
