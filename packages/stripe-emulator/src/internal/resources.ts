/** The /v1 routes: generated resources (list, retrieve), writes, events, webhook endpoints, empty lists. */
import { randomBytes } from "node:crypto"
import { sdkListPaths } from "../generated/templates.js"
import {
  invalidRequest,
  RawReply,
  type RequestContext,
  type Router,
  resourceMissing,
  StripeApiError
} from "../Router.js"
import { type Account, type StripeObject, toJsonBuffer } from "../Store.js"
import type { EmulatorCore } from "./core.js"
import {
  expandAll,
  listReply,
  pageArray,
  pageCollection,
  parseExpand,
  parseInteger,
  parseListParams
} from "./list.js"
import { embedded, make } from "./objects.js"
import * as Ops from "./operations.js"

/**
 * A list filter: `test(o, v)` for the param's value `v`. With `index`, the objects that can pass are
 * exactly those whose `keyOf(o)` is `key(v)` (as `===`), read from the collection's secondary index
 * `name` instead of a scan (lists filtered by a parent: a customer's payment methods, …).
 */
interface Filter {
  readonly test: (o: StripeObject, v: unknown) => boolean
  readonly index?: {
    readonly name: string
    readonly keyOf: (o: StripeObject) => unknown
    readonly key: (v: unknown) => unknown
  }
}
const eq = (field: string): Filter => ({
  test: (o, v) => o[field] === v,
  index: { name: field, keyOf: (o) => o[field], key: (v) => v }
})
const bool = (field: string): Filter => ({ test: (o, v) => o[field] === (v === "true" || v === true) })
const fn = (test: Filter["test"]): Filter => ({ test })
/** A key no object has. */
const NO_KEY = Symbol("no key")

interface ListDef {
  readonly type: string
  readonly path: string
  readonly filters?: Readonly<Record<string, Filter>>
  /** Deleted objects of the type retrieve as `{ id, object, deleted: true }`. */
  readonly deletable?: boolean
  /** Built-in filter applied when the request sets no such parameter (subscriptions hide canceled). */
  readonly defaultFilter?: (input: Record<string, unknown>) => ((o: StripeObject) => boolean) | undefined
  /** The list is empty unless one of these params is given (payment methods without `customer`). */
  readonly requires?: ReadonlyArray<string>
}

const subscriptionOf = (o: StripeObject): unknown =>
  ((o.parent as Record<string, Record<string, unknown>> | null)?.subscription_details
    ?.subscription as unknown) ?? null

