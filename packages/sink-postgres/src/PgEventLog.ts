/**
 * The event log in Postgres: `<schema>._events`, appended one statement per batch (with the
 * batch's cursor writes and a `pg_notify`, in one transaction), read in `(txid, position)` order
 * below the xmin horizon.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import * as Event from "@stripe-sync/core/Event"
import {
  type CursorWrite,
  EventLog,
  type HorizonHolder,
  type ReadResult,
  validate as validateEvents
} from "@stripe-sync/core/EventLog"
import * as LogPosition from "@stripe-sync/core/LogPosition"
import { Effect, Layer, PubSub, Schedule, Stream } from "effect"
import { logError } from "./internal/errors.js"
import { type Tables, tables } from "./internal/names.js"
import { prepared } from "./PgPool.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

/** The last write per (source, key) wins, as the memory driver applies them in order. */
const cursorParams = (writes: ReadonlyArray<CursorWrite>) => {
  const last = new Map<string, CursorWrite>()
  for (const w of writes) last.set(`${w.source}\u0000${w.key}`, w)
  const sources: Array<string> = []
  const keys: Array<string> = []
  const values: Array<string | null> = []
  for (const w of last.values()) {
    sources.push(w.source)
    keys.push(w.key)
    values.push(w.value === null || w.value === undefined ? null : JSON.stringify(w.value))
  }
  return [sources, keys, values] as const
}

/** The cursor upsert and delete, as CTEs named `cursor_put` and `cursor_del` over params $a..$c. */
export const cursorCtes = (t: Tables, a: number) => `
cursor_in AS (
  SELECT c.source, c.key, c.value FROM unnest($${a}::text[], $${a + 1}::text[], $${a + 2}::text[]) AS c(source, key, value)
),
cursor_put AS (
  INSERT INTO ${t.cursors} AS c (source, key, value, updated_at)
  SELECT source, key, value::jsonb, now() FROM cursor_in WHERE value IS NOT NULL
  ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
  RETURNING 1
),
cursor_del AS (
  DELETE FROM ${t.cursors} AS c USING cursor_in i
  WHERE i.value IS NULL AND c.source = i.source AND c.key = i.key
  RETURNING 1
)`

export { cursorParams }

/**
 * The canonical JSON text of an event's data (keys in jsonb's order, see `Event.digest`) and its
 * hash, the state compared by the same-state snapshot skip. The text never holds a raw newline
 * (JSON.stringify escapes them), so a batch's texts travel as one newline-separated parameter.
 * Computed once per data object: a snapshot's id was already derived from it.
 *
 * Rows appended before this form (migration-free changes) hold an older hash (`md5(data::text)`,
 * then the md5 of this text): the first snapshot of an object equal to such a row is logged once
 * more (one extra event, never a lost one), and the hashes agree from then on.
 */
export const canonicalData = (data: Event.JsonObject): { readonly text: string; readonly hash: string } =>
  Event.digest(data)

/**
 * The input rows of an append: one array per column, the data texts joined by newlines, zipped
 * back in batch order (`ord`).
 */
const inputCte = `
input AS (
  SELECT i.ord, i.event_id, i.type, i.source, i.account_id, i.object_type, i.object_id, i.version_ts, i.api_version,
    i.data, i.data_hash, i.received_at
  FROM ROWS FROM (
    unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]), unnest($5::text[]),
    unnest($6::text[]), unnest($7::int8[]), unnest($8::text[]), string_to_table($9::text, E'\\n'),
    unnest($10::text[]), unnest($11::timestamptz[])
  ) WITH ORDINALITY AS i(event_id, type, source, account_id, object_type, object_id, version_ts, api_version, data,
    data_hash, received_at, ord)
)`

/**
 * The append statement. Duplicates within the batch are removed by the caller (first one kept);
 * those already stored are filtered here. With `snapshots`, a snapshot equal to the latest logged
 * state of its object is skipped: the first one of an object in the batch compares with the log,
 * the next ones with the previous one in the batch. A snapshot taken for the revalidation queue
 * (source revalidate_queue) is never skipped: it was asked because the row is in doubt (two
 * states in one second), and its newer version is what settles the row. A batch without
 * snapshots has nothing to compare, and takes the statement without the window and the probe;
 * one without cursor writes (every webhook append) takes it without the cursor CTEs (planning
 * them cost as much as running a small append).
 */
