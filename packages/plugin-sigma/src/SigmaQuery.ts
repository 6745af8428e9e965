/**
 * Runs one Sigma SQL query and returns its rows: through Stripe's Queries API (the default, which
 * Stripe names for new integrations: `POST /v2/data/query_runs`, polled until `succeeded` or
 * `failed`, rows inline) or through the older query runs (`POST /v1/sigma/query_runs`, the CSV file
 * at `/v1/files/:id/contents`). Requests go through the shared `StripeClient` (its rate limiter and
 * retries); CSV files are parsed with `csv-parse`.
 *
 * @since 0.1.0
 */
import type { StripeClient, StripeError } from "@stripe-sync/source-stripe"
import { parse } from "csv-parse/sync"
import { Data, Duration, Effect, Redacted } from "effect"

/** Sigma is not enabled on the account (or has no data for a test-mode key). */
export class SigmaNotEnabled extends Data.TaggedError("SigmaNotEnabled")<{ readonly message: string }> {}

/** A query run failed: Stripe's message, and the SQL. */
export class SigmaQueryFailed extends Data.TaggedError("SigmaQueryFailed")<{
  readonly message: string
  readonly sql: string
}> {}

/** A result file could not be downloaded or read. */
export class SigmaResultUnreadable extends Data.TaggedError("SigmaResultUnreadable")<{
  readonly message: string
}> {}

/**
 * @since 0.1.0
 * @category models
 */
export type SigmaError = SigmaNotEnabled | SigmaQueryFailed | SigmaResultUnreadable | StripeError.StripeError

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `queries` (`/v2/data/query_runs`, default) or `query_runs` (`/v1/sigma/query_runs` + files). */
  readonly api?: "queries" | "query_runs" | undefined
  /** The key, for the CSV files of `query_runs` (files are served by Stripe's files host). */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Base URL of the files host (default `https://files.stripe.com`; the emulator serves them itself). */
  readonly filesBase?: string | undefined
  /** A connected account: the query runs with `Stripe-Account`. */
  readonly account?: string | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How long a run may take (default 10 minutes). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Rows as text (`null` for an empty value), as Sigma's CSV has them; timestamps are normalised by
 * `timestamp`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Result {
  /** Unix seconds: Sigma's data was complete up to this time. */
  readonly refreshedAt: number
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<Readonly<Record<string, string | null>>>
}

const notEnabled =
  /sigma.*(not (been )?enabled|not available|subscription)|no sigma|does not have access to sigma/i

const classify =
  (sql: string) =>
  (error: StripeError.StripeError): SigmaError =>
    (error._tag === "StripeInvalidRequest" || error._tag === "StripePermissionError") &&
    notEnabled.test(error.message)
      ? new SigmaNotEnabled({
          message: `Sigma is not available on this account (${error.message}); the rest of the sync goes on without it`
        })
      : error._tag === "StripeInvalidRequest" && error.status === 400
        ? new SigmaQueryFailed({ message: error.message, sql })
        : error

/**
 * A timestamp as ISO 8601 in UTC, whether Sigma wrote it with a zone (`…Z`, `…+00:00`) or without
 * one (`2024-01-31 12:00:00`, which Sigma means as UTC). Anything else is returned as it was.
 *
 * @since 0.1.0
 */
export const timestamp = (text: string): string => {
  const hasZone = /(Z|[+-]\d\d(:?\d\d)?)$/i.test(text)
  const ms = Date.parse(hasZone ? text.replace(" ", "T") : `${text.replace(" ", "T")}Z`)
  return Number.isNaN(ms) ? text : new Date(ms).toISOString()
}

/**
 * Parses a Sigma CSV file: a header row, quoted fields with commas, quotes and newlines, empty
 * values as `null`.
 *
 * @since 0.1.0
 */
export const parseCsv = (
  text: string
): {
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<Record<string, string | null>>
} => {
  const records = parse(text, {
    record_delimiter: ["\r\n", "\n"],
    skip_empty_lines: true,
    bom: true
  }) as Array<Array<string>>
  const [header = [], ...body] = records
  return {
    columns: header,
    rows: body.map((r) =>
      Object.fromEntries(header.map((h, i) => [h, r[i] === "" || r[i] === undefined ? null : r[i]!]))
    )
  }
}

const textOf = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === "object" ? JSON.stringify(v) : String(v)

const unixOf = (v: unknown): number =>
  typeof v === "number" ? v : typeof v === "string" ? Math.floor(Date.parse(v) / 1000) : Number.NaN

