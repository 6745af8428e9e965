/**
 * The emulator's router: method + path pattern (`/v1/invoices/:id/lines`) → handler. Modules add
 * their own routes through `EmulatorOptions.extensions` (a function receiving the router and the
 * emulator state), e.g. the Sigma query APIs.
 */
import type { IncomingHttpHeaders } from "node:http"
import type { Account } from "./Store.js"

/** An error answered in Stripe's error body: `{ "error": { type, code, message, param, … } }`. */
export class StripeApiError extends Error {
  readonly status: number
  readonly body: Record<string, unknown>
  readonly headers: Record<string, string>
  constructor(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
    super(typeof body.message === "string" ? body.message : "Stripe error")
    this.status = status
    this.body = body
    this.headers = headers
  }
}

/** `resource_missing` (404): "No such customer: 'cus_123'". */
export const resourceMissing = (object: string, id: string, param = "id", status = 404): StripeApiError =>
  new StripeApiError(status, {
    code: "resource_missing",
    doc_url: "https://stripe.com/docs/error-codes/resource-missing",
    message: `No such ${object.replace(/[._]/g, " ")}: '${id}'`,
    param,
    type: "invalid_request_error"
  })

export const invalidRequest = (message: string, param?: string, code?: string): StripeApiError =>
  new StripeApiError(400, {
    ...(code === undefined ? {} : { code }),
    message,
    ...(param === undefined ? {} : { param }),
    type: "invalid_request_error"
  })

/** A response other than JSON (e.g. a CSV file), or JSON with a status/headers of its own. */
export class RawReply {
  readonly status: number
  readonly body: string | Buffer
  readonly contentType: string
  readonly headers: Record<string, string>
  constructor(
    body: string | Buffer,
    options: { status?: number; contentType?: string; headers?: Record<string, string> } = {}
  ) {
    this.body = body
    this.status = options.status ?? 200
    this.contentType = options.contentType ?? "application/json"
    this.headers = options.headers ?? {}
  }
}

export interface RequestContext {
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  /** Path parameters of the matched pattern. */
  readonly params: Readonly<Record<string, string>>
  /** Query string and (for POST/DELETE) form body merged, parsed with bracket notation. */
  readonly input: Record<string, unknown>
  /** The raw request body. */
  readonly rawBody: string
  readonly headers: IncomingHttpHeaders
  /** The account the request is scoped to (`Stripe-Account`, else the platform). */
  readonly account: Account
  readonly requestId: string
  /** `Stripe-Version` of the request or the emulator's default. */
  readonly apiVersion: string
  /** The base URL of the emulator (`http://127.0.0.1:12111`). */
  readonly baseUrl: string
}

/** A handler answers a JSON-serialisable object (sent with status 200), a {@link RawReply}, or throws a {@link StripeApiError}. */
export type Handler = (ctx: RequestContext) => unknown

export interface RouteOptions {
  /** Whether the route needs an API key (default true). */
  readonly auth?: boolean
}

interface Route {
  readonly method: string
  readonly segments: ReadonlyArray<string>
  readonly handler: Handler
  readonly pattern: string
  readonly options: RouteOptions
}

export interface Match {
  readonly handler: Handler
  readonly params: Record<string, string>
  readonly pattern: string
  readonly options: RouteOptions
}

export class Router {
  private readonly exact = new Map<string, Route>()
  private readonly dynamic = new Map<string, Array<Route>>()

  add(method: string, pattern: string, handler: Handler, options: RouteOptions = {}): this {
    const m = method.toUpperCase()
    const segments = pattern.split("/")
    const route: Route = { method: m, segments, handler, pattern, options }
    if (segments.some((s) => s.startsWith(":"))) {
      let list = this.dynamic.get(m)
      if (list === undefined) {
        list = []
        this.dynamic.set(m, list)
      }
      list.push(route)
    } else if (!this.exact.has(`${m} ${pattern}`)) {
      this.exact.set(`${m} ${pattern}`, route)
    }
    return this
  }
  get(pattern: string, handler: Handler, options?: RouteOptions): this {
    return this.add("GET", pattern, handler, options)
  }
  post(pattern: string, handler: Handler, options?: RouteOptions): this {
    return this.add("POST", pattern, handler, options)
  }
  delete(pattern: string, handler: Handler, options?: RouteOptions): this {
    return this.add("DELETE", pattern, handler, options)
  }

  /** The first route added for a method and path wins; static paths before patterns. */
  match(method: string, path: string): Match | undefined {
    const e = this.exact.get(`${method} ${path}`)
    if (e !== undefined) return { handler: e.handler, params: {}, pattern: e.pattern, options: e.options }
    const list = this.dynamic.get(method)
    if (list === undefined) return undefined
    const parts = path.split("/")
    outer: for (const r of list) {
      if (r.segments.length !== parts.length) continue
      const params: Record<string, string> = {}
      for (let i = 0; i < parts.length; i++) {
        const s = r.segments[i]!
        if (s.startsWith(":")) {
          if (parts[i] === "") continue outer
          params[s.slice(1)] = decodeURIComponent(parts[i]!)
        } else if (s !== parts[i]) continue outer
      }
      return { handler: r.handler, params, pattern: r.pattern, options: r.options }
    }
    return undefined
  }
  /** Whether any method has a route for the path (for Stripe's 404 vs. method errors). */
  hasPath(path: string): boolean {
    for (const m of ["GET", "POST", "DELETE"]) if (this.match(m, path) !== undefined) return true
    return false
  }
}