const LISTS: ReadonlyArray<ListDef> = [
  { type: "customer", path: "/v1/customers", deletable: true, filters: { email: eq("email") } },
  {
    type: "product",
    path: "/v1/products",
    deletable: true,
    filters: { active: bool("active"), type: eq("type") }
  },
  {
    type: "price",
    path: "/v1/prices",
    filters: { active: bool("active"), product: eq("product"), type: eq("type"), currency: eq("currency") }
  },
  {
    type: "plan",
    path: "/v1/plans",
    deletable: true,
    filters: { active: bool("active"), product: eq("product") }
  },
  { type: "coupon", path: "/v1/coupons", deletable: true },
  {
    type: "promotion_code",
    path: "/v1/promotion_codes",
    filters: {
      active: bool("active"),
      code: eq("code"),
      customer: eq("customer"),
      coupon: fn((o, v) => (o.promotion as Record<string, unknown> | null)?.coupon === v)
    }
  },
  {
    type: "subscription",
    path: "/v1/subscriptions",
    filters: {
      customer: eq("customer"),
      price: fn((o, v) =>
        ((o.items as { data: Array<StripeObject> }).data ?? []).some(
          (i) => (i.price as StripeObject)?.id === v
        )
      ),
      collection_method: eq("collection_method"),
      status: fn(
        (o, v) =>
          v === "all" ||
          (v === "ended" ? o.status === "canceled" || o.status === "incomplete_expired" : o.status === v)
      )
    },
    defaultFilter: (input) =>
      input.status === undefined
        ? (o) => o.status !== "canceled" && o.status !== "incomplete_expired"
        : undefined
  },
  {
    type: "subscription_schedule",
    path: "/v1/subscription_schedules",
    filters: { customer: eq("customer") }
  },
  {
    type: "invoice",
    path: "/v1/invoices",
    deletable: true,
    filters: {
      customer: eq("customer"),
      status: eq("status"),
      collection_method: eq("collection_method"),
      subscription: {
        test: (o, v) => subscriptionOf(o) === v,
        index: { name: "parent.subscription_details.subscription", keyOf: subscriptionOf, key: (v) => v }
      }
    }
  },
  {
    type: "invoiceitem",
    path: "/v1/invoiceitems",
    deletable: true,
    filters: {
      customer: eq("customer"),
      invoice: eq("invoice"),
      pending: fn((o, v) => (o.invoice === null) === (v === "true"))
    }
  },
  {
    type: "credit_note",
    path: "/v1/credit_notes",
    filters: { customer: eq("customer"), invoice: eq("invoice") }
  },
  {
    type: "charge",
    path: "/v1/charges",
    filters: { customer: eq("customer"), payment_intent: eq("payment_intent") }
  },
  { type: "payment_intent", path: "/v1/payment_intents", filters: { customer: eq("customer") } },
  {
    type: "payment_method",
    path: "/v1/payment_methods",
    filters: { customer: eq("customer"), type: eq("type") },
    requires: ["customer"]
  },
  {
    type: "setup_intent",
    path: "/v1/setup_intents",
    filters: { customer: eq("customer"), payment_method: eq("payment_method") }
  },
  {
    type: "refund",
    path: "/v1/refunds",
    filters: { charge: eq("charge"), payment_intent: eq("payment_intent") }
  },
  {
    type: "dispute",
    path: "/v1/disputes",
    filters: { charge: eq("charge"), payment_intent: eq("payment_intent") }
  },
  {
    type: "balance_transaction",
    path: "/v1/balance_transactions",
    filters: { type: eq("type"), source: eq("source"), currency: eq("currency") }
  },
  { type: "payout", path: "/v1/payouts", filters: { status: eq("status"), destination: eq("destination") } },
  {
    type: "transfer",
    path: "/v1/transfers",
    filters: { destination: eq("destination"), transfer_group: eq("transfer_group") }
  },
  {
    type: "tax_id",
    path: "/v1/tax_ids",
    deletable: true,
    // Stripe lists the account's own tax ids unless `owner` names a customer.
    filters: {
      owner: {
        test: (o, v) => {
          const owner = (v ?? {}) as Record<string, unknown>
          return owner.type === "customer" && o.customer === owner.customer
        },
        index: {
          name: "customer",
          keyOf: (o) => o.customer,
          key: (v) => {
            const owner = (v ?? {}) as Record<string, unknown>
            return owner.type === "customer" ? owner.customer : NO_KEY
          }
        }
      }
    },
    requires: ["owner"]
  },
  {
    type: "tax_rate",
    path: "/v1/tax_rates",
    filters: { active: bool("active"), inclusive: bool("inclusive") }
  },
  {
    type: "checkout.session",
    path: "/v1/checkout/sessions",
    filters: {
      customer: eq("customer"),
      payment_intent: eq("payment_intent"),
      subscription: eq("subscription"),
      status: eq("status")
    }
  },
  {
    type: "radar.early_fraud_warning",
    path: "/v1/radar/early_fraud_warnings",
    filters: { charge: eq("charge"), payment_intent: eq("payment_intent") }
  },
  { type: "review", path: "/v1/reviews" },
  {
    type: "webhook_endpoint",
    path: "/v1/webhook_endpoints",
    deletable: true
  }
]

/** Features an account has not enabled answer Stripe's error instead of a list. */
const NOT_ENABLED: ReadonlyArray<[string, string]> = [
  ["/v1/issuing/", "Issuing"],
  ["/v1/treasury/", "Treasury"],
  ["/v1/climate/", "Climate"]
]

const notEnabled = (feature: string) =>
  new StripeApiError(400, {
    message: `Your account is not set up to use ${feature}. Please visit https://dashboard.stripe.com/ to get started, or contact us at https://support.stripe.com/contact for more information.`,
    type: "invalid_request_error"
  })

const str = (input: Record<string, unknown>, key: string, required = false): string | undefined => {
  const v = input[key]
  if (v === undefined || v === "") {
    if (required) throw invalidRequest(`Missing required param: ${key}.`, key, "parameter_missing")
    return undefined
  }
  if (typeof v !== "string") throw invalidRequest(`Invalid string: ${JSON.stringify(v)}`, key)
  return v
}
const int = (input: Record<string, unknown>, key: string): number | undefined =>
  input[key] === undefined || input[key] === "" ? undefined : parseInteger(input[key], key)
const boolOf = (input: Record<string, unknown>, key: string): boolean | undefined =>
  input[key] === undefined ? undefined : input[key] === "true" || input[key] === true

/** Rejects parameters a write endpoint does not know, as Stripe does. */
const allow = (input: Record<string, unknown>, keys: ReadonlyArray<string>) => {
  for (const k of Object.keys(input))
    if (k !== "expand" && !keys.includes(k)) throw invalidRequest(`Received unknown parameter: ${k}`, k)
}

const render = (ctx: RequestContext, o: StripeObject): RawReply | StripeObject => {
  const expand = parseExpand(ctx.input)
  if (expand.length === 0) return new RawReply(toJsonBuffer(o))
  return expandAll(
    o,
    expand.map((e) => e.split(".")),
    ctx.account
  )
}