const download = (url: string, headers: Record<string, string>) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, { headers })
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      return response.text()
    },
    catch: (cause) =>
      new SigmaResultUnreadable({
        message: `could not download the query result: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

const parseText = (text: string) =>
  Effect.try({
    try: () => parseCsv(text),
    catch: (cause) =>
      new SigmaResultUnreadable({
        message: `the query result is not valid CSV: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

/**
 * Runs `sql` and waits for its rows.
 *
 * @since 0.1.0
 */
export const run = (
  client: StripeClient.Service,
  sql: string,
  options: Options = {}
): Effect.Effect<Result, SigmaError> =>
  Effect.gen(function* () {
    const requestOptions = { account: options.account }
    const poll = Duration.decode(options.pollInterval ?? "500 millis")
    const deadline = Date.now() + Duration.toMillis(Duration.decode(options.timeout ?? "10 minutes"))
    const waitFor = <A>(get: Effect.Effect<A, SigmaError>, done: (a: A) => boolean) =>
      Effect.gen(function* () {
        for (;;) {
          const current = yield* get
          if (done(current)) return current
          if (Date.now() > deadline) {
            return yield* new SigmaQueryFailed({ message: "the query run did not finish in time", sql })
          }
          yield* Effect.sleep(poll)
        }
      })

    if ((options.api ?? "queries") === "queries") {
      const created = yield* client.request("POST", "/v2/data/query_runs", { query: { sql } }, requestOptions)
      const id = String(created.body.id)
      const finished = yield* waitFor(
        Effect.map(
          client.request(
            "GET",
            `/v2/data/query_runs/${encodeURIComponent(id)}`,
            { "include[]": "result.inline" },
            requestOptions
          ),
          (r) => r.body
        ),
        (body) => body.status !== "running" && body.status !== "pending"
      )
      if (finished.status !== "succeeded") {
        const details = finished.status_details as { failed?: { error?: { message?: string } } } | null
        return yield* new SigmaQueryFailed({
          message: details?.failed?.error?.message ?? `the query run ended ${String(finished.status)}`,
          sql
        })
      }
      const refreshedAt = unixOf(finished.refreshed_at)
      const result = finished.result as {
        inline?: { rows?: ReadonlyArray<Record<string, unknown>>; columns?: ReadonlyArray<{ name: string }> }
        file?: { download_url?: { url?: string } }
      } | null
      if (result?.inline?.rows !== undefined) {
        const rows = result.inline.rows.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, textOf(v)]))
        )
        const columns = result.inline.columns?.map((c) => c.name) ?? Object.keys(rows[0] ?? {})
        return { refreshedAt, columns, rows }
      }
      const url = result?.file?.download_url?.url
      if (url === undefined)
        return yield* new SigmaResultUnreadable({ message: "the query run has no result" })
      const parsed = yield* parseText(yield* download(url, {}))
      return { refreshedAt, ...parsed }
    }

    const created = yield* client.request("POST", "/v1/sigma/query_runs", { sql }, requestOptions)
    const id = String(created.body.id)
    const finished = yield* waitFor(
      Effect.map(
        client.request("GET", `/v1/sigma/query_runs/${encodeURIComponent(id)}`, {}, requestOptions),
        (r) => r.body
      ),
      (body) => body.status !== "running" && body.status !== "pending"
    )
    if (finished.status !== "succeeded" && finished.status !== "completed") {
      const error = finished.error as { message?: string } | null
      return yield* new SigmaQueryFailed({
        message: error?.message ?? `the query run ended ${String(finished.status)}`,
        sql
      })
    }
    const fileId = (finished.result as { file?: string } | null)?.file
    if (fileId === undefined)
      return yield* new SigmaResultUnreadable({ message: "the query run has no result file" })
    const headers: Record<string, string> = {
      ...(options.apiKey ? { Authorization: `Bearer ${Redacted.value(options.apiKey)}` } : {}),
      ...(options.account ? { "Stripe-Account": options.account } : {})
    }
    const text = yield* download(
      `${(options.filesBase ?? "https://files.stripe.com").replace(/\/$/, "")}/v1/files/${encodeURIComponent(fileId)}/contents`,
      headers
    )
    const parsed = yield* parseText(text)
    const loaded = unixOf(finished.data_load_time)
    return { refreshedAt: Number.isNaN(loaded) ? Number(finished.created) : loaded, ...parsed }
  }).pipe(
    Effect.mapError((e) =>
      "_tag" in e && e._tag.startsWith("Stripe") ? classify(sql)(e as StripeError.StripeError) : e
    )
  )
