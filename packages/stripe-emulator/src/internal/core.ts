/** The emulator's state and its HTTP request pipeline (plain node:http on the hot path). */
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { createServer } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import qs from "qs"
import { RawReply, type RequestContext, Router, StripeApiError } from "../Router.js"
import { Account, type StripeObject, toJsonBuffer } from "../Store.js"
import { type FaultOptions, initialFaults, type MutableFaults, RateLimiter } from "./faults.js"
import { generateAccount } from "./generate.js"
import { Rng } from "./prng.js"
import {
  WebhookDispatcher as Dispatcher,
  endpointMatches,
  type WebhookDispatcher,
  type WebhookOptions
} from "./webhooks.js"

export const DEFAULT_API_VERSION = "2026-10-28.endive"

export interface CoreOptions {
  readonly port?: number
  readonly host?: string
  readonly seed?: string | number
  readonly scale?: number
  readonly connectedAccounts?: number
  readonly connectedScale?: number
  readonly generate?: boolean
  readonly clock?: () => number
  readonly epoch?: number
  readonly apiVersion?: string
  readonly restrictedKeys?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly faults?: FaultOptions
  readonly webhooks?: WebhookOptions
  readonly extensions?: ReadonlyArray<(router: Router, core: EmulatorCore) => void>
}

export interface Stats {
  requests: number
  byPath: Record<string, Record<string, number>>
}

/** Object type → the prefix of its event types. */
export const eventPrefix = (objectType: string): string =>
  objectType === "subscription"
    ? "customer.subscription"
    : objectType === "tax_id"
      ? "customer.tax_id"
      : objectType === "discount"
        ? "customer.discount"
        : objectType

export class EmulatorCore {
  readonly options: CoreOptions
  readonly rng: Rng
  readonly platform: Account
  readonly accounts = new Map<string, Account>()
  readonly router = new Router()
  readonly faults: MutableFaults
  readonly stats: Stats = { requests: 0, byPath: {} }
  readonly webhooks: WebhookDispatcher
  /** Webhook endpoint secrets by endpoint id (the object itself shows it only at creation). */
  readonly secrets = new Map<string, string>()
  readonly apiVersion: string
  readonly clock: () => number
  private readonly faultRng: Rng
  private readonly limiter = new RateLimiter()
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private requestSeq = 0
  private readonly requestRng = new Rng(`requests:${Date.now()}`)
  baseUrl = ""
  /** Listeners of every recorded event (after it is stored). */
  readonly listeners = new Set<(account: Account, event: StripeObject) => void>()

  constructor(options: CoreOptions) {
    this.options = options
    this.clock = options.clock ?? Date.now
    this.apiVersion = options.apiVersion ?? DEFAULT_API_VERSION
    const seed = String(options.seed ?? "stripe-sync")
    this.rng = new Rng(seed)
    this.faultRng = new Rng(`${seed}:faults`)
    this.faults = initialFaults(options.faults)
    this.webhooks = new Dispatcher(options.webhooks ?? {}, new Rng(`${seed}:webhooks`), (acct, eventId) =>
      this.onDelivered(acct, eventId)
    )
    const idRng = new Rng(`${seed}:accounts`)
    this.platform = new Account(`acct_1${idRng.chars(15)}`, false)
    this.accounts.set(this.platform.id, this.platform)
    const epoch = options.epoch ?? Math.floor(this.clock() / 1000)
    const connected: Array<Account> = []
    for (let i = 0; i < (options.connectedAccounts ?? 0); i++) {
      const a = new Account(`acct_1${idRng.chars(15)}`, true)
      connected.push(a)
      this.accounts.set(a.id, a)
    }
    if (options.generate !== false) {
      generateAccount({
        rng: new Rng(`${seed}:platform`),
        account: this.platform,
        scale: options.scale ?? 1,
        epoch,
        destinations: connected.map((a) => a.id)
      })
      for (const [i, a] of connected.entries())
        generateAccount({
          rng: new Rng(`${seed}:connected:${i}`),
          account: a,
          scale: options.connectedScale ?? options.scale ?? 1,
          epoch,
          destinations: []
        })
    }
  }

  /** Stripe's clock: unix seconds. */
  now(): number {
    return Math.floor(this.clock() / 1000)
  }

