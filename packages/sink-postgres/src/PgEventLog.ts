/**
 * The event log in Postgres: `<schema>._events`, appended one statement per batch (with the
 * batch's cursor writes and a `pg_notify`, in one transaction), read in `(txid, position)` order
 * below the xmin horizon.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import * as Event from "@stripe-sync/core/Event"
import { type CursorWrite, EventLog, type HorizonHolder, type ReadResult } from "@stripe-sync/core/EventLog"
import * as LogPosition from "@stripe-sync/core/LogPosition"
import { InvalidEvent } from "@stripe-sync/core/PipelineError"
import { Effect, Layer, ParseResult, PubSub, Schedule, Stream } from "effect"
import { logError } from "./internal/errors.js"
import { type Tables, tables } from "./internal/names.js"
import { PgSinkConfig } from "./PgSinkConfig.js"

const formatPath = (path: ReadonlyArray<PropertyKey>): string => path.map(String).join(".") || "(event)"

/** Validates a batch as core's drivers do: the first malformed event fails it, naming the field. */
const validate = (events: ReadonlyArray<Event.Event | Event.EventInput>) =>
  Effect.forEach(events, (input, index) =>
    input instanceof Event.Event
      ? Effect.succeed(input)
      : Event.decode(input).pipe(
          Effect.mapError((error) => {
            const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
            const id = (input as { id?: unknown } | null)?.id
            return new InvalidEvent({
              index,
              ...(typeof id === "string" ? { eventId: id } : {}),
              field: issues[0] ? formatPath(issues[0].path) : "(event)",
              message: issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join("; ")
            })
          })
        )
  )

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

const appendSql = (t: Tables) => `
WITH input AS (
  SELECT i.ord, i.event_id, i.type, i.source, i.account_id, i.object_type, i.object_id, i.version_ts,
    i.api_version, i.data::jsonb AS data, i.received_at
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[],
    $9::text[], $10::timestamptz[])
    WITH ORDINALITY AS i(event_id, type, source, account_id, object_type, object_id, version_ts, api_version,
      data, received_at, ord)
),
hashed AS (
  SELECT h.*, md5(h.data::text) AS data_hash FROM input h
),
fresh AS (
  SELECT DISTINCT ON (h.account_id, h.event_id) h.*
  FROM hashed h
  WHERE NOT EXISTS (SELECT 1 FROM ${t.events} e WHERE e.account_id = h.account_id AND e.event_id = h.event_id)
  ORDER BY h.account_id, h.event_id, h.ord
),
sequenced AS (
  SELECT f.*,
    CASE WHEN row_number() OVER w = 1 THEN s.data_hash ELSE lag(f.data_hash) OVER w END AS previous_hash
  FROM fresh f
  LEFT JOIN ${t.objectState} s
    ON s.account_id = f.account_id AND s.object_type = f.object_type AND s.object_id = f.object_id
  WINDOW w AS (PARTITION BY f.account_id, f.object_type, f.object_id ORDER BY f.ord)
),
inserted AS (
  INSERT INTO ${t.events} (event_id, type, source, account_id, object_type, object_id, version_ts, api_version,
    data, data_hash, received_at)
  SELECT event_id, type, source, account_id, object_type, object_id, version_ts, api_version, data, data_hash,
    received_at
  FROM sequenced
  WHERE NOT (type LIKE '%.snapshot' AND previous_hash IS NOT NULL AND previous_hash = data_hash)
  ORDER BY ord
  ON CONFLICT (account_id, event_id) DO NOTHING
  RETURNING position, account_id, object_type, object_id, data_hash
),
state AS (
  INSERT INTO ${t.objectState} AS s (account_id, object_type, object_id, data_hash)
  SELECT DISTINCT ON (account_id, object_type, object_id) account_id, object_type, object_id, data_hash
  FROM inserted
  ORDER BY account_id, object_type, object_id, position DESC
  ON CONFLICT (account_id, object_type, object_id) DO UPDATE SET data_hash = excluded.data_hash
  RETURNING 1
),
${cursorCtes(t, 11)}
SELECT
  (SELECT count(*) FROM inserted)::int AS appended,
  (SELECT count(*) FROM state)::int AS states,
  (SELECT count(*) FROM cursor_put)::int + (SELECT count(*) FROM cursor_del)::int AS cursors,
  (SELECT count(*) FROM (SELECT pg_notify($14, count(*)::text) FROM inserted HAVING count(*) > 0) n)::int AS notified
`

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The SQL filter of a read (`*`, exact types, `prefix.*`), with its parameters from `$first`. */
const typeFilter = (types: ReadonlyArray<string> | undefined, first: number) => {
  if (types === undefined || types.length === 0 || types.includes("*")) return { clause: "", params: [] }
  const exact = types.filter((t) => !t.endsWith(".*"))
  const prefixes = types.filter((t) => t.endsWith(".*")).map((t) => `${escapeLike(t.slice(0, -1))}%`)
  const parts: Array<string> = []
  const params: Array<ReadonlyArray<string>> = []
  if (exact.length > 0) {
    params.push(exact)
    parts.push(`type = ANY($${first + params.length - 1}::text[])`)
  }
  if (prefixes.length > 0) {
    params.push(prefixes)
    parts.push(`type LIKE ANY($${first + params.length - 1}::text[])`)
  }
  return { clause: `AND (${parts.join(" OR ")})`, params }
}

