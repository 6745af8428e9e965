/**
 * Stripe Sigma: the Queries API (`POST /v2/data/query_runs`, `GET /v2/data/query_runs/:id`, inline
 * rows with `include[]=result.inline`, a CSV download) and the older query runs
 * (`POST /v1/sigma/query_runs`, `GET /v1/sigma/query_runs/:id`, the CSV at
 * `GET /v1/files/:id/contents`). The SQL runs on a real SQL engine: PGlite (PostgreSQL in WASM),
 * loaded with the Sigma tables filled from the account's objects as of `refreshed_at` (now minus the
 * refresh lag), plus the Trino functions Sigma queries use most. PGlite starts on the first query.
 */

import type { PGlite } from "@electric-sql/pglite"
import { stringify } from "csv-stringify/sync"
import { type SigmaTable, sigmaTables } from "../generated/sigmaTables.js"
import {
  invalidRequest,
  RawReply,
  type RequestContext,
  type Router,
  resourceMissing,
  StripeApiError
} from "../Router.js"
import type { Account, StripeObject } from "../Store.js"
import type { EmulatorCore } from "./core.js"

/** Sigma in the emulator. */
export interface SigmaOptions {
  /** `false`: every Sigma request gets Stripe's "not enabled" error (default `true`). */
  readonly enabled?: boolean
  /** Seconds Sigma's data lags behind the API: rows created later are not visible yet (default 0). */
  readonly lagSeconds?: number
}

const pgType = (sigmaType: string): string =>
  sigmaType === "varchar"
    ? "text"
    : sigmaType === "bigint"
      ? "bigint"
      : sigmaType === "timestamp"
        ? "timestamp"
        : sigmaType === "boolean"
          ? "boolean"
          : sigmaType === "double"
            ? "double precision"
            : sigmaType.startsWith("decimal")
              ? "numeric"
              : "text"

const q = (name: string) => `"${name.replace(/"/g, '""')}"`

/** A result column's Sigma type from PostgreSQL's type OID. */
const sigmaTypeOf = (oid: number): string =>
  oid === 20 || oid === 21 || oid === 23
    ? "bigint"
    : oid === 16
      ? "boolean"
      : oid === 700 || oid === 701
        ? "double"
        : oid === 1700
          ? "decimal"
          : oid === 1114 || oid === 1184 || oid === 1082
            ? "timestamp"
            : "varchar"

/** Trino functions Sigma users write most, as PostgreSQL functions. */
const trinoFunctions = `
CREATE FUNCTION from_unixtime(double precision) RETURNS timestamp LANGUAGE sql IMMUTABLE AS $$ SELECT to_timestamp($1) AT TIME ZONE 'UTC' $$;
CREATE FUNCTION to_unixtime(timestamp) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$ SELECT extract(epoch FROM $1 AT TIME ZONE 'UTC')::double precision $$;
CREATE FUNCTION date_add(text, bigint, timestamp) RETURNS timestamp LANGUAGE sql IMMUTABLE AS $$ SELECT $3 + ($2 || ' ' || $1)::interval $$;
CREATE FUNCTION date_diff(text, timestamp, timestamp) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE $1 WHEN 'second' THEN extract(epoch FROM $3 - $2)::bigint
    WHEN 'minute' THEN (extract(epoch FROM $3 - $2) / 60)::bigint
    WHEN 'hour' THEN (extract(epoch FROM $3 - $2) / 3600)::bigint
    WHEN 'day' THEN (extract(epoch FROM $3 - $2) / 86400)::bigint
    ELSE NULL END $$;
CREATE FUNCTION format_datetime(timestamp, text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char($1, replace(replace(replace(replace(replace($2, 'yyyy', 'YYYY'), 'dd', 'DD'), 'HH', 'HH24'), 'mm', 'MI'), 'ss', 'SS')) $$;
CREATE FUNCTION date_format(timestamp, text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char($1, replace(replace(replace(replace(replace(replace(replace(replace($2,
    '%Y', 'YYYY'), '%m', 'MM'), '%d', 'DD'), '%H', 'HH24'), '%i', 'MI'), '%s', 'SS'), '%S', 'SS'), '%M', 'FMMonth')) $$;
CREATE FUNCTION _distinct_count(text[]) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT count(DISTINCT x) FROM unnest($1) x $$;
CREATE FUNCTION _distinct_add(text[], text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN $2 IS NULL THEN $1 ELSE array_append($1, $2) END $$;
CREATE AGGREGATE approx_distinct(text) (SFUNC = _distinct_add, STYPE = text[], FINALFUNC = _distinct_count, INITCOND = '{}');
CREATE FUNCTION _distinct_add_n(text[], bigint) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN $2 IS NULL THEN $1 ELSE array_append($1, $2::text) END $$;
CREATE AGGREGATE approx_distinct(bigint) (SFUNC = _distinct_add_n, STYPE = text[], FINALFUNC = _distinct_count, INITCOND = '{}');
`

