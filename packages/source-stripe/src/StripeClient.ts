/**
 * The Stripe client every source uses: the official `stripe` SDK underneath (base URL configurable
 * for the emulator, API version pinned, the SDK's own retries off), with ours on top: typed errors,
 * bounded jittered retries of 429 / 5xx / network failures that honour `Stripe-Should-Retry` and
 * `Retry-After`, one token bucket per account shared by every stream plus one per endpoint, a cap
 * on requests in flight, and the `Date` header of each response as the snapshot's `versionTs`.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Layer,
  Option,
  Random,
  Redacted,
  type Scope
} from "effect"
import Stripe from "stripe"
import { BufferedHttpClient } from "./internal/httpClient.js"
import { endpointOf, withQuery } from "./internal/query.js"
import * as RateLimit from "./internal/rateLimit.js"
import {
  type Details,
  StripeAuthenticationError,
  type StripeError,
  StripeInvalidRequest,
  StripeNetworkError,
  StripeNotFound,
  StripePermissionError,
  StripeRateLimited,
  StripeServerError
} from "./StripeError.js"

/**
 * The API version every request is pinned to: the one the installed SDK is built for.
 *
 * @since 0.1.0
 */
export const apiVersion: string = Stripe.API_VERSION

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  readonly maxAttempts?: number
  /** First backoff delay (default 500 ms); doubles each attempt, jittered ×0.5–1.5. */
  readonly baseDelay?: Duration.DurationInput
  /** Cap on one backoff delay (default 20 s). */
  readonly maxDelay?: Duration.DurationInput
  /** Cap on a `Retry-After` wait (default 60 s). */
  readonly maxRetryAfter?: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly apiKey: Redacted.Redacted<string>
  /** Base URL of the API, e.g. the emulator's `http://127.0.0.1:12111` (default Stripe's). */
  readonly apiBase?: string | undefined
  /**
   * Requests per second per account: default 100 for a live key, 25 for a test key (Stripe's
   * documented limits).
   */
  readonly rateLimit?: number | undefined
  /** Requests per second per endpoint and account (default 25). */
  readonly endpointRateLimit?: number | undefined
  /** Requests in flight at most, over every account (default 32). */
  readonly maxInFlight?: number | undefined
  /** Timeout of one attempt (default 80 s, the SDK's). */
  readonly timeout?: Duration.DurationInput | undefined
  readonly retry?: RetryOptions | undefined
  /**
   * The key's own account (`acct_…`), when known: saves `GET /v1/account`, which a restricted key
   * may not be allowed to read.
   */
  readonly accountId?: string | undefined
}

/**
 * Per-request options.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** A connected account: the request carries `Stripe-Account`. */
  readonly account?: string | undefined
  /** An idempotency key for a POST. */
  readonly idempotencyKey?: string | undefined
}

/**
 * A list page; `versionTs` is the `Date` header of Stripe's response in unix seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListPage {
  readonly data: ReadonlyArray<Record<string, unknown>>
  readonly has_more: boolean
  readonly url: string
  readonly versionTs: number
}

/**
 * A response: the JSON body, the HTTP status and the `Date` header in unix seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly body: Record<string, unknown>
  readonly status: number
  readonly versionTs: number
  readonly requestId: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly apiVersion: string
  /** `GET` a list endpoint (`/v1/customers`) with query parameters. */
  readonly list: (
    path: string,
    params?: Readonly<Record<string, unknown>>,
    options?: RequestOptions
  ) => Effect.Effect<ListPage, StripeError>
  /** `GET` one object (`/v1/customers/cus_…`). */
  readonly retrieve: (
    path: string,
    params?: Readonly<Record<string, unknown>>,
    options?: RequestOptions
  ) => Effect.Effect<Response, StripeError>
  /** Any request; GET and DELETE parameters go in the query string, others in the form body. */
  readonly request: (
    method: "GET" | "POST" | "DELETE",
    path: string,
    params?: Readonly<Record<string, unknown>>,
    options?: RequestOptions
  ) => Effect.Effect<Response, StripeError>
  /**
   * The key's own account id: `Options.accountId`, else `GET /v1/account` (read once). A key that
   * may not read its account fails with a `StripePermissionError` that says what to do.
   */
  readonly platformAccountId: Effect.Effect<string, StripeError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class StripeClient extends Context.Tag("@stripe-sync/source-stripe/StripeClient")<
  StripeClient,
  Service