const appendSql = (t: Tables, snapshots: boolean, cursors: boolean) => `
WITH ${inputCte},
fresh AS (
  SELECT h.* FROM input h
  WHERE NOT EXISTS (SELECT 1 FROM ${t.events} e WHERE e.account_id = h.account_id AND e.event_id = h.event_id)
),${
  snapshots
    ? `
sequenced AS (
  SELECT f.*, row_number() OVER w AS nth, lag(f.data_hash) OVER w AS previous_in_batch
  FROM fresh f
  WINDOW w AS (PARTITION BY f.account_id, f.object_type, f.object_id ORDER BY f.ord)
),`
    : ""
}
inserted AS (
  INSERT INTO ${t.events} (event_id, type, source, account_id, object_type, object_id, version_ts, api_version,
    data, data_hash, received_at)
  SELECT q.event_id, q.type, q.source, q.account_id, q.object_type, q.object_id, q.version_ts, q.api_version,
    q.data::jsonb, q.data_hash, q.received_at
  ${
    snapshots
      ? `FROM sequenced q
  WHERE NOT (q.type LIKE '%.snapshot' AND q.source <> 'revalidate_queue' AND q.data_hash IS NOT DISTINCT FROM (
    CASE WHEN q.nth = 1 THEN (
      SELECT e.data_hash FROM ${t.events} e
      WHERE e.account_id = q.account_id AND e.object_type = q.object_type AND e.object_id = q.object_id
      ORDER BY e.position DESC LIMIT 1
    ) ELSE q.previous_in_batch END
  ))`
      : "FROM fresh q"
  }
  ORDER BY q.ord
  RETURNING 1
)${cursors ? `,\n${cursorCtes(t, 13)}` : ""}
SELECT
  (SELECT count(*) FROM inserted)::int AS appended,
  ${cursors ? "(SELECT count(*) FROM cursor_put)::int + (SELECT count(*) FROM cursor_del)::int" : "0"} AS cursors,
  (SELECT count(*) FROM (SELECT pg_notify($12, count(*)::text) FROM inserted HAVING count(*) > 0) n)::int AS notified
`

/**
 * A text[] parameter as its array literal, built here in one pass instead of by the driver (which
 * escapes every element with two regular expressions): elements without a quote or a backslash,
 * the usual case, are joined as they are.
 */
const textArray = (values: ReadonlyArray<string | null>): string => {
  let plain = true
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v === null || v === undefined || v.includes('"') || v.includes("\\")) {
      plain = false
      break
    }
  }
  if (plain) return values.length === 0 ? "{}" : `{"${values.join('","')}"}`
  let out = "{"
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) out += ","
    out += v === null || v === undefined ? "NULL" : `"${v.replace(/[\\"]/g, "\\$&")}"`
  }
  return `${out}}`
}

/** An int8[] parameter as its array literal. */
const intArray = (values: ReadonlyArray<number>): string => `{${values.join(",")}}`

const isUniqueViolation = (error: SqlError): boolean =>
  (error.cause as { code?: unknown } | undefined)?.code === "23505"

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The read's type filter as the two arrays of `_read_page`: exact types, and LIKE patterns of prefixes. */
const typeFilter = (types: ReadonlyArray<string> | undefined) => {
  if (types === undefined || types.length === 0 || types.includes("*")) return [null, null] as const
  return [
    types.filter((t) => !t.endsWith(".*")),
    types.filter((t) => t.endsWith(".*")).map((t) => `${escapeLike(t.slice(0, -1))}%`)
  ] as const
}

/**
 * One statement: the horizon (the xmin of the statement's snapshot), the last event below it, and
 * a page after `$1:$2` below it.
 */
const readSql = (t: Tables, withData = true) => `
WITH h AS MATERIALIZED (
  SELECT x.xmin,
    (SELECT e.txid::text || ':' || e.position::text FROM ${t.events} e
      WHERE e.txid < x.xmin ORDER BY e.txid DESC, e.position DESC LIMIT 1) AS top
  FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) x
)
SELECT h.top, p.txid::text AS txid, p.position::text AS position, p.event_id, p.type, p.source, p.account_id,
  p.object_type, p.object_id, p.version_ts::text AS version_ts, p.api_version, ${withData ? "p.data" : "NULL::jsonb AS data"}, p.received_at
FROM h LEFT JOIN LATERAL ${t.readPage}($1::xid8, $2::int8, h.xmin, $3::int4, $4::text[], $5::text[]) p ON true
`