  account(id: string): Account | undefined {
    return this.accounts.get(id)
  }

  private idSeq = 0
  /**
   * An id for an object created at run time. Its leading characters count up, so objects and events
   * created within one second list newest first (Stripe orders by `created`, then id, descending).
   */
  newId(prefix: string): string {
    const n = ++this.idSeq
    let c = ""
    for (let x = n, i = 0; i < 7; i++, x = Math.floor(x / 62)) c = B62[x % 62] + c
    const short = prefix === "cus" || prefix === "prod" || prefix === "si" || prefix === "cn"
    return `${prefix}_${short ? `${c}${this.rng.chars(7)}` : `2${c}${this.rng.chars(16)}`}`
  }

  newRequestId(): string {
    return `req_${(++this.requestSeq).toString(36).padStart(6, "0")}${this.requestRng.chars(8)}`
  }

  // ---------------------------------------------------------------------------------------------
  // Events

  /** Records an event of `account` about `object` and delivers it to the matching webhook endpoints. */
  emit(
    account: Account,
    type: string,
    object: StripeObject,
    previous?: Record<string, unknown>,
    requestId?: string | null
  ): StripeObject {
    const endpoints = this.endpointsFor(account, type)
    const event: StripeObject = {
      id: this.newId("evt"),
      object: "event",
      ...(account.connected ? { account: account.id } : {}),
      api_version: this.apiVersion,
      created: this.now(),
      data: previous === undefined ? { object } : { object, previous_attributes: previous },
      livemode: false,
      pending_webhooks: endpoints.length,
      request: { id: requestId ?? null, idempotency_key: null },
      type
    }
    account.collection("event").insert(event)
    for (const l of this.listeners) l(account, event)
    for (const ep of endpoints) this.webhooks.dispatch(account.id, event, ep, this.secrets.get(ep.id) ?? "")
    return event
  }

  private endpointsFor(account: Account, type: string): Array<StripeObject> {
    const out: Array<StripeObject> = []
    for (const ep of account.collection("webhook_endpoint").items)
      if (ep.connect !== true && endpointMatches(ep, type)) out.push(ep)
    if (account.connected)
      for (const ep of this.platform.collection("webhook_endpoint").items)
        if (ep.connect === true && endpointMatches(ep, type)) out.push(ep)
    return out
  }