const retrieve = (account: Account, def: ListDef, id: string): StripeObject => {
  const o = account.collection(def.type).get(id)
  if (o !== undefined) return o
  const gone = account.deleted.get(id)
  if (gone !== undefined && gone.object === def.type && def.deletable === true)
    return { id, object: def.type, deleted: true }
  throw resourceMissing(def.type, id)
}

const listOf = (ctx: RequestContext, def: ListDef, extra?: Record<string, unknown>) => {
  const input = extra === undefined ? ctx.input : { ...ctx.input, ...extra }
  const p = parseListParams(input)
  if (def.requires !== undefined && !def.requires.some((k) => input[k] !== undefined))
    return listReply({ data: [], hasMore: false }, def.path, ctx.account, p.expand)
  const c = ctx.account.collection(def.type)
  const given: Array<[Filter, unknown]> = []
  for (const [k, f] of Object.entries(def.filters ?? {})) {
    const v = input[k]
    if (v !== undefined && v !== "") given.push([f, v])
  }
  // The smallest group of an indexed filter holds every object that can pass: page it alone.
  let subset: ReadonlyArray<StripeObject> | undefined
  let used: Filter | undefined
  for (const [f, v] of given) {
    if (f.index === undefined) continue
    const g = c.group(f.index.name, f.index.keyOf, f.index.key(v))
    if (subset === undefined || g.length < subset.length) {
      subset = g
      used = f
    }
  }
  const preds: Array<(o: StripeObject) => boolean> = []
  for (const [f, v] of given) if (f !== used) preds.push((o) => f.test(o, v))
  const d = def.defaultFilter?.(input)
  if (d !== undefined) preds.push(d)
  const filter =
    preds.length === 0
      ? undefined
      : preds.length === 1
        ? preds[0]
        : (o: StripeObject) => preds.every((f) => f(o))
  const page = pageCollection(c, p, filter, undefined, subset)
  return listReply(page, ctx.path, ctx.account, p.expand)
}

const metadataOnly = ["metadata", "description"]