interface ReadRow {
  readonly top: string | null
  readonly txid: string | null
  readonly position: string | null
  readonly event_id: string
  readonly type: string
  readonly source: string
  readonly account_id: string
  readonly object_type: string
  readonly object_id: string
  readonly version_ts: string
  readonly api_version: string | null
  /** NULL when read without data (`ReadOptions.data: false`). */
  readonly data: Event.JsonObject | null
  readonly received_at: Date | string
}

const toStored = (r: ReadRow): Event.StoredEvent =>
  Object.assign(Object.create(Event.Event.prototype) as Event.StoredEvent, {
    id: r.event_id,
    type: r.type,
    source: r.source,
    accountId: r.account_id,
    objectType: r.object_type,
    objectId: r.object_id,
    versionTs: Number(r.version_ts),
    apiVersion: r.api_version,
    data:
      r.data === null ? {} : typeof r.data === "string" ? (JSON.parse(r.data) as Event.JsonObject) : r.data,
    receivedAt: r.received_at instanceof Date ? r.received_at : new Date(r.received_at),
    txid: BigInt(r.txid as string),
    position: BigInt(r.position as string)
  })

const parseTop = (top: string | null): LogPosition.LogPosition =>
  top === null ? LogPosition.zero : (LogPosition.parse(top) ?? LogPosition.zero)