/** A column's value from an object: the field itself, or for `x_id` the id of the reference `x`. */
const columnValue = (o: StripeObject, name: string, type: string): unknown => {
  let v: unknown = (o as Record<string, unknown>)[name]
  if (v === undefined && name.endsWith("_id")) {
    const ref = (o as Record<string, unknown>)[name.slice(0, -3)]
    v = typeof ref === "object" && ref !== null ? (ref as { id?: unknown }).id : ref
  }
  if (v === undefined || v === null) return null
  if (type === "timestamp")
    return typeof v === "number" ? new Date(v * 1000).toISOString().slice(0, 19) : null
  if (typeof v === "object") return type === "varchar" ? JSON.stringify(v) : null
  if (type === "bigint" || type === "double" || type.startsWith("decimal"))
    return typeof v === "number" ? v : null
  if (type === "boolean") return typeof v === "boolean" ? v : null
  return String(v)
}

/** The rows of a table: the account's objects (subscription items from their subscriptions). */
const objectsOf = (account: Account, table: SigmaTable): ReadonlyArray<StripeObject> => {
  if (table.object === "subscription_item") {
    return account
      .truth("subscription")
      .flatMap((s) => (s.items as { data?: ReadonlyArray<StripeObject> } | undefined)?.data ?? [])
  }
  return account.truth(table.object)
}

/**
 * The rows of a Sigma table as Sigma holds them at `refreshedAt` (objects created later are not in it
 * yet), column by column; timestamps as `YYYY-MM-DDTHH:MM:SS` in UTC. `undefined`: no such table.
 */
export const sigmaRows = (
  account: Account,
  tableName: string,
  refreshedAt: number
): Array<Record<string, unknown>> | undefined => {
  const table = sigmaTables.find((t) => t.name === tableName)
  if (table === undefined) return undefined
  return objectsOf(account, table)
    .filter((o) => typeof o.created !== "number" || o.created <= refreshedAt)
    .map((o) => Object.fromEntries(table.columns.map(([n, type]) => [n, columnValue(o, n, type)])))
}

interface Run {
  readonly id: string
  readonly generation: "v1" | "v2"
  readonly account: string
  readonly sql: string
  readonly created: number
  status: "running" | "succeeded" | "failed"
  refreshedAt: number
  finishedAt: number | null
  columns: ReadonlyArray<{ name: string; type: string }>
  rows: ReadonlyArray<Record<string, unknown>>
  csv: string
  error: string | null
  fileId: string
}

const csvValue = (v: unknown): string =>
  v === null || v === undefined
    ? ""
    : v instanceof Date
      ? v
          .toISOString()
          .replace("T", " ")
          .replace(/\.000Z$|Z$/, "")
      : typeof v === "object"
        ? JSON.stringify(v)
        : String(v)