export const registerResources = (router: Router, core: EmulatorCore): void => {
  const defs = new Map(LISTS.map((d) => [d.type, d]))
  const def = (t: string) => defs.get(t)!

  // Accounts
  router.get("/v1/account", (ctx) =>
    ctx.account === core.platform
      ? make("account", {
          id: core.platform.id,
          created: 1_500_000_000,
          type: "standard",
          charges_enabled: true,
          payouts_enabled: true,
          details_submitted: true,
          external_accounts: undefined
        })
      : ctx.account.connected
        ? accountObject(ctx.account)
        : make("account", { id: ctx.account.id })
  )
  const accountObject = (a: Account) =>
    make("account", {
      id: a.id,
      created: 1_600_000_000,
      type: "standard",
      charges_enabled: true,
      payouts_enabled: true,
      details_submitted: true,
      external_accounts: {
        object: "list",
        data: [],
        has_more: false,
        total_count: 0,
        url: `/v1/accounts/${a.id}/external_accounts`
      }
    })
  router.get("/v1/accounts", (ctx) => {
    const p = parseListParams(ctx.input)
    const connected = [...core.accounts.values()].filter((a) => a.connected).map(accountObject)
    // Stripe orders by creation, newest first; generated accounts share a creation time, so by id desc.
    connected.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    if (ctx.account !== core.platform)
      return listReply({ data: [], hasMore: false }, ctx.path, ctx.account, p.expand)
    return listReply(pageArray(connected, p, "account"), ctx.path, ctx.account, p.expand)
  })
  router.get("/v1/accounts/:id", (ctx) => {
    const a = core.accounts.get(ctx.params.id!)
    if (a === undefined || !a.connected) {
      if (ctx.params.id === core.platform.id) return make("account", { id: core.platform.id })
      throw new StripeApiError(403, {
        code: "account_invalid",
        message: `The provided key does not have access to account '${ctx.params.id}' (or that account does not exist). Application access may have been revoked.`,
        type: "invalid_request_error"
      })
    }
    return accountObject(a)
  })

  // Lists and retrieves of every generated type
  for (const d of LISTS) {
    router.get(d.path, (ctx) => listOf(ctx, d))
    router.get(`${d.path}/:id`, (ctx) => render(ctx, retrieve(ctx.account, d, ctx.params.id!)))
  }
  router.get("/v1/customers/:id/payment_methods", (ctx) => {
    retrieveLive(ctx.account, "customer", ctx.params.id!)
    return listOf(ctx, def("payment_method"), { customer: ctx.params.id })
  })
  router.get("/v1/customers/:id/payment_methods/:pm", (ctx) => {
    const pm = ctx.account.collection("payment_method").get(ctx.params.pm!)
    if (pm === undefined || pm.customer !== ctx.params.id)
      throw resourceMissing("payment_method", ctx.params.pm!)
    return render(ctx, pm)
  })
  router.get("/v1/customers/:id/tax_ids", (ctx) => {
    retrieveLive(ctx.account, "customer", ctx.params.id!)
    return listOf(ctx, def("tax_id"), { owner: { type: "customer", customer: ctx.params.id } })
  })
  router.get("/v1/customers/:id/tax_ids/:tx", (ctx) => {
    const t = ctx.account.collection("tax_id").get(ctx.params.tx!)
    if (t === undefined || t.customer !== ctx.params.id) throw resourceMissing("tax_id", ctx.params.tx!)
    return render(ctx, t)
  })

  // Embedded lists paged by their own endpoints
  const children =
    (parentType: string, object: string, param: (ctx: RequestContext) => string | undefined) =>
    (ctx: RequestContext) => {
      const id = param(ctx)
      if (id === undefined)
        throw invalidRequest("Missing required param: subscription.", "subscription", "parameter_missing")
      const parent = ctx.account.collection(parentType).get(id) ?? ctx.account.deleted.get(id)
      if (parent === undefined)
        throw resourceMissing(parentType, id, parentType === "subscription" ? "subscription" : "id")
      const p = parseListParams(ctx.input)
      const page = pageArray(ctx.account.children.get(id) ?? [], p, object)
      return listReply(page, embedded[parentType]!.url(id), ctx.account, p.expand)
    }
  router.get(
    "/v1/invoices/:id/lines",
    children("invoice", "line_item", (c) => c.params.id)
  )
  router.get(
    "/v1/credit_notes/:id/lines",
    children("credit_note", "credit_note_line_item", (c) => c.params.id)
  )
  router.get(
    "/v1/checkout/sessions/:id/line_items",
    children("checkout.session", "item", (c) => c.params.id)
  )
  router.get(
    "/v1/subscription_items",
    children("subscription", "subscription_item", (c) => str(c.input, "subscription"))
  )
  router.get("/v1/subscription_items/:id", (ctx) => {
    for (const s of ctx.account.collection("subscription").items) {
      const it = (ctx.account.children.get(s.id) ?? []).find((i) => i.id === ctx.params.id)
      if (it) return render(ctx, it)
    }
    throw resourceMissing("subscription_item", ctx.params.id!)
  })

  // Events
  router.get("/v1/events", (ctx) => {
    const p = parseListParams(ctx.input)
    const type = str(ctx.input, "type")
    const typesIn = ctx.input.types
    const types = Array.isArray(typesIn)
      ? typesIn.map(String)
      : typeof typesIn === "object" && typesIn !== null
        ? Object.values(typesIn).map(String)
        : undefined
    if (type !== undefined && types !== undefined)
      throw invalidRequest("You may only specify one of these parameters: type, types.", "types")
    const match = (pattern: string) => {
      if (!pattern.includes("*")) return (t: string) => t === pattern
      const prefix = pattern.slice(0, pattern.indexOf("*"))
      return (t: string) => t.startsWith(prefix)
    }
    const ms = type !== undefined ? [match(type)] : types?.map(match)
    const filter = ms === undefined ? undefined : (o: StripeObject) => ms.some((m) => m(o.type as string))
    return listReply(
      pageCollection(ctx.account.collection("event"), p, filter),
      ctx.path,
      ctx.account,
      p.expand
    )
  })
  router.get("/v1/events/:id", (ctx) => {
    const e = ctx.account.collection("event").get(ctx.params.id!)
    if (e === undefined) throw resourceMissing("event", ctx.params.id!)
    return new RawReply(toJsonBuffer(e))
  })

  // ---------------------------------------------------------------------------------------------
  // Writes

  const req = (ctx: RequestContext) => ctx.requestId
  const retrieveLive = (account: Account, type: string, id: string) => Ops.get(account, type, id)

  // Customers
  const customerFields = [
    "name",
    "email",
    "description",
    "phone",
    "metadata",
    "balance",
    "preferred_locales",
    "invoice_settings",
    "address",
    "shipping",
    "tax_exempt",
    "payment_method"
  ]
  router.post("/v1/customers", (ctx) => {
    allow(ctx.input, customerFields)
    const { metadata, payment_method: _pm, ...rest } = ctx.input
    const o = make("customer", {
      id: core.newId("cus"),
      created: core.now(),
      invoice_prefix: core.rng.chars(8).toUpperCase(),
      shipping: null,
      ...scalars(rest, ["name", "email", "description", "phone"]),
      ...(int(ctx.input, "balance") === undefined ? {} : { balance: int(ctx.input, "balance") }),
      metadata: Ops.mergeMetadata({}, metadata)
    })
    return Ops.create(core, ctx.account, o, req(ctx))
  })
  router.post("/v1/customers/:id", (ctx) => {
    allow(ctx.input, customerFields)
    const c = retrieveLive(ctx.account, "customer", ctx.params.id!)
    return Ops.update(
      core,
      ctx.account,
      c,
      {
        ...scalars(ctx.input, ["name", "email", "description", "phone"]),
        ...(int(ctx.input, "balance") === undefined ? {} : { balance: int(ctx.input, "balance") }),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(c.metadata, ctx.input.metadata) })
      },
      req(ctx)
    )
  })
  router.delete("/v1/customers/:id", (ctx) => Ops.deleteCustomer(core, ctx.account, ctx.params.id!, req(ctx)))

  // Products
  const productFields = [
    "name",
    "description",
    "active",
    "metadata",
    "url",
    "unit_label",
    "statement_descriptor",
    "id",
    "default_price_data",
    "images",
    "shippable",
    "tax_code",
    "type"
  ]
  router.post("/v1/products", (ctx) => {
    allow(ctx.input, productFields)
    const now = core.now()
    const o = make("product", {
      id: str(ctx.input, "id") ?? core.newId("prod"),
      created: now,
      updated: now,
      name: str(ctx.input, "name", true),
      description: str(ctx.input, "description") ?? null,
      active: boolOf(ctx.input, "active") ?? true,
      default_price: null,
      package_dimensions: null,
      metadata: Ops.mergeMetadata({}, ctx.input.metadata)
    })
    if (ctx.account.collection("product").has(o.id))
      throw invalidRequest(`Product already exists.`, "id", "resource_already_exists")
    return Ops.create(core, ctx.account, o, req(ctx))
  })
  router.post("/v1/products/:id", (ctx) => {
    allow(ctx.input, productFields)
    const p = retrieveLive(ctx.account, "product", ctx.params.id!)
    return Ops.update(
      core,
      ctx.account,
      p,
      {
        ...scalars(ctx.input, ["name", "description", "url", "unit_label", "statement_descriptor"]),
        ...(boolOf(ctx.input, "active") === undefined ? {} : { active: boolOf(ctx.input, "active") }),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(p.metadata, ctx.input.metadata) }),
        updated: core.now()
      },
      req(ctx)
    )
  })
  router.delete("/v1/products/:id", (ctx) => {
    const p = retrieveLive(ctx.account, "product", ctx.params.id!)
    Ops.assertDeletableProduct(ctx.account, p.id)
    return Ops.remove(core, ctx.account, p, req(ctx))
  })

  // Prices (recurring prices are also plans, as in Stripe)
  router.post("/v1/prices", (ctx) => {
    allow(ctx.input, [
      "currency",
      "unit_amount",
      "product",
      "recurring",
      "nickname",
      "metadata",
      "active",
      "lookup_key",
      "unit_amount_decimal",
      "tax_behavior"
    ])
    const product = str(ctx.input, "product", true)!
    retrieveLiveParam(ctx.account, "product", product, "product")
    const unit = int(ctx.input, "unit_amount") ?? 0
    const rec = ctx.input.recurring as Record<string, unknown> | undefined
    const now = core.now()
    const id = core.newId("price")
    const recurring = rec
      ? {
          interval: String(rec.interval ?? "month"),
          interval_count:
            rec.interval_count === undefined
              ? 1
              : parseInteger(rec.interval_count, "recurring[interval_count]"),
          meter: null,
          trial_period_days: null,
          usage_type: "licensed"
        }
      : null
    const o = make("price", {
      id,
      created: now,
      product,
      currency: str(ctx.input, "currency", true),
      unit_amount: unit,
      unit_amount_decimal: String(unit),
      nickname: str(ctx.input, "nickname") ?? null,
      lookup_key: str(ctx.input, "lookup_key") ?? null,
      type: rec ? "recurring" : "one_time",
      recurring,
      transform_quantity: null,
      custom_unit_amount: null,
      metadata: Ops.mergeMetadata({}, ctx.input.metadata)
    })
    if (recurring)
      Ops.create(
        core,
        ctx.account,
        make("plan", {
          id,
          created: now,
          product,
          amount: unit,
          amount_decimal: String(unit),
          interval: recurring.interval,
          interval_count: recurring.interval_count,
          transform_usage: null,
          metadata: {}
        }),
        req(ctx)
      )
    return Ops.create(core, ctx.account, o, req(ctx))
  })
  router.post("/v1/prices/:id", (ctx) => {
    allow(ctx.input, ["nickname", "metadata", "active", "lookup_key", "tax_behavior"])
    const p = retrieveLive(ctx.account, "price", ctx.params.id!)
    return Ops.update(
      core,
      ctx.account,
      p,
      {
        ...scalars(ctx.input, ["nickname", "lookup_key"]),
        ...(boolOf(ctx.input, "active") === undefined ? {} : { active: boolOf(ctx.input, "active") }),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(p.metadata, ctx.input.metadata) })
      },
      req(ctx)
    )
  })

  // Coupons
  router.post("/v1/coupons", (ctx) => {
    allow(ctx.input, [
      "id",
      "percent_off",
      "amount_off",
      "currency",
      "duration",
      "duration_in_months",
      "name",
      "metadata",
      "max_redemptions",
      "redeem_by"
    ])
    const pct = ctx.input.percent_off === undefined ? null : Number(ctx.input.percent_off)
    const o = make("coupon", {
      id: str(ctx.input, "id") ?? core.rng.chars(8),
      created: core.now(),
      percent_off: pct,
      amount_off: int(ctx.input, "amount_off") ?? null,
      currency: str(ctx.input, "currency") ?? null,
      duration: str(ctx.input, "duration") ?? "once",
      duration_in_months: int(ctx.input, "duration_in_months") ?? null,
      name: str(ctx.input, "name") ?? null,
      redeem_by: null,
      metadata: Ops.mergeMetadata({}, ctx.input.metadata)
    })
    if (pct === null && o.amount_off === null)
      throw invalidRequest("Must provide either percent_off or amount_off.", "percent_off")
    return Ops.create(core, ctx.account, o, req(ctx))
  })
  router.post("/v1/coupons/:id", (ctx) => {
    allow(ctx.input, ["name", "metadata"])
    const c = retrieveLive(ctx.account, "coupon", ctx.params.id!)
    return Ops.update(
      core,
      ctx.account,
      c,
      {
        ...scalars(ctx.input, ["name"]),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(c.metadata, ctx.input.metadata) })
      },
      req(ctx)
    )
  })
  router.delete("/v1/coupons/:id", (ctx) =>
    Ops.remove(core, ctx.account, retrieveLive(ctx.account, "coupon", ctx.params.id!), req(ctx))
  )

  // Subscriptions
  router.post("/v1/subscriptions", (ctx) => {
    allow(ctx.input, [
      "customer",
      "items",
      "metadata",
      "description",
      "collection_method",
      "default_payment_method",
      "payment_behavior"
    ])
    const customer = str(ctx.input, "customer", true)!
    const rawItems = ctx.input.items
    const list = Array.isArray(rawItems)
      ? rawItems
      : typeof rawItems === "object" && rawItems !== null
        ? Object.values(rawItems)
        : []
    const items = list.map((it, i) => {
      const r = it as Record<string, unknown>
      if (typeof r.price !== "string")
        throw invalidRequest("Missing required param: items[0][price].", `items[${i}][price]`)
      return {
        price: r.price,
        quantity: r.quantity === undefined ? 1 : parseInteger(r.quantity, `items[${i}][quantity]`)
      }
    })
    return Ops.createSubscription(
      core,
      ctx.account,
      customer,
      items,
      {
        ...scalars(ctx.input, ["description"]),
        metadata: Ops.mergeMetadata({}, ctx.input.metadata)
      },
      req(ctx)
    )
  })
  router.post("/v1/subscriptions/:id", (ctx) => {
    allow(ctx.input, [
      "metadata",
      "description",
      "cancel_at_period_end",
      "default_payment_method",
      "cancellation_details"
    ])
    const s = retrieveLive(ctx.account, "subscription", ctx.params.id!)
    if (
      s.status === "canceled" &&
      Object.keys(ctx.input).some((k) => k !== "metadata" && k !== "cancellation_details" && k !== "expand")
    )
      throw invalidRequest("A canceled subscription can only update its cancellation_details and metadata.")
    const cape = boolOf(ctx.input, "cancel_at_period_end")
    return Ops.update(
      core,
      ctx.account,
      s,
      {
        ...scalars(ctx.input, ["description", "default_payment_method"]),
        ...(cape === undefined
          ? {}
          : {
              cancel_at_period_end: cape,
              cancel_at: cape
                ? ((s.items as { data: Array<StripeObject> }).data[0]?.current_period_end ?? null)
                : null
            }),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(s.metadata, ctx.input.metadata) })
      },
      req(ctx)
    )
  })
  router.delete("/v1/subscriptions/:id", (ctx) =>
    Ops.cancelSubscription(core, ctx.account, ctx.params.id!, req(ctx))
  )

  // Invoice items and invoices
  router.post("/v1/invoiceitems", (ctx) => {
    allow(ctx.input, [
      "customer",
      "amount",
      "currency",
      "description",
      "metadata",
      "price",
      "quantity",
      "invoice",
      "pricing"
    ])
    const customer = str(ctx.input, "customer", true)!
    retrieveLiveParam(ctx.account, "customer", customer, "customer")
    const priceId =
      str(ctx.input, "price") ??
      ((ctx.input.pricing as Record<string, unknown> | undefined)?.price as string | undefined)
    const price =
      priceId === undefined ? undefined : retrieveLiveParam(ctx.account, "price", priceId, "price")
    const quantity = int(ctx.input, "quantity") ?? 1
    const amount = price ? (price.unit_amount as number) * quantity : int(ctx.input, "amount")
    if (amount === undefined)
      throw invalidRequest("Missing required param: amount.", "amount", "parameter_missing")
    const now = core.now()
    const o = make("invoiceitem", {
      id: core.newId("ii"),
      created: now,
      date: now,
      customer,
      amount,
      currency: str(ctx.input, "currency") ?? "usd",
      description: str(ctx.input, "description") ?? null,
      quantity,
      invoice: null,
      parent: null,
      period: { start: now, end: now },
      pricing: price
        ? {
            type: "price_details",
            price_details: { price: price.id, product: price.product },
            unit_amount_decimal: String(price.unit_amount)
          }
        : null,
      discounts: [],
      tax_rates: [],
      proration: false,
      test_clock: null,
      metadata: Ops.mergeMetadata({}, ctx.input.metadata)
    })
    return Ops.create(core, ctx.account, o, req(ctx))
  })
  router.post("/v1/invoiceitems/:id", (ctx) => {
    allow(ctx.input, metadataOnly)
    const ii = retrieveLive(ctx.account, "invoiceitem", ctx.params.id!)
    return Ops.update(
      core,
      ctx.account,
      ii,
      {
        ...scalars(ctx.input, ["description"]),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(ii.metadata, ctx.input.metadata) })
      },
      req(ctx)
    )
  })
  router.delete("/v1/invoiceitems/:id", (ctx) => {
    const ii = retrieveLive(ctx.account, "invoiceitem", ctx.params.id!)
    if (
      ii.invoice !== null &&
      ctx.account.collection("invoice").get(ii.invoice as string)?.status !== "draft"
    )
      throw invalidRequest(
        "You can only delete invoice items that are pending or on a draft invoice.",
        undefined,
        "invoice_not_editable"
      )
    return Ops.remove(core, ctx.account, ii, req(ctx))
  })
  router.post("/v1/invoices", (ctx) => {
    allow(ctx.input, [
      "customer",
      "description",
      "metadata",
      "collection_method",
      "auto_advance",
      "days_until_due",
      "footer",
      "pending_invoice_items_behavior"
    ])
    const customer = str(ctx.input, "customer", true)!
    return Ops.createInvoice(
      core,
      ctx.account,
      customer,
      {
        ...scalars(ctx.input, ["description", "collection_method", "footer"]),
        auto_advance: boolOf(ctx.input, "auto_advance") ?? false,
        metadata: Ops.mergeMetadata({}, ctx.input.metadata)
      },
      req(ctx)
    )
  })
  router.post("/v1/invoices/:id", (ctx) => {
    allow(ctx.input, ["description", "metadata", "footer", "auto_advance"])
    const inv = retrieveLive(ctx.account, "invoice", ctx.params.id!)
    if (
      inv.status !== "draft" &&
      Object.keys(ctx.input).some((k) => k !== "metadata" && k !== "expand" && k !== "auto_advance")
    )
      throw invalidRequest(
        "You can only update metadata and auto_advance of a finalized invoice.",
        undefined,
        "invoice_not_editable"
      )
    return Ops.update(
      core,
      ctx.account,
      inv,
      {
        ...scalars(ctx.input, ["description", "footer"]),
        ...(boolOf(ctx.input, "auto_advance") === undefined
          ? {}
          : { auto_advance: boolOf(ctx.input, "auto_advance") }),
        ...(ctx.input.metadata === undefined
          ? {}
          : { metadata: Ops.mergeMetadata(inv.metadata, ctx.input.metadata) })
      },
      req(ctx)
    )
  })
  router.delete("/v1/invoices/:id", (ctx) => Ops.deleteInvoice(core, ctx.account, ctx.params.id!, req(ctx)))
  router.post("/v1/invoices/:id/finalize", (ctx) =>
    Ops.finalizeInvoice(core, ctx.account, ctx.params.id!, req(ctx))
  )
  router.post("/v1/invoices/:id/pay", (ctx) => Ops.payInvoice(core, ctx.account, ctx.params.id!, req(ctx)))
  router.post("/v1/invoices/:id/void", (ctx) => Ops.voidInvoice(core, ctx.account, ctx.params.id!, req(ctx)))

  // Refunds
  router.post("/v1/refunds", (ctx) => {
    allow(ctx.input, ["charge", "payment_intent", "amount", "reason", "metadata"])
    let chargeId = str(ctx.input, "charge")
    const pi = str(ctx.input, "payment_intent")
    if (chargeId === undefined && pi !== undefined) {
      const p = retrieveLiveParam(ctx.account, "payment_intent", pi, "payment_intent")
      chargeId = (p.latest_charge as string | null) ?? undefined
      if (chargeId === undefined)
        throw invalidRequest(
          `This PaymentIntent (${pi}) does not have a successful charge to refund.`,
          "payment_intent"
        )
    }
    if (chargeId === undefined)
      throw invalidRequest(
        "One of the following params should be provided for this request: payment_intent or charge.",
        undefined,
        "parameter_missing"
      )
    return Ops.refundCharge(core, ctx.account, chargeId, int(ctx.input, "amount"), req(ctx))
  })

  // Webhook endpoints (the secret is returned only by create)
  router.post("/v1/webhook_endpoints", (ctx) => {
    allow(ctx.input, ["url", "enabled_events", "description", "metadata", "connect", "api_version"])
    const url = str(ctx.input, "url", true)!
    const events = enabledEvents(ctx.input.enabled_events, true)!
    const secret = `whsec_${randomBytes(24).toString("hex")}`
    const o = make("webhook_endpoint", {
      id: core.newId("we"),
      created: core.now(),
      url,
      enabled_events: events,
      description: str(ctx.input, "description") ?? null,
      api_version: str(ctx.input, "api_version") ?? null,
      metadata: Ops.mergeMetadata({}, ctx.input.metadata),
      status: "enabled",
      ...(boolOf(ctx.input, "connect") === true ? { connect: true } : {})
    })
    ctx.account.collection("webhook_endpoint").insert(o)
    core.secrets.set(o.id, secret)
    return { ...o, secret }
  })
  router.post("/v1/webhook_endpoints/:id", (ctx) => {
    allow(ctx.input, ["url", "enabled_events", "description", "metadata", "disabled"])
    const ep = retrieveLive(ctx.account, "webhook_endpoint", ctx.params.id!)
    const disabled = boolOf(ctx.input, "disabled")
    const after = {
      ...ep,
      ...scalars(ctx.input, ["url", "description"]),
      ...(ctx.input.enabled_events === undefined
        ? {}
        : { enabled_events: enabledEvents(ctx.input.enabled_events, false) }),
      ...(disabled === undefined ? {} : { status: disabled ? "disabled" : "enabled" }),
      ...(ctx.input.metadata === undefined
        ? {}
        : { metadata: Ops.mergeMetadata(ep.metadata, ctx.input.metadata) })
    } as StripeObject
    ctx.account.collection("webhook_endpoint").replace(after)
    return after
  })
  router.delete("/v1/webhook_endpoints/:id", (ctx) => {
    const ep = retrieveLive(ctx.account, "webhook_endpoint", ctx.params.id!)
    ctx.account.collection("webhook_endpoint").remove(ep.id)
    ctx.account.deleted.set(ep.id, ep)
    core.secrets.delete(ep.id)
    return { id: ep.id, object: "webhook_endpoint", deleted: true }
  })
}

