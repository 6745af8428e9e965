/**
 * The Sigma source: rows of Sigma tables as events in the log (type `sigma.<table>.snapshot`, object
 * type `sigma.<table>`, object id the primary key, `versionTs` the run's `refreshed_at`).
 *
 * - Append-only tables (balance transactions, change events, …) are read incrementally by keyset on
 *   `(cursor timestamp, primary key)`, never past the run's `refreshed_at` (Sigma lags by hours: a
 *   row newer than it waits for a later run).
 * - Tables whose rows change in place (customers, subscriptions, invoices, …) are refreshed in full,
 *   page by page in primary key order, once their refresh interval has passed; a row that did not
 *   change since its last logged state appends nothing (the log skips a snapshot equal to the
 *   latest state of its object), so only changed rows become events.
 *
 * The cursor of each table (`sigma` / `<account>/<table>`) is committed with the rows of its page,
 * so a run killed between pages resumes without loss or duplicates.
 *
 * @since 0.1.0
 */
import { CursorStore, Event, Source } from "@stripe-sync/core"
import type { StripeClient } from "@stripe-sync/source-stripe"
import { Duration, Effect, Option, Stream } from "effect"
import * as SigmaQuery from "./SigmaQuery.js"
import type * as SigmaSchema from "./SigmaSchema.js"

/**
 * @since 0.1.0
 */
export const sourceName = "sigma"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly client: StripeClient.Service
  readonly tables: ReadonlyArray<SigmaSchema.Table>
  /** The account whose Sigma data this is (`client.platformAccountId` for the key's own). */
  readonly accountId: string
  /** A connected account: queries run with `Stripe-Account`. */
  readonly connected?: boolean | undefined
  readonly query?: SigmaQuery.Options | undefined
  /** Rows per query (default 5,000). */
  readonly pageSize?: number | undefined
  /** How often tables whose rows change are refreshed in full (default 24 hours). */
  readonly refreshInterval?: Duration.DurationInput | undefined
  /** Unix-seconds clock, for tests (default `Date.now`). */
  readonly now?: (() => number) | undefined
}

interface Incremental {
  readonly kind: "incremental"
  readonly ts: string | null
  readonly key: ReadonlyArray<string> | null
}
interface Refresh {
  readonly kind: "refresh"
  readonly lastRefreshedAt: number | null
  /** When the last full read started, by our clock (the refresh interval counts from it). */
  readonly lastStartedAt?: number | null | undefined
  readonly running: {
    readonly after: ReadonlyArray<string> | null
    readonly refreshedAt: number
    readonly startedAt?: number | undefined
  } | null
}
type Cursor = Incremental | Refresh

