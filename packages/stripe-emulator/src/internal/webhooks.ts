/** Webhook delivery: Stripe's signature scheme, retries with backoff, duplicates, reordering, delay. */
import { createHmac } from "node:crypto"
import type { StripeObject } from "../Store.js"
import { toJson } from "../Store.js"
import type { Rng } from "./prng.js"

export interface WebhookOptions {
  /** Backoff of retries after a non-2xx answer or a network error (default 1 s × 2^n, 8 attempts, at most 60 s apart). */
  readonly retry?: {
    readonly initialDelayMs?: number
    readonly factor?: number
    readonly maxAttempts?: number
    readonly maxDelayMs?: number
  }
  /** Probability that an event is delivered twice to an endpoint (default 0). */
  readonly duplicateRate?: number
  /** Each first attempt waits an extra random 0..window ms, so deliveries arrive out of order (default 0). */
  readonly reorderWindowMs?: number
  /** Fixed delay before the first attempt, in ms (default 0). */
  readonly delayMs?: number
  /** Per-attempt timeout in ms (default 10,000). */
  readonly timeoutMs?: number
  /** How many delivery records are kept for `deliveries()` (default 100,000; oldest dropped). */
  readonly maxRecorded?: number
}

export interface WebhookDelivery {
  readonly id: string
  readonly endpointId: string
  readonly url: string
  readonly eventId: string
  readonly eventType: string
  /** The account whose event this is. */
  readonly account: string
  readonly attempt: number
  /** HTTP status of the answer, 0 when the request failed. */
  readonly status: number
  readonly ok: boolean
  readonly error?: string
  /** Wall-clock ms when the attempt finished. */
  readonly at: number
  /** Whether this is the extra copy of a duplicated delivery. */
  readonly duplicate: boolean
  readonly payload: string
  readonly signature: string
}

/** `Stripe-Signature` for a payload: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload" with the secret>`. */
export const signPayload = (payload: string, secret: string, timestamp: number): string =>
  `t=${timestamp},v1=${createHmac("sha256", secret).update(`${timestamp}.${payload}`).digest("hex")}`

export const endpointMatches = (endpoint: StripeObject, type: string): boolean => {
  if (endpoint.status === "disabled") return false
  const events = endpoint.enabled_events
  return Array.isArray(events) && (events.includes("*") || events.includes(type))
}

export class WebhookDispatcher {
  readonly records: Array<WebhookDelivery> = []
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly controllers = new Set<AbortController>()
  private inFlight = 0
  private seq = 0
  private stopped = false
  options: WebhookOptions
  private readonly rng: Rng
  private readonly onDelivered: (account: string, eventId: string) => void

  constructor(options: WebhookOptions, rng: Rng, onDelivered: (account: string, eventId: string) => void) {
    this.options = options
    this.rng = rng
    this.onDelivered = onDelivered
  }

  /** Number of scheduled or running attempts. */
  get pending(): number {
    return this.timers.size + this.inFlight
  }

  dispatch(account: string, event: StripeObject, endpoint: StripeObject, secret: string): void {
    const payload = toJson(event)
    const first = (this.options.delayMs ?? 0) + this.rng.next() * (this.options.reorderWindowMs ?? 0)
    this.schedule(first, () => this.attempt(account, event, endpoint, secret, payload, 1, false))
    if (this.rng.chance(this.options.duplicateRate ?? 0)) {
      const again = first + this.rng.next() * Math.max(10, this.options.reorderWindowMs ?? 0)
      this.schedule(again, () => this.attempt(account, event, endpoint, secret, payload, 1, true))
    }
  }

  private schedule(ms: number, f: () => Promise<void>): void {
    if (this.stopped) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      void f()
    }, ms)
    this.timers.add(t)
  }

  private async attempt(
    account: string,
    event: StripeObject,
    endpoint: StripeObject,
    secret: string,
    payload: string,
    attempt: number,
    duplicate: boolean
  ): Promise<void> {
    if (this.stopped) return
    const url = endpoint.url as string
    const signature = signPayload(payload, secret, Math.floor(Date.now() / 1000))
    const controller = new AbortController()
    this.controllers.add(controller)
    const timeout = setTimeout(() => controller.abort(), this.options.timeoutMs ?? 10_000)
    this.inFlight++
    let status = 0
    let error: string | undefined
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json; charset=utf-8",
          "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
          "stripe-signature": signature
        },
        body: payload,
        signal: controller.signal
      })
      status = res.status
      await res.arrayBuffer().catch(() => undefined)
    } catch (e) {
      error = e instanceof Error ? e.message : String(e)
    } finally {
      clearTimeout(timeout)
      this.controllers.delete(controller)
      this.inFlight--
    }
    if (this.stopped) return
    const ok = status >= 200 && status < 300
    this.records.push({
      id: `whd_${++this.seq}`,
      endpointId: endpoint.id,
      url,
      eventId: event.id,
      eventType: event.type as string,
      account,
      attempt,
      status,
      ok,
      ...(error === undefined ? {} : { error }),
      at: Date.now(),
      duplicate,
      payload,
      signature
    })
    const max = this.options.maxRecorded ?? 100_000
    if (this.records.length > max) this.records.splice(0, this.records.length - max)
    if (ok) {
      if (!duplicate) this.onDelivered(account, event.id)
      return
    }
    const r = this.options.retry ?? {}
    if (attempt >= (r.maxAttempts ?? 8)) return
    const delay = Math.min(
      (r.initialDelayMs ?? 1000) * (r.factor ?? 2) ** (attempt - 1),
      r.maxDelayMs ?? 60_000
    )
    this.schedule(delay, () =>
      this.attempt(account, event, endpoint, secret, payload, attempt + 1, duplicate)
    )
  }

  stop(): void {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const c of this.controllers) c.abort()
  }
}