/**
 * Every other list endpoint of the SDK: an empty list, or Stripe's error for a feature not enabled.
 * Registered after extensions, so an extension can serve one of these paths itself.
 */
export const registerFallbacks = (router: Router): void => {
  for (const path of sdkListPaths) {
    if (router.match("GET", path.replace(/:(\w+)/g, "x")) !== undefined) continue
    const feature = NOT_ENABLED.find(([prefix]) => path.startsWith(prefix))
    router.get(path, (ctx) => {
      if (feature !== undefined) throw notEnabled(feature[1])
      const p = parseListParams(ctx.input)
      return listReply({ data: [], hasMore: false }, ctx.path, ctx.account, p.expand)
    })
  }
}

const retrieveLiveParam = (account: Account, type: string, id: string, param: string): StripeObject => {
  const o = account.collection(type).get(id)
  if (o === undefined) throw resourceMissing(type, id, param, 400)
  return o
}

const scalars = (input: Record<string, unknown>, keys: ReadonlyArray<string>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const v = input[k]
    if (v === undefined) continue
    if (typeof v !== "string") throw invalidRequest(`Invalid string: ${JSON.stringify(v)}`, k)
    out[k] = v === "" ? null : v
  }
  return out
}

const enabledEvents = (v: unknown, required: boolean): Array<string> | undefined => {
  if (v === undefined) {
    if (required)
      throw invalidRequest("Missing required param: enabled_events.", "enabled_events", "parameter_missing")
    return undefined
  }
  const list = Array.isArray(v) ? v : typeof v === "object" && v !== null ? Object.values(v) : [v]
  return list.map(String)
}