/**
 * Builds the Postgres event log over the sync schema's tables. Starts a LISTEN on the append
 * channel for the life of the scope (re-subscribed every few minutes and after errors, since a
 * LISTEN connection can die quietly; readers poll as well).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("PgEventLog.make")(function* (schema: string) {
  const pg = yield* PgClient.PgClient
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(schema)
  // prepared on the sink's pool (PgPool): planned once per connection, not on every call
  const appendSqls = [
    prepared(appendSql(t, false, false)),
    prepared(appendSql(t, true, false)),
    prepared(appendSql(t, false, true)),
    prepared(appendSql(t, true, true))
  ] as const
  const read = prepared(readSql(t))
  const readWithoutData = prepared(readSql(t, false))
  const changes = yield* PubSub.sliding<void>(1)

  yield* pg.listen(t.channel).pipe(
    Stream.runForEach(() => PubSub.publish(changes, undefined)),
    Effect.timeout("5 minutes"),
    Effect.catchAllCause((cause) => Effect.logDebug("event log LISTEN ended; re-subscribing", cause)),
    Effect.zipRight(PubSub.publish(changes, undefined)),
    Effect.repeat(Schedule.spaced("1 second")),
    Effect.interruptible,
    Effect.forkScoped
  )

  const service: EventLog["Type"] = {
    append: (batch) =>
      Effect.gen(function* () {
        const events = yield* validateEvents(batch.events)
        const [sources, keys, values] = cursorParams(batch.cursors ?? [])
        if (events.length === 0 && sources.length === 0) return { appended: 0, skipped: 0 }
        const n = events.length
        // Duplicates within the batch: the first one is kept (the statement filters those stored).
        const seen = new Set<string>()
        const ids: Array<string> = []
        const types: Array<string> = []
        const eventSources: Array<string> = []
        const accounts: Array<string> = []
        const objectTypes: Array<string> = []
        const objectIds: Array<string> = []
        const versions: Array<number> = []
        const apiVersions: Array<string | null> = []
        const hashes: Array<string> = []
        const received: Array<string> = []
        const texts: Array<string> = []
        let snapshots = false
        for (let i = 0; i < n; i++) {
          const e = events[i]!
          const key = `${e.accountId}\u0000${e.id}`
          if (seen.has(key)) continue
          seen.add(key)
          const canonical = canonicalData(e.data)
          texts.push(canonical.text)
          ids.push(e.id)
          types.push(e.type)
          eventSources.push(e.source)
          accounts.push(e.accountId)
          objectTypes.push(e.objectType)
          objectIds.push(e.objectId)
          versions.push(e.versionTs)
          apiVersions.push(e.apiVersion)
          hashes.push(canonical.hash)
          received.push(e.receivedAt.toISOString())
          if (!snapshots && Event.isSnapshot(e)) snapshots = true
        }
        // No ON CONFLICT (speculative insertion halves the speed): duplicates already stored are
        // filtered by the statement, and a concurrent appender of the same event makes it fail with a
        // unique violation once that appender commits; the retry then skips the event.
        const result = yield* sql
          .unsafe<{ appended: number }>(appendSqls[(snapshots ? 1 : 0) + (sources.length > 0 ? 2 : 0)]!, [
            textArray(ids),
            textArray(types),
            textArray(eventSources),
            textArray(accounts),
            textArray(objectTypes),
            textArray(objectIds),
            intArray(versions),
            textArray(apiVersions),
            // one flat string, not a chain of a thousand concatenations to flatten
            texts.length === 0 ? null : texts.join("\n"),
            textArray(hashes),
            textArray(received),
            t.channel,
            ...(sources.length > 0 ? [sources, keys, values] : [])
          ])
          .pipe(Effect.retry({ times: 5, while: isUniqueViolation }), Effect.mapError(logError("append")))
        const appended = Number(result[0]?.appended ?? 0)
        return { appended, skipped: n - appended }
      }),
    read: (after, options) => {
      const [exact, prefixes] = typeFilter(options.types)
      return sql
        .unsafe<ReadRow>(options.data === false ? readWithoutData : read, [
          String(after.txid),
          String(after.position),
          options.limit,
          exact,
          prefixes
        ])
        .pipe(
          Effect.map((rows): ReadResult => {
            const events: Array<Event.StoredEvent> = []
            for (const r of rows) if (r.position !== null) events.push(toStored(r))
            if (events.length >= options.limit) {
              const last = events[events.length - 1]!
              return { events, next: { txid: last.txid, position: last.position } }
            }
            // Not a full page: everything below the horizon has been seen, so the reader may move up
            // to the last event below it (never past `after`'s own position backwards).
            const top = parseTop(rows[0]?.top ?? null)
            const last = events.length > 0 ? events[events.length - 1]! : after
            return {
              events,
              next: LogPosition.max(LogPosition.max(after, { txid: last.txid, position: last.position }), top)
            }
          }),
          Effect.mapError(logError("read"))
        )
    },
    head: sql
      .unsafe<{ top: string | null }>(
        `SELECT e.txid::text || ':' || e.position::text AS top FROM ${t.events} e
         WHERE e.txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY e.txid DESC, e.position DESC LIMIT 1`
      )
      .pipe(
        Effect.map((rows) => parseTop(rows[0]?.top ?? null)),
        Effect.mapError(logError("head"))
      ),
    changes: Stream.fromPubSub(changes),
    horizonHolders: sql
      .unsafe<{
        pid: number
        age: number
        state: string | null
        query: string | null
        application_name: string | null
      }>(
        `SELECT pid, extract(epoch FROM now() - coalesce(xact_start, query_start, backend_start))::float8 AS age,
           state, query, application_name, age(backend_xid) AS xid_age
         FROM pg_stat_activity
         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
         UNION ALL
         SELECT 0, extract(epoch FROM now() - prepared)::float8, 'prepared', 'PREPARE TRANSACTION ' || quote_literal(gid), '', age(transaction)
         FROM pg_prepared_xacts
         ORDER BY xid_age DESC`
      )
      .pipe(
        Effect.map((rows) =>
          rows.map(
            (r): HorizonHolder => ({
              pid: Number(r.pid),
              ageSeconds: Number(r.age ?? 0),
              state: r.state ?? "",
              query: r.query ?? "",
              applicationName: r.application_name ?? ""
            })
          )
        ),
        Effect.mapError(logError("horizonHolders"))
      )
  }
  return service
})

/**
 * The event log of the configured sync schema (migrations must have run: see `PgSink.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<EventLog, never, PgClient.PgClient | SqlClient.SqlClient | PgSinkConfig> =
  Layer.scoped(
    EventLog,
    Effect.flatMap(PgSinkConfig, (c) => make(c.schema))
  )