const jsonValue = (v: unknown): unknown =>
  v instanceof Date ? v.toISOString() : typeof v === "bigint" ? Number(v) : v

export const registerSigma = (router: Router, core: EmulatorCore, options: SigmaOptions = {}): void => {
  const runs = new Map<string, Run>()
  const files = new Map<string, Run>()
  const engines = new Map<string, Promise<PGlite>>()

  const engine = (account: Account): Promise<PGlite> => {
    let e = engines.get(account.id)
    if (e === undefined) {
      e = (async () => {
        const { PGlite } = await import("@electric-sql/pglite")
        const db = await PGlite.create()
        await db.exec(trinoFunctions)
        for (const t of sigmaTables) {
          await db.exec(
            `CREATE TABLE ${q(t.name)} (${t.columns.map(([n, type]) => `${q(n)} ${pgType(type)}`).join(", ")})`
          )
        }
        return db
      })()
      engines.set(account.id, e)
    }
    return e
  }

  /** Loads every table as of `refreshedAt` (objects created later are not in Sigma yet). */
  const load = async (db: PGlite, account: Account, refreshedAt: number) => {
    for (const t of sigmaTables) {
      const rows = sigmaRows(account, t.name, refreshedAt) ?? []
      await db.query(`DELETE FROM ${q(t.name)}`)
      if (rows.length > 0) {
        await db.query(
          `INSERT INTO ${q(t.name)} SELECT * FROM json_populate_recordset(NULL::${q(t.name)}, $1::json)`,
          [JSON.stringify(rows)]
        )
      }
    }
  }

  const notEnabled = () =>
    new StripeApiError(400, {
      message:
        "Sigma is not enabled for this account. Visit https://dashboard.stripe.com/sigma to start a subscription.",
      type: "invalid_request_error"
    })

  // one query at a time per account (each loads the tables as of its own refreshed_at)
  const queues = new Map<string, Promise<void>>()
  const execute = (run: Run, account: Account) => {
    const previous = queues.get(account.id) ?? Promise.resolve()
    const next = previous.then(async () => {
      try {
        const db = await engine(account)
        await load(db, account, run.refreshedAt)
        const result = await db.query<Record<string, unknown>>(run.sql)
        run.columns = result.fields.map((f) => ({ name: f.name, type: sigmaTypeOf(f.dataTypeID) }))
        run.rows = result.rows
        const header = run.columns.map((c) => c.name)
        run.csv = stringify([header, ...result.rows.map((r) => header.map((h) => csvValue(r[h])))])
        run.status = "succeeded"
      } catch (e) {
        run.status = "failed"
        run.error = e instanceof Error ? e.message : String(e)
      }
      run.finishedAt = core.now()
    })
    queues.set(
      account.id,
      next.catch(() => undefined)
    )
  }

  const start = (ctx: RequestContext, sql: unknown, generation: "v1" | "v2"): Run => {
    if (options.enabled === false) throw notEnabled()
    if (typeof sql !== "string" || sql.trim() === "") {
      throw invalidRequest(
        "Missing required param: sql.",
        generation === "v2" ? "query.sql" : "sql",
        "parameter_missing"
      )
    }
    const now = core.now()
    const run: Run = {
      id: generation === "v2" ? core.newId("qrun") : core.newId("sqr"),
      generation,
      account: ctx.account.id,
      sql,
      created: now,
      status: "running",
      refreshedAt: now - (options.lagSeconds ?? 0),
      finishedAt: null,
      columns: [],
      rows: [],
      csv: "",
      error: null,
      fileId: core.newId("file")
    }
    runs.set(run.id, run)
    files.set(run.fileId, run)
    execute(run, ctx.account)
    return run
  }

  const find = (ctx: RequestContext, id: string, generation: "v1" | "v2"): Run => {
    const run = runs.get(id)
    if (run === undefined || run.account !== ctx.account.id || run.generation !== generation) {
      throw resourceMissing(generation === "v2" ? "query run" : "sigma query run", id)
    }
    return run
  }

  const iso = (t: number) => new Date(t * 1000).toISOString()

  const v2 = (ctx: RequestContext, run: Run, inline: boolean) => ({
    id: run.id,
    object: "v2.data.query_run",
    created: iso(run.created),
    dataset: "analytical",
    format: "csv",
    livemode: false,
    query: { sql: run.sql },
    status: run.status,
    refreshed_at: iso(run.refreshedAt),
    status_details:
      run.status === "failed" ? { failed: { error: { code: "query_failed", message: run.error } } } : null,
    result:
      run.status !== "succeeded"
        ? null
        : {
            col_count: String(run.columns.length),
            file: {
              columns: run.columns.map((c) => ({ name: c.name, type: c.type })),
              content_type: "csv",
              size: Buffer.byteLength(run.csv),
              download_url: {
                url: `${ctx.baseUrl}/_emulator/sigma/files/${run.fileId}`,
                expires_at: iso(core.now() + 300)
              }
            },
            ...(inline
              ? {
                  inline: {
                    columns: run.columns.map((c) => ({ name: c.name, type: c.type })),
                    rows: run.rows.map((r) =>
                      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, jsonValue(v)]))
                    )
                  }
                }
              : {})
          }
  })

  const v1 = (run: Run) => ({
    id: run.id,
    object: "sigma.sigma_query_run",
    created: run.created,
    data_load_time: run.refreshedAt,
    error: run.status === "failed" ? { message: run.error } : null,
    finalized_at: run.finishedAt,
    livemode: false,
    result: run.status === "succeeded" ? { file: run.fileId } : null,
    sql: run.sql,
    status: run.status
  })

  const inlineRequested = (ctx: RequestContext) => {
    const include = ctx.input.include
    const values = Array.isArray(include) ? include : include === undefined ? [] : [include]
    return values.includes("result.inline")
  }

  router.post("/v2/data/query_runs", (ctx) => {
    const query = ctx.input.query as { sql?: unknown } | undefined
    return v2(ctx, start(ctx, query?.sql, "v2"), false)
  })
  router.get("/v2/data/query_runs/:id", (ctx) =>
    v2(ctx, find(ctx, ctx.params.id!, "v2"), inlineRequested(ctx))
  )
  router.post("/v1/sigma/query_runs", (ctx) => v1(start(ctx, ctx.input.sql, "v1")))
  router.get("/v1/sigma/query_runs/:id", (ctx) => v1(find(ctx, ctx.params.id!, "v1")))
  router.get("/v1/files/:id", (ctx) => {
    const run = files.get(ctx.params.id!)
    if (run === undefined || run.account !== ctx.account.id || run.status !== "succeeded") {
      throw resourceMissing("file", ctx.params.id!)
    }
    return {
      id: run.fileId,
      object: "file",
      created: run.finishedAt,
      expires_at: null,
      filename: `${run.id}.csv`,
      purpose: "sigma_query_run",
      size: Buffer.byteLength(run.csv),
      title: null,
      type: "csv",
      url: `${ctx.baseUrl}/v1/files/${run.fileId}/contents`
    }
  })
  router.get("/v1/files/:id/contents", (ctx) => {
    const run = files.get(ctx.params.id!)
    if (run === undefined || run.account !== ctx.account.id || run.status !== "succeeded") {
      throw resourceMissing("file", ctx.params.id!)
    }
    return new RawReply(run.csv, { contentType: "text/csv" })
  })
  // the pre-signed download of the Queries API (no key needed, like Stripe's signed URLs)
  router.get(
    "/_emulator/sigma/files/:id",
    (ctx) => {
      const run = files.get(ctx.params.id!)
      if (run === undefined || run.status !== "succeeded") throw resourceMissing("file", ctx.params.id!)
      return new RawReply(run.csv, { contentType: "text/csv" })
    },
    { auth: false }
  )
}