>() {}

/** The per-account limit Stripe documents for a key: live 100 req/s, test 25 req/s. */
export const defaultRateLimit = (apiKey: Redacted.Redacted<string>): number =>
  /^(sk|rk)_live_/.test(Redacted.value(apiKey)) ? 100 : 25

const secretPattern = /\b(sk|rk|pk|whsec)_(test|live)?_?[A-Za-z0-9*]{4,}/g
/** Stripe masks keys in its messages; scrub anything key-like anyway. */
const scrub = (s: string): string => s.replace(secretPattern, "<redacted>")

interface SdkFailure {
  readonly statusCode?: number
  readonly headers?: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly requestId?: string
  readonly code?: string
  readonly rawType?: string
  readonly type?: string
  readonly param?: string
  readonly message?: string
}

const asFailure = (u: unknown): SdkFailure =>
  typeof u === "object" && u !== null ? (u as SdkFailure) : { message: String(u) }

const header = (headers: SdkFailure["headers"], name: string): string | undefined => {
  const v = headers?.[name] ?? headers?.[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : typeof v === "string" ? v : undefined
}

/** What the retry loop needs to know about a failed attempt. */
interface Attempted {
  readonly error: StripeError
  /** `Stripe-Should-Retry`, when sent. */
  readonly shouldRetry: boolean | undefined
  readonly retryAfter: Duration.Duration | undefined
}

const classify = (u: unknown, endpoint: string): Attempted => {
  const f = asFailure(u)
  const status = f.statusCode
  const details: Details = {
    message: scrub(f.message ?? "Stripe request failed"),
    status,
    code: f.code,
    type: f.rawType,
    requestId: f.requestId ?? header(f.headers, "request-id"),
    endpoint
  }
  const should = header(f.headers, "stripe-should-retry")
  const shouldRetry = should === "true" ? true : should === "false" ? false : undefined
  const after = header(f.headers, "retry-after")
  const seconds = after !== undefined ? Number(after) : Number.NaN
  const retryAfter = Number.isFinite(seconds) && seconds >= 0 ? Duration.seconds(seconds) : undefined
  const result = (error: StripeError): Attempted => ({ error, shouldRetry, retryAfter })
  if (status === undefined || f.type === "StripeConnectionError") {
    return result(new StripeNetworkError(details))
  }
  if (status === 401) {
    return result(
      new StripeAuthenticationError({
        ...details,
        message: `Stripe rejected the API key (401): ${details.message} Check STRIPE_API_KEY / --stripe-api-key: it must be a secret (sk_…) or restricted (rk_…) key of this account and mode.`
      })
    )
  }
  if (status === 403) return result(new StripePermissionError(details))
  if (status === 429) return result(new StripeRateLimited(details))
  if (status >= 500) return result(new StripeServerError(details))
  if (status === 404 || f.code === "resource_missing")
    return result(new StripeNotFound({ ...details, param: f.param }))
  return result(new StripeInvalidRequest({ ...details, param: f.param }))
}

/** Retried unless Stripe says otherwise: 429, 5xx and network failures; any status Stripe says to retry. */
const retryable = (a: Attempted): boolean => {
  if (a.shouldRetry !== undefined) return a.shouldRetry && a.error._tag !== "StripeAuthenticationError"
  return (
    a.error._tag === "StripeRateLimited" ||
    a.error._tag === "StripeServerError" ||
    a.error._tag === "StripeNetworkError"
  )
}

const toVersionTs = (date: string | undefined): Effect.Effect<number> => {
  const ms = date !== undefined ? Date.parse(date) : Number.NaN
  return Number.isFinite(ms)
    ? Effect.succeed(Math.floor(ms / 1000))
    : Clock.currentTimeMillis.pipe(Effect.map((now) => Math.floor(now / 1000)))
}

interface RawResult {
  readonly body: Record<string, unknown>
  readonly status: number
  readonly headers: SdkFailure["headers"]
}

const hasLastResponse = (
  u: unknown
): u is { lastResponse: { statusCode?: number; headers?: SdkFailure["headers"] } } =>
  typeof u === "object" && u !== null && typeof (u as { lastResponse?: unknown }).lastResponse === "object"

/** Effect's built-in tracer, which records spans nobody reads unless a tracer is installed. */
const defaultTracer = Effect.runSync(Effect.tracer)

/**
 * A span per request when a tracer is installed (OpenTelemetry…); none with Effect's default one,
 * where a span costs about 100 µs of CPU per request and goes nowhere.
 */
const traced =
  (endpoint: string, account: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) =>
      tracer === defaultTracer
        ? effect
        : Effect.withSpan(effect, "StripeClient.request", {
            attributes: { endpoint, account },
            captureStackTrace: false
          })
    )