const literal = (value: string, sigmaType: string): string =>
  sigmaType === "bigint" || sigmaType === "double" || sigmaType.startsWith("decimal")
    ? String(Number(value))
    : sigmaType === "timestamp"
      ? `timestamp '${value.replace("T", " ").replace(/Z$/, "")}'`
      : `'${value.replace(/'/g, "''")}'`

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`

/** `(a, b) > (x, y)` spelled out (portable to Trino): `a > x OR (a = x AND b > y)`. */
const after = (columns: ReadonlyArray<readonly [string, string]>, values: ReadonlyArray<string>): string => {
  const [head, ...rest] = columns
  if (head === undefined) return "FALSE"
  const v = literal(values[0]!, head[1])
  return rest.length === 0
    ? `${ident(head[0])} > ${v}`
    : `(${ident(head[0])} > ${v} OR (${ident(head[0])} = ${v} AND ${after(rest, values.slice(1))}))`
}

/** The SQL of the next page. */
export const pageSql = (table: SigmaSchema.Table, cursor: Cursor, pageSize: number): string => {
  const types = new Map(table.columns)
  const keyColumns = table.primaryKey.map((k) => [k, types.get(k) ?? "varchar"] as const)
  if (cursor.kind === "incremental") {
    const ts = table.cursor!
    const order = [ts, ...table.primaryKey].map(ident).join(", ")
    const where =
      cursor.ts === null || cursor.key === null
        ? ""
        : ` WHERE ${after([[ts, "timestamp"], ...keyColumns], [cursor.ts, ...cursor.key])}`
    return `SELECT * FROM ${ident(table.name)}${where} ORDER BY ${order} LIMIT ${pageSize}`
  }
  const from = cursor.running?.after
  const where = from === null || from === undefined ? "" : ` WHERE ${after(keyColumns, from)}`
  return `SELECT * FROM ${ident(table.name)}${where} ORDER BY ${table.primaryKey.map(ident).join(", ")} LIMIT ${pageSize}`
}

/**
 * The source over the given tables, one after the other.
 *
 * @since 0.1.0
 */
export const make = (options: Options): Source.Source<SigmaQuery.SigmaError> => {
  const pageSize = options.pageSize ?? 5000
  const interval = Duration.toSeconds(Duration.decode(options.refreshInterval ?? "24 hours"))
  const now = options.now ?? (() => Math.floor(Date.now() / 1000))
  const queryOptions: SigmaQuery.Options = {
    ...options.query,
    account: options.connected ? options.accountId : undefined
  }

  const tableStream = (table: SigmaSchema.Table) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const store = yield* CursorStore.CursorStore
        const key = `${options.accountId}/${table.name}`
        const stored = yield* store.get(sourceName, key)
        const initial: Cursor = Option.match(stored, {
          onSome: (value) => value as Cursor,
          onNone: (): Cursor =>
            table.appendOnly
              ? { kind: "incremental", ts: null, key: null }
              : { kind: "refresh", lastRefreshedAt: null, running: null }
        })
        if (
          initial.kind === "refresh" &&
          initial.running === null &&
          initial.lastRefreshedAt !== null &&
          now() - (initial.lastStartedAt ?? initial.lastRefreshedAt) < interval
        ) {
          yield* Effect.logDebug(`sigma ${table.name}: refreshed less than ${interval} s ago`)
          return Stream.empty
        }
        const timestampColumns = new Set(table.columns.filter(([, t]) => t === "timestamp").map(([n]) => n))
        const normalise = (row: Readonly<Record<string, string | null>>): Record<string, string | null> => {
          const out: Record<string, string | null> = {}
          for (const [k, v] of Object.entries(row))
            out[k] = v !== null && timestampColumns.has(k) ? SigmaQuery.timestamp(v) : v
          return out
        }
        const keyOf = (row: Readonly<Record<string, string | null>>) =>
          table.primaryKey.map((k) => row[k] ?? "")
        const startedAt = now()
        return Stream.paginateEffect(initial, (cursor) =>
          Effect.gen(function* () {
            const result = yield* SigmaQuery.run(
              options.client,
              pageSql(table, cursor, pageSize),
              queryOptions
            )
            let rows = result.rows.map(normalise)
            let done = rows.length < pageSize
            if (cursor.kind === "incremental") {
              // never past refreshed_at: later rows wait for a later run
              const limit = result.refreshedAt * 1000
              const kept = rows.filter((r) => {
                const t = r[table.cursor!]
                return t !== null && t !== undefined && Date.parse(t) <= limit
              })
              if (kept.length < rows.length) done = true
              rows = kept
            }
            const versionTs =
              cursor.kind === "refresh" && cursor.running !== null
                ? cursor.running.refreshedAt
                : result.refreshedAt
            const events = rows.map((data) =>
              Event.snapshot({
                source: sourceName,
                accountId: options.accountId,
                objectType: `sigma.${table.name}`,
                objectId: keyOf(data).join("|"),
                versionTs: Math.max(0, versionTs),
                apiVersion: null,
                data
              })
            )
            const last = rows[rows.length - 1]
            const next: Cursor =
              cursor.kind === "incremental"
                ? last === undefined
                  ? cursor
                  : { kind: "incremental", ts: last[table.cursor!] ?? null, key: keyOf(last) }
                : done
                  ? {
                      kind: "refresh",
                      lastRefreshedAt: cursor.running?.refreshedAt ?? result.refreshedAt,
                      lastStartedAt: cursor.running?.startedAt ?? startedAt,
                      running: null
                    }
                  : {
                      kind: "refresh",
                      lastRefreshedAt: cursor.lastRefreshedAt,
                      lastStartedAt: cursor.lastStartedAt ?? null,
                      running: {
                        startedAt: cursor.running?.startedAt ?? startedAt,
                        after: last === undefined ? null : keyOf(last),
                        refreshedAt: cursor.running?.refreshedAt ?? result.refreshedAt
                      }
                    }
            yield* Effect.logDebug(`sigma ${table.name}: ${rows.length} rows`)
            const batch: Source.Batch = { events, cursors: [{ source: sourceName, key, value: next }] }
            return [batch, done ? Option.none<Cursor>() : Option.some(next)] as const
          })
        )
      })
    )

  return Source.makeRaw<SigmaQuery.SigmaError, never>({
    name: sourceName,
    read: Stream.fromIterable(options.tables).pipe(Stream.flatMap(tableStream))
  })
}