/**
 * One statement: the horizon (the xmin of the statement's snapshot), the last event below it, and
 * a page after `$1:$2` below it.
 */
const readSql = (t: Tables, filter: string) => `
WITH h AS MATERIALIZED (
  SELECT x.xmin,
    (SELECT e.txid::text || ':' || e.position::text FROM ${t.events} e
      WHERE e.txid < x.xmin ORDER BY e.txid DESC, e.position DESC LIMIT 1) AS top
  FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) x
)
SELECT h.top, p.*
FROM h LEFT JOIN LATERAL (
  SELECT e.txid::text AS txid, e.position::text AS position, e.event_id, e.type, e.source, e.account_id,
    e.object_type, e.object_id, e.version_ts::text AS version_ts, e.api_version, e.data, e.received_at
  FROM ${t.events} e
  WHERE (e.txid, e.position) > ($1::xid8, $2::int8) AND e.txid < h.xmin ${filter}
  ORDER BY e.txid, e.position
  LIMIT $3
) p ON true
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
  readonly data: Event.JsonObject
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
    data: typeof r.data === "string" ? (JSON.parse(r.data) as Event.JsonObject) : r.data,
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
  const append = appendSql(t)
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
        const events = yield* validate(batch.events)
        const [sources, keys, values] = cursorParams(batch.cursors ?? [])
        if (events.length === 0 && sources.length === 0) return { appended: 0, skipped: 0 }
        const n = events.length
        const cols = {
          id: new Array<string>(n),
          type: new Array<string>(n),
          source: new Array<string>(n),
          account: new Array<string>(n),
          objectType: new Array<string>(n),
          objectId: new Array<string>(n),
          versionTs: new Array<number>(n),
          apiVersion: new Array<string | null>(n),
          data: new Array<string>(n),
          receivedAt: new Array<string>(n)
        }
        for (let i = 0; i < n; i++) {
          const e = events[i]!
          cols.id[i] = e.id
          cols.type[i] = e.type
          cols.source[i] = e.source
          cols.account[i] = e.accountId
          cols.objectType[i] = e.objectType
          cols.objectId[i] = e.objectId
          cols.versionTs[i] = e.versionTs
          cols.apiVersion[i] = e.apiVersion
          cols.data[i] = JSON.stringify(e.data)
          cols.receivedAt[i] = e.receivedAt.toISOString()
        }
        const rows = yield* sql
          .unsafe<{ appended: number }>(append, [
            cols.id,
            cols.type,
            cols.source,
            cols.account,
            cols.objectType,
            cols.objectId,
            cols.versionTs,
            cols.apiVersion,
            cols.data,
            cols.receivedAt,
            sources,
            keys,
            values,
            t.channel
          ])
          .pipe(Effect.mapError(logError("append")))
        const appended = Number(rows[0]?.appended ?? 0)
        return { appended, skipped: n - appended }
      }),
    read: (after, options) => {
      const filter = typeFilter(options.types, 4)
      const text = readSql(t, filter.clause)
      return sql
        .unsafe<ReadRow>(text, [String(after.txid), String(after.position), options.limit, ...filter.params])
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