/**
 * Builds the client. Scoped: the rate limiters live as long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function* () {
    const base = options.apiBase ? new URL(options.apiBase) : undefined
    const timeout = Duration.toMillis(Duration.decode(options.timeout ?? "80 seconds"))
    const sdk = new Stripe(Redacted.value(options.apiKey), {
      apiVersion: Stripe.API_VERSION,
      maxNetworkRetries: 0,
      timeout,
      telemetry: false,
      httpClient: new BufferedHttpClient(),
      ...(base
        ? {
            host: base.hostname,
            protocol: base.protocol === "http:" ? ("http" as const) : ("https" as const),
            ...(base.port !== "" ? { port: Number(base.port) } : {})
          }
        : {})
    })
    const limiters = yield* RateLimit.make({
      perAccount: options.rateLimit ?? defaultRateLimit(options.apiKey),
      perEndpoint: options.endpointRateLimit ?? 25
    })
    const inFlight = RateLimit.makeGate(options.maxInFlight ?? 32)
    const retry = options.retry ?? {}
    const maxAttempts = Math.max(1, retry.maxAttempts ?? 8)
    const baseDelay = Duration.toMillis(Duration.decode(retry.baseDelay ?? "500 millis"))
    const maxDelay = Duration.toMillis(Duration.decode(retry.maxDelay ?? "20 seconds"))
    const maxRetryAfter = Duration.decode(retry.maxRetryAfter ?? "60 seconds")

    const once = (
      method: string,
      path: string,
      params: Readonly<Record<string, unknown>> | undefined,
      requestOptions: RequestOptions | undefined,
      endpoint: string
    ): Effect.Effect<RawResult, Attempted> =>
      Effect.tryPromise({
        try: () => {
          const inQuery = method === "GET" || method === "DELETE"
          return sdk.rawRequest(
            method,
            inQuery ? withQuery(path, params) : path,
            inQuery ? undefined : { ...params },
            {
              ...(requestOptions?.account ? { stripeAccount: requestOptions.account } : {}),
              ...(requestOptions?.idempotencyKey ? { idempotencyKey: requestOptions.idempotencyKey } : {})
            }
          ) as Promise<unknown>
        },
        catch: (u) => classify(u, endpoint)
      }).pipe(
        Effect.map((body): RawResult => {
          const last = hasLastResponse(body) ? body.lastResponse : undefined
          return {
            body: typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {},
            status: last?.statusCode ?? 200,
            headers: last?.headers
          }
        })
      )

    const backoff = (attempt: number, failed: Attempted): Effect.Effect<Duration.Duration> =>
      failed.retryAfter !== undefined
        ? Effect.succeed(Duration.min(failed.retryAfter, maxRetryAfter))
        : Random.nextRange(0.5, 1.5).pipe(
            Effect.map((jitter) => Duration.millis(Math.min(maxDelay, baseDelay * 2 ** attempt) * jitter))
          )

    const request = (
      method: "GET" | "POST" | "DELETE",
      path: string,
      params?: Readonly<Record<string, unknown>>,
      requestOptions?: RequestOptions
    ): Effect.Effect<Response, StripeError> => {
      const endpoint = endpointOf(method, path)
      const account = requestOptions?.account ?? "platform"
      const attempt = (n: number): Effect.Effect<RawResult, StripeError> =>
        limiters
          .limit(account, endpoint, inFlight.withPermit(once(method, path, params, requestOptions, endpoint)))
          .pipe(
            Effect.catchAll((failed) => {
              if (n + 1 >= maxAttempts || !retryable(failed)) return Effect.fail(failed.error)
              return backoff(n, failed).pipe(
                Effect.tap((delay) =>
                  Effect.logDebug("stripe request retried").pipe(
                    Effect.annotateLogs({
                      endpoint,
                      error: failed.error._tag,
                      status: failed.error.status ?? "none",
                      attempt: n + 1,
                      delay: Duration.format(delay)
                    })
                  )
                ),
                Effect.flatMap((delay) => Effect.sleep(delay)),
                Effect.zipRight(attempt(n + 1))
              )
            })
          )
      return attempt(0).pipe(
        Effect.flatMap((raw) =>
          toVersionTs(header(raw.headers, "date")).pipe(
            Effect.map(
              (versionTs): Response => ({
                body: raw.body,
                status: raw.status,
                versionTs,
                requestId: header(raw.headers, "request-id")
              })
            )
          )
        ),
        traced(endpoint, account)
      )
    }

    // read once; a failure is not kept (the next call asks again)
    let knownAccountId = options.accountId
    const platformAccountId: Effect.Effect<string, StripeError> = Effect.suspend(() =>
      knownAccountId !== undefined
        ? Effect.succeed(knownAccountId)
        : request("GET", "/v1/account").pipe(
            Effect.map((r) => String(r.body.id)),
            Effect.tap((id) => {
              knownAccountId = id
            }),
            Effect.mapError((error) =>
              error._tag === "StripePermissionError"
                ? new StripePermissionError({
                    ...error,
                    message: `this key may not read its own account (GET /v1/account): give the restricted key the Account read permission, or pass the account id (--account-id acct_…, STRIPE_ACCOUNT_ID). Stripe said: ${error.message}`
                  })
                : error
            )
          )
    )
    return {
      apiVersion,
      platformAccountId,
      request,
      retrieve: (path, params, requestOptions) => request("GET", path, params, requestOptions),
      list: (path, params, requestOptions) =>
        request("GET", path, params, requestOptions).pipe(
          Effect.map(
            (r): ListPage => ({
              data: Array.isArray(r.body.data) ? (r.body.data as ReadonlyArray<Record<string, unknown>>) : [],
              has_more: r.body.has_more === true,
              url: typeof r.body.url === "string" ? r.body.url : path.split("?")[0],
              versionTs: r.versionTs
            })
          )
        )
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StripeClient> =>
  Layer.scoped(StripeClient, make(options))

/**
 * The client from configuration: `STRIPE_API_KEY` (required), `STRIPE_API_BASE`,
 * `STRIPE_RATE_LIMIT`, `STRIPE_MAX_IN_FLIGHT`, `STRIPE_ACCOUNT_ID`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<StripeClient, ConfigError.ConfigError> = Layer.unwrapScoped(
  Effect.gen(function* () {
    const apiKey = yield* Config.redacted("STRIPE_API_KEY")
    const apiBase = yield* Config.option(Config.string("STRIPE_API_BASE"))
    const rateLimit = yield* Config.option(Config.integer("STRIPE_RATE_LIMIT"))
    const maxInFlight = yield* Config.option(Config.integer("STRIPE_MAX_IN_FLIGHT"))
    const accountId = yield* Config.option(Config.string("STRIPE_ACCOUNT_ID"))
    return layer({
      accountId: Option.getOrUndefined(accountId),
      apiKey,
      apiBase: Option.getOrUndefined(apiBase),
      rateLimit: Option.getOrUndefined(rateLimit),
      maxInFlight: Option.getOrUndefined(maxInFlight)
    })
  })
)