  private onDelivered(accountId: string, eventId: string): void {
    const events = this.accounts.get(accountId)?.collection("event")
    const ev = events?.get(eventId)
    if (events && ev && typeof ev.pending_webhooks === "number" && ev.pending_webhooks > 0)
      events.replace({ ...ev, pending_webhooks: ev.pending_webhooks - 1 })
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  async listen(): Promise<string> {
    const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.onRequest(req, res))
    server.on("connection", (s) => {
      this.sockets.add(s)
      s.on("close", () => this.sockets.delete(s))
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        server.off("error", reject)
        resolve()
      })
    })
    const addr = server.address() as AddressInfo
    const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address
    this.baseUrl = `http://${host}:${addr.port}`
    return this.baseUrl
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0
  }

  async close(): Promise<void> {
    this.webhooks.stop()
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of this.sockets) s.destroy()
    })
  }

  private count(pattern: string, status: number): void {
    if (!pattern.startsWith("/v")) return
    this.stats.requests++
    let p = this.stats.byPath[pattern]
    if (p === undefined) {
      p = {}
      this.stats.byPath[pattern] = p
    }
    const k = String(status)
    p[k] = (p[k] ?? 0) + 1
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const raw = chunks.length === 0 ? "" : Buffer.concat(chunks).toString("utf8")
      this.handle(req, res, raw).catch((e: unknown) => {
        this.send(res, 500, apiErrorBody(String(e)), this.newRequestId(), this.apiVersion, {})
      })
    })
  }

  private send(
    res: ServerResponse,
    status: number,
    body: string | Buffer,
    requestId: string,
    version: string,
    headers: Record<string, string>,
    contentType = "application/json"
  ): void {
    if (res.destroyed) return
    res.writeHead(status, {
      "Content-Type": contentType,
      "Content-Length": typeof body === "string" ? Buffer.byteLength(body) : body.length,
      "Request-Id": requestId,
      "Stripe-Version": version,
      "Access-Control-Allow-Origin": "*",
      ...headers
    })
    res.end(body)
  }

  private async handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const method = req.method ?? "GET"
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q < 0 ? url : url.slice(0, q)
    const query = q < 0 ? "" : url.slice(q + 1)
    const requestId = this.newRequestId()
    const versionHeader = req.headers["stripe-version"]
    const version =
      typeof versionHeader === "string" && versionHeader !== "" ? versionHeader : this.apiVersion
    const isApi = path.startsWith("/v1/") || path.startsWith("/v2/")
    const match = this.router.match(method, path)
    const pattern = match?.pattern ?? (isApi ? path : "(unmatched)")

    const fail = (e: StripeApiError) => {
      this.count(pattern, e.status)
      this.send(res, e.status, JSON.stringify({ error: e.body }), requestId, version, e.headers)
    }

    try {
      if (isApi) {
        await this.injectFaults(method, path, res)
        if (res.destroyed) {
          this.count(pattern, 0)
          return
        }
      }
      const needsAuth = match === undefined ? isApi : match.options.auth !== false
      let account = this.platform
      if (needsAuth) {
        const key = this.authenticate(req)
        this.authorize(key, method, path, account.id)
        const sa = req.headers["stripe-account"]
        if (typeof sa === "string" && sa !== "" && sa !== this.platform.id) {
          const a = this.accounts.get(sa)
          if (a === undefined)
            throw new StripeApiError(403, {
              code: "account_invalid",
              doc_url: "https://stripe.com/docs/error-codes/account-invalid",
              message: `The provided key '${redactKey(key)}' does not have access to account '${sa}' (or that account does not exist). Application access may have been revoked.`,
              type: "invalid_request_error"
            })
          account = a
        }
        if (isApi) this.rateLimit(method, pattern, account.id)
      }
      if (match === undefined) {
        throw new StripeApiError(404, {
          message: `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
          type: "invalid_request_error"
        })
      }
      let input: Record<string, unknown> =
        query === "" ? {} : (qs.parse(query, QS) as Record<string, unknown>)
      if (raw !== "" && method !== "GET") {
        const ct = req.headers["content-type"] ?? ""
        const body = ct.includes("json")
          ? (JSON.parse(raw) as Record<string, unknown>)
          : (qs.parse(raw, QS) as Record<string, unknown>)
        input = { ...input, ...body }
      }
      const ctx: RequestContext = {
        method,
        path,
        params: match.params,
        input,
        rawBody: raw,
        headers: req.headers,
        account,
        requestId,
        apiVersion: version,
        baseUrl: this.baseUrl
      }
      const out = await match.handler(ctx)
      if (out instanceof RawReply) {
        this.count(pattern, out.status)
        this.send(res, out.status, out.body, requestId, version, out.headers, out.contentType)
      } else {
        this.count(pattern, 200)
        this.send(res, 200, typeof out === "string" ? out : JSON.stringify(out), requestId, version, {})
      }
    } catch (e) {
      if (e instanceof StripeApiError) return fail(e)
      if (e instanceof SyntaxError)
        return fail(new StripeApiError(400, { message: "Invalid JSON body", type: "invalid_request_error" }))
      return fail(
        new StripeApiError(500, { message: `Internal emulator error: ${String(e)}`, type: "api_error" })
      )
    }
  }

  private async injectFaults(method: string, path: string, res: ServerResponse): Promise<void> {
    const f = this.faults
    const lat =
      typeof f.latencyMs === "number"
        ? f.latencyMs
        : f.latencyMs.min + this.faultRng.next() * (f.latencyMs.max - f.latencyMs.min)
    if (lat > 0) await new Promise((r) => setTimeout(r, lat))
    for (let i = 0; i < f.script.length; i++) {
      const s = f.script[i]!
      if (!path.startsWith(s.path) || (s.method !== undefined && s.method.toUpperCase() !== method)) continue
      if (--s.times <= 0) f.script.splice(i, 1)
      if (s.status === "drop") {
        res.socket?.destroy()
        res.destroy()
        return
      }
      throw scriptedError(s.status, path)
    }
    if (f.dropRate > 0 && this.faultRng.chance(f.dropRate)) {
      res.socket?.destroy()
      res.destroy()
      return
    }
    if (f.errorRate > 0 && this.faultRng.chance(f.errorRate)) throw scriptedError(500, path)
  }

  private rateLimit(method: string, pattern: string, account: string): void {
    const rl = this.faults.rateLimit
    if (rl === null) return
    const now = Date.now()
    const kind = method === "GET" ? "read" : "write"
    const okGlobal = rl.perSecond === undefined || this.limiter.take(`${account}:${kind}`, rl.perSecond, now)
    const okEndpoint =
      rl.perEndpointPerSecond === undefined ||
      this.limiter.take(`${account}:${method} ${pattern}`, rl.perEndpointPerSecond, now)
    if (okGlobal && okEndpoint) return
    const retry = rl.shouldRetry ?? "true"
    throw new StripeApiError(429, rateLimitBody(), retry === "omit" ? {} : { "Stripe-Should-Retry": retry })
  }

  private authenticate(req: IncomingMessage): string {
    const h = req.headers.authorization
    let key: string | undefined
    if (typeof h === "string") {
      if (h.startsWith("Bearer ")) key = h.slice(7).trim()
      else if (h.startsWith("Basic ")) key = Buffer.from(h.slice(6), "base64").toString("utf8").split(":")[0]
    }
    if (key === undefined || key === "")
      throw new StripeApiError(401, {
        message:
          "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        type: "invalid_request_error"
      })
    const valid =
      /^sk_test_[A-Za-z0-9_]+$/.test(key) ||
      (key.startsWith("rk_test_") && this.options.restrictedKeys?.[key] !== undefined)
    if (!valid)
      throw new StripeApiError(401, {
        code: "api_key_invalid",
        doc_url: "https://stripe.com/docs/error-codes/api-key-invalid",
        message: `Invalid API Key provided: ${redactKey(key)}`,
        type: "invalid_request_error"
      })
    return key
  }

  /** Restricted keys: permissions like `customers:read`, `invoices:write`, `*:read` (write implies read). */
  private authorize(key: string, method: string, path: string, accountId: string): void {
    if (!key.startsWith("rk_")) return
    const perms = this.options.restrictedKeys?.[key] ?? []
    const resource = resourceOf(path)
    const need = method === "GET" ? "read" : "write"
    const has = (r: string) =>
      perms.includes(`${r}:write`) || (need === "read" && perms.includes(`${r}:read`))
    if (has(resource) || has("*")) return
    throw new StripeApiError(403, {
      message: `The provided key '${redactKey(key)}' does not have the required permissions for this endpoint on account '${accountId}'. Having the 'rak_${resource.replace(/s$/, "")}_${need}' permission would allow this request to continue.`,
      type: "invalid_request_error"
    })
  }

  /** The JSON of an object as a response body (cached by identity). */
  json(o: StripeObject): RawReply {
    return new RawReply(toJsonBuffer(o))
  }
}

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

const QS = { arrayLimit: 1000, depth: 10, parameterLimit: 10_000 }

/** First path segment after the version: `/v1/checkout/sessions` → `checkout`. */
const resourceOf = (path: string): string => path.split("/")[2] ?? ""

const redactKey = (key: string): string =>
  key.length <= 12 ? key : `${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`

const apiErrorBody = (message: string): string => JSON.stringify({ error: { message, type: "api_error" } })

const rateLimitBody = (): Record<string, unknown> => ({
  code: "rate_limit",
  doc_url: "https://stripe.com/docs/error-codes/rate-limit",
  message:
    "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
  type: "invalid_request_error"
})

const scriptedError = (status: number, path: string): StripeApiError => {
  if (status === 429) return new StripeApiError(429, rateLimitBody(), { "Stripe-Should-Retry": "true" })
  if (status === 404)
    return new StripeApiError(404, {
      code: "resource_missing",
      message: `No such object: '${path.split("/").pop() ?? ""}'`,
      type: "invalid_request_error"
    })
  if (status >= 500)
    return new StripeApiError(status, {
      message: "An unknown error occurred while processing your request. Please try again.",
      type: "api_error"
    })
  return new StripeApiError(status, { message: "Injected error", type: "invalid_request_error" })
}
