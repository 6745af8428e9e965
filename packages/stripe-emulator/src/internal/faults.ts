/** Fault injection: latency, rate limits like Stripe's, random 5xx, dropped connections, scripted failures. */

export interface RateLimitOptions {
  /** Requests per second per account and mode, counted separately for reads and writes (Stripe: test 25, live 100). */
  readonly perSecond?: number
  /** Requests per second per account and endpoint (method + route), Stripe's default 25. */
  readonly perEndpointPerSecond?: number
  /** Value of `Stripe-Should-Retry` on 429 responses (default "true"; "omit" sends none). */
  readonly shouldRetry?: "true" | "false" | "omit"
}

/** A failure forced on the next `times` requests whose path starts with `path` (and method, if given). */
export interface ScriptedFault {
  readonly path: string
  readonly method?: string
  /** An HTTP status (429 → rate_limit error, 5xx → api_error, 404 → resource_missing) or "drop" (close the socket). */
  readonly status: number | "drop"
  readonly times: number
}

export interface FaultOptions {
  /** Added to every /v1 request: a fixed delay or a uniform range, in milliseconds. */
  readonly latencyMs?: number | { readonly min: number; readonly max: number }
  /** Probability that a request answers 500 `api_error`. */
  readonly errorRate?: number
  /** Probability that a request's connection is destroyed without an answer. */
  readonly dropRate?: number
  readonly rateLimit?: RateLimitOptions | null
  readonly script?: ReadonlyArray<ScriptedFault>
}

export interface MutableFaults {
  latencyMs: number | { min: number; max: number }
  errorRate: number
  dropRate: number
  rateLimit: RateLimitOptions | null
  script: Array<{ path: string; method?: string; status: number | "drop"; times: number }>
}

export const initialFaults = (o: FaultOptions | undefined): MutableFaults => ({
  latencyMs:
    o?.latencyMs === undefined ? 0 : typeof o.latencyMs === "number" ? o.latencyMs : { ...o.latencyMs },
  errorRate: o?.errorRate ?? 0,
  dropRate: o?.dropRate ?? 0,
  rateLimit: o?.rateLimit ?? null,
  script: (o?.script ?? []).map((s) => ({ ...s }))
})

/** Applies a partial update (the body of `POST /_emulator/faults`); `script` entries are appended. */
export const updateFaults = (f: MutableFaults, u: FaultOptions & { readonly reset?: boolean }): void => {
  if (u.reset === true) {
    const fresh = initialFaults(undefined)
    Object.assign(f, fresh)
  }
  if (u.latencyMs !== undefined)
    f.latencyMs = typeof u.latencyMs === "number" ? u.latencyMs : { ...u.latencyMs }
  if (u.errorRate !== undefined) f.errorRate = u.errorRate
  if (u.dropRate !== undefined) f.dropRate = u.dropRate
  if (u.rateLimit !== undefined) f.rateLimit = u.rateLimit
  if (u.script !== undefined) for (const s of u.script) f.script.push({ ...s })
}

/** Fixed one-second windows per key. */
export class RateLimiter {
  private window = 0
  private readonly counts = new Map<string, number>()
  /** Counts a request; false when the key is over `limit` in the current second. */
  take(key: string, limit: number, nowMs: number): boolean {
    const w = Math.floor(nowMs / 1000)
    if (w !== this.window) {
      this.window = w
      this.counts.clear()
    }
    const n = (this.counts.get(key) ?? 0) + 1
    this.counts.set(key, n)
    return n <= limit
  }
}
