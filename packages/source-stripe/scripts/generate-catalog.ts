/**
 * Generates `src/generated/catalog.ts`: the resources a sync can list, derived from
 *
 * - the installed official `stripe` SDK: every resource's `list*` methods are called on an instance
 *   whose `_makeRequest` is replaced by a recorder, which gives each list endpoint's HTTP method and
 *   path (and the `retrieve`/`del` paths); the SDK's `.d.ts` files give each list's parameters
 *   (`created` filter, required parents), the element type, the Stripe object name and the field types;
 * - Stripe's example objects (`fixtures3.json` from stripe/openapi): id prefixes, `deleted_*` objects
 *   (what Stripe can delete) and field values where the types are not enough.
 *
 * Run: `pnpm --filter @stripe-sync/source-stripe generate [path/to/fixtures3.json]`.
 * The output is committed; nothing reads the fixtures at run time.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import Stripe from "stripe"

const here = dirname(fileURLToPath(import.meta.url))
const fixturesPath = process.argv[2] ?? join(here, "../../../../shared/stripe/fixtures3.json")
const outPath = join(here, "../src/generated/catalog.ts")
const require = createRequire(import.meta.url)
// `stripe` resolves to `<root>/cjs/stripe.cjs.node.js`
const sdkRoot = dirname(dirname(require.resolve("stripe")))
const sdkVersion: string = JSON.parse(readFileSync(join(sdkRoot, "package.json"), "utf8")).version
const resourcesDir = join(sdkRoot, "cjs/resources")

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }
type JsonObject = { readonly [k: string]: Json }
const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

const fixtures = (JSON.parse(readFileSync(fixturesPath, "utf8")) as { resources: Record<string, JsonObject> })
  .resources

// ---------------------------------------------------------------------------------------------
// 1. The SDK at run time: list endpoints, retrieve and delete paths.
// ---------------------------------------------------------------------------------------------

interface Captured {
  readonly method: string
  readonly path: string
}
interface SdkResource {
  /** e.g. `issuing.cards` */
  readonly key: string
  readonly className: string
  readonly methods: ReadonlyMap<string, Captured>
}

const skippedNamespaces = new Set([
  "stripe",
  "v2",
  "testHelpers",
  "webhooks",
  "errors",
  "Decimal",
  "oauth",
  "account"
])

type Recorder = (method: string, path: string) => Promise<void>
interface Recordable {
  _makeRequest: Recorder
}
const isResource = (u: unknown): u is Recordable & object =>
  typeof u === "object" && u !== null && typeof (u as { _makeRequest?: unknown })._makeRequest === "function"

const sdkResources: Array<SdkResource> = []
const walk = (node: object, prefix: string): void => {
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("_") || skippedNamespaces.has(key) || typeof value !== "object" || value === null)
      continue
    if (!isResource(value)) {
      walk(value, `${prefix}${key}.`)
      continue
    }
    const proto = Object.getPrototypeOf(value) as Record<string, unknown>
    const methods = new Map<string, Captured>()
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (!/^(list\w*|retrieve|del)$/.test(name)) continue
      const fn = proto[name]
      if (typeof fn !== "function") continue
      let captured: Captured | undefined
      value._makeRequest = (method, path) => {
        captured = { method, path: decodeURIComponent(path) }
        return Promise.resolve()
      }
      const ids = Array.from({ length: Math.max(fn.length - 2, 0) }, (_, i) => `{id${i === 0 ? "" : i}}`)
      fn.apply(value, ids)
      delete (value as Partial<Recordable>)._makeRequest
      if (captured) methods.set(name, captured)
    }
    sdkResources.push({ key: `${prefix}${key}`, className: value.constructor.name, methods })
  }
}
walk(new Stripe("sk_test_generator"), "")

// ---------------------------------------------------------------------------------------------
// 2. The SDK's .d.ts files: parameters, element types, object names, field types.
// ---------------------------------------------------------------------------------------------

const dtsFiles = new Map<string, string>()
const readDts = (dir: string): void => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory() && entry.name !== "V2") readDts(p)
    else if (entry.name.endsWith(".d.ts")) dtsFiles.set(p, readFileSync(p, "utf8"))
  }
}
readDts(resourcesDir)

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** The .d.ts file of a resource: `issuing.cards` → `Issuing/Cards.d.ts`. */
const dtsOf = (r: SdkResource): string | undefined => {
  const parts = r.key.split(".").map(pascal)
  const p = join(resourcesDir, `${parts.join("/")}.d.ts`)
  if (dtsFiles.has(p)) return p
  const byClass = [...dtsFiles].filter(([, text]) => text.includes(`export declare class ${r.className} `))
  return byClass.length === 1 ? byClass[0][0] : undefined
}

interface Member {
  readonly name: string
  readonly optional: boolean
  readonly type: string
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Members of `interface <name>` in a file (the last segment of a dotted name), one level deep. */
const interfaceMembers = (text: string, dotted: string): ReadonlyArray<Member> | undefined => {
  const name = dotted.split(".").pop()!
  const lines = text.split("\n")
  const prefix = dotted.includes(".") ? dotted.split(".").slice(0, -1) : []
  let start = -1
  let indent = ""
  for (let i = 0; i < lines.length; i++) {
    const m = new RegExp(`^(\\s*)(?:export )?interface ${escapeRe(name)}(?: extends [^{]+)? \\{$`).exec(
      lines[i]
    )
    if (!m) continue
    // a dotted name lives inside `namespace <prefix>`: require the right nesting depth
    if (m[1].length !== prefix.length * 4) continue
    start = i
    indent = m[1]
    break
  }
  if (start < 0) return undefined
  const members: Array<Member> = []
  const memberRe = new RegExp(`^${indent}    (\\w+)(\\?)?: (.+);$`)
  for (let i = start + 1; i < lines.length && lines[i] !== `${indent}}`; i++) {
    const m = memberRe.exec(lines[i])
    if (m) members.push({ name: m[1], optional: m[2] === "?", type: m[3] })
  }
  return members
}

/** Where a type name is declared, seen from a file: the file itself or one of its imports. */
const resolveTypeFile = (file: string, typeName: string): string | undefined => {
  const text = dtsFiles.get(file)!
  const local = typeName.split(".")[0]
  if (new RegExp(`^(export )?(declare )?(interface|namespace|type) ${escapeRe(local)}\\b`, "m").test(text))
    return file
  const [head, ...rest] = typeName.split(".")
  for (const m of text.matchAll(/^import \* as (\w+) from '([^']+)';$/gm)) {
    if (m[1] !== head || rest.length === 0) continue
    // `import * as TestHelpers from './TestHelpers/index.js'`: find the file declaring the type
    const dir = dirname(resolve(dirname(file), m[2]))
    const last = escapeRe(rest[rest.length - 1])
    return [...dtsFiles.keys()].find(
      (p) =>
        p.startsWith(`${dir}/`) && new RegExp(`^export interface ${last} \\{`, "m").test(dtsFiles.get(p)!)
    )
  }
  for (const m of text.matchAll(/^import \{([^}]+)\} from '([^']+)';$/gm)) {
    for (const spec of m[1].split(",").map((s) => s.trim())) {
      const [orig, alias] = spec.split(/\s+as\s+/)
      if ((alias ?? orig) === local) {
        const target = resolve(dirname(file), m[2].replace(/\.js$/, ".d.ts"))
        return dtsFiles.has(target) ? target : undefined
      }
    }
  }
  return undefined
}

const objectNameOf = (file: string, typeName: string): string | undefined => {
  const target = resolveTypeFile(file, typeName)
  if (!target) return undefined
  const members = interfaceMembers(dtsFiles.get(target)!, typeName.split(".").pop()!)
  const object = members?.find((m) => m.name === "object")
  const lit = object ? /^'([^']+)'$/.exec(object.type) : null
  if (lit) return lit[1]
  // `type Event = AccountUpdatedEvent | …`: the members share `interface EventBase`
  return typeName.endsWith("Base") ? undefined : objectNameOf(file, `${typeName}Base`)
}

interface ListInfo {
  readonly paramsType: string
  readonly paramsRequired: boolean
  readonly elementType: string
  readonly params: ReadonlyArray<Member>
}

const listInfo = (file: string, method: string): ListInfo | undefined => {
  const text = dtsFiles.get(file)!
  const m = new RegExp(
    `^    ${method}\\((?:\\w+: string, )*params(\\?)?: ([\\w.]+), options\\?: RequestOptions\\): ApiListPromise<([\\w.]+)>;$`,
    "m"
  ).exec(text)
  if (!m) return undefined
  return {
    paramsRequired: m[1] !== "?",
    paramsType: m[2],
    elementType: m[3],
    params: interfaceMembers(text, m[2]) ?? []
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Choices the SDK cannot tell: tables, filters that make a list complete, embedded lists, gates.
// ---------------------------------------------------------------------------------------------

/** Table names used by today's engines (supabase/stripe-sync-engine), kept for drop-in queries. */
const tableOverrides: Record<string, string> = {
  invoiceitem: "invoice_items",
  "radar.early_fraud_warning": "early_fraud_warnings",
  "entitlements.feature": "features",
  "entitlements.active_entitlement": "active_entitlements",
  "checkout.session": "checkout_sessions",
  account: "accounts"
}

/** Lists that Stripe serves per parent only, or that are only complete per parent. */
const perParent: Record<
  string,
  {
    listPath: string
    param: string
    listParams?: Record<string, string>
    /** The parent's includable list of these objects, read with `expand[]=data.<field>` (saves a request per parent). */
    expand?: { field: string; path: string }
    /** A list every child refers to: when it is empty on an account, no parent has children there. */
    requires?: string
  }
> = {
  // `GET /v1/payment_methods` without `customer` lists Treasury payment methods only (Stripe docs).
  payment_method: { listPath: "/v1/customers", param: "customer" },
  // Customer tax ids; the account's own tax ids (`owner[type]=self`) are not a sync user's data.
  // `Customer.tax_ids` is includable ("no longer included by default … you can still expand the list
  // of tax IDs", Stripe changelog 2020-08-27): one customers page with `expand[]=data.tax_ids` holds
  // the tax ids of 100 customers; a list that says `has_more` is paged by `GET /v1/customers/{id}/tax_ids`.
  tax_id: {
    listPath: "/v1/customers",
    param: "owner[customer]",
    listParams: { "owner[type]": "customer" },
    expand: { field: "tax_ids", path: "/v1/customers/{id}/tax_ids" }
  },
  // An active entitlement names the feature it grants (`feature`, required; Stripe's Entitlements
  // guide: features are created first, attached to products, and customers subscribed to those
  // products become entitled). `GET /v1/entitlements/features` without `archived` lists archived
  // features too, so an empty list means no customer of the account has an active entitlement:
  // the request per customer is skipped.
  "entitlements.active_entitlement": {
    listPath: "/v1/customers",
    param: "customer",
    requires: "/v1/entitlements/features"
  },
  setup_attempt: { listPath: "/v1/setup_intents", param: "setup_intent" },
  payment_attempt_record: { listPath: "/v1/payment_records", param: "payment_record" },
  "radar.value_list_item": { listPath: "/v1/radar/value_lists", param: "value_list" },
  "issuing.token": { listPath: "/v1/issuing/cards", param: "card" },
  "financial_connections.transaction": { listPath: "/v1/financial_connections/accounts", param: "account" },
  ...Object.fromEntries(
    [
      "credit_reversal",
      "debit_reversal",
      "inbound_transfer",
      "outbound_payment",
      "outbound_transfer",
      "received_credit",
      "received_debit",
      "transaction",
      "transaction_entry"
    ].map((o) => [
      `treasury.${o}`,
      { listPath: "/v1/treasury/financial_accounts", param: "financial_account" }
    ])
  )
}

/** Filters that make a list complete (Stripe's defaults leave objects out). */
const listParamOverrides: Record<string, Record<string, string>> = {
  // Without `status`, canceled subscriptions are left out (Stripe docs: "all" includes them).
  subscription: { status: "all" },
  // `line_items` is not included by default: expand it on the list, then complete it.
  "checkout.session": { "expand[]": "data.line_items" }
}

interface EmbeddedChoice {
  readonly field: string
  readonly table: string
  /** Own list endpoint; `{id}` is the parent's id. */
  readonly path: string
  /** The embedded items' Stripe object name. */
  readonly itemObject: string
  /** A fixture holding an example item (by name), when the parent's fixture lacks one. */
  readonly itemFixture?: string
}
const embedded: Record<string, ReadonlyArray<EmbeddedChoice>> = {
  invoice: [
    { field: "lines", table: "invoice_line_items", path: "/v1/invoices/{id}/lines", itemObject: "line_item" }
  ],
  subscription: [
    {
      field: "items",
      table: "subscription_items",
      path: "/v1/subscription_items?subscription={id}",
      itemObject: "subscription_item",
      itemFixture: "subscription_item"
    }
  ],
  "checkout.session": [
    {
      field: "line_items",
      table: "checkout_session_line_items",
      path: "/v1/checkout/sessions/{id}/line_items",
      itemObject: "item",
      itemFixture: "item"
    }
  ],
  credit_note: [
    {
      field: "lines",
      table: "credit_note_line_items",
      path: "/v1/credit_notes/{id}/lines",
      itemObject: "credit_note_line_item",
      itemFixture: "credit_note_line_item"
    }
  ]
}

/** Objects read as children of a parent (not listed on their own) or not worth a table. */
const excluded = new Set([
  "subscription_item", // completed inside subscriptions (`/v1/subscription_items` needs `subscription`)
  "test_helpers.test_clock",
  "apps.secret", // secrets of Stripe Apps
  "billing.feedback_option",
  "product_catalog.trial_offer"
])

/** Reference data or short-lived objects a sync does not need by default (listable on request). */
const notDefault = new Set([
  "event", // the events source reads these; the list keeps 30 days only
  "country_spec",
  "exchange_rate",
  "tax_code",
  "reporting.report_type",
  "climate.product",
  "climate.supplier",
  "three_d_secure.authentication"
])

/** Products an account must have enabled (or a key must be allowed) to list these. */
const gateOf = (object: string, listPath: string): string | null => {
  const ns = object.includes(".") ? object.split(".")[0] : null
  const gated = new Set([
    "issuing",
    "treasury",
    "climate",
    "terminal",
    "identity",
    "financial_connections",
    "tax",
    "reporting",
    "sigma",
    "forwarding",
    "entitlements",
    "billing",
    "apps",
    "radar"
  ])
  if (ns && gated.has(ns)) return ns
  if (["account", "application_fee"].includes(object)) return "connect"
  if (object === "scheduled_query_run") return "sigma"
  if (listPath.startsWith("/v1/apps/")) return "apps"
  return null
}

/** Number fields that hold fractions (Stripe documents them as decimals). */
const fractional = /(^|_)(percent|percent_off|percentage|rate|score|ratio)$/

/** Ids Stripe assigns with a known prefix whose fixture shows a placeholder id. */
const idPrefixOverrides: Record<string, string | null> = {
  "billing.meter": "mtr_",
  "billing.alert": "alrt_",
  "billing.credit_grant": "credgr_",
  invoice_payment: "inpay_",
  plan: null, // plan ids are user-chosen (`price_…` in the fixture is a price id)
  coupon: null // user-chosen
}

// ---------------------------------------------------------------------------------------------
// 4. Derivations.
// ---------------------------------------------------------------------------------------------

const irregularPlurals: Record<string, string> = { person: "people", child: "children" }
const plural = (word: string): string => {
  if (irregularPlurals[word]) return irregularPlurals[word]
  if (/(s|x|z|ch|sh)$/.test(word)) return `${word}es`
  if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`
  return `${word}s`
}
const tableOf = (object: string): string => {
  if (tableOverrides[object]) return tableOverrides[object]
  const parts = object.split(".")
  const last = parts.pop()!
  const words = last.split("_")
  words[words.length - 1] = plural(words[words.length - 1])
  return [...parts, words.join("_")].join("_")
}

const idPrefixFromId = (id: Json | undefined): string | null => {
  if (typeof id !== "string") return null
  const segments = id.split("_")
  if (segments.length < 2) return null
  const random = segments.pop()!
  // the random part is long and mixes digits or cases; `card_payments` or `mtrusg_123` are not ids
  if (random.length < 8 || !/[0-9]/.test(random) || !/[A-Za-z]/.test(random)) return null
  if (segments[segments.length - 1] === "test" || segments[segments.length - 1] === "live") segments.pop()
  return `${segments.join("_")}_`
}

export type ColumnKind = "bigint" | "boolean" | "text" | "numeric" | "jsonb" | "ref"
interface Column {
  readonly name: string
  readonly kind: ColumnKind
  readonly pgType: string
}

const pgTypeOf = (kind: ColumnKind) => (kind === "ref" ? "text" : kind)

const isAlias = (file: string, typeName: string): "literal" | "interface" | undefined => {
  const target = resolveTypeFile(file, typeName)
  if (!target) return undefined
  const text = dtsFiles.get(target)!
  const last = escapeRe(typeName.split(".").pop()!)
  const alias = new RegExp(`^\\s*(?:export )?type ${last} = (.+);$`, "m").exec(text)
  if (alias) return /'/.test(alias[1]) || /^string\b/.test(alias[1]) ? "literal" : "interface"
  if (new RegExp(`^\\s*(?:export )?interface ${last}\\b`, "m").test(text)) return "interface"
  return undefined
}

const kindOf = (
  file: string,
  member: Member | undefined,
  name: string,
  value: Json | undefined
): ColumnKind => {
  const fromValue = (): ColumnKind => {
    if (typeof value === "boolean") return "boolean"
    if (typeof value === "number")
      return Number.isInteger(value) && !fractional.test(name) ? "bigint" : "numeric"
    if (typeof value === "string") return idPrefixFromId(value) ? "ref" : "text"
    return "jsonb"
  }
  if (!member) return fromValue()
  const parts = member.type
    .split(" | ")
    .map((s) => s.trim())
    .filter((s) => s !== "null")
  if (parts.length === 0) return fromValue()
  if (parts.some((p) => p.startsWith("Array<") || p.startsWith("ApiList<") || p.endsWith("[]")))
    return "jsonb"
  if (parts.includes("string") && parts.some((p) => /^[A-Z][\w.]*$/.test(p) && p !== "OtherString")) {
    // `string | Customer | DeletedCustomer`: an expandable reference (literal unions aside)
    const objectish = parts.filter((p) => /^[A-Z][\w.]*$/.test(p) && p !== "OtherString")
    if (objectish.some((p) => isAlias(file, p) === "interface")) return "ref"
  }
  if (parts.every((p) => p === "boolean")) return "boolean"
  if (parts.every((p) => p === "number")) {
    if (fractional.test(name) || (typeof value === "number" && !Number.isInteger(value))) return "numeric"
    return "bigint"
  }
  if (parts.every((p) => p === "string" || p === "Decimal" || /^'.*'$/.test(p) || p === "OtherString"))
    return "text"
  if (parts.length === 1 && /^[A-Z][\w.]*$/.test(parts[0])) {
    if (parts[0] === "Metadata") return "jsonb"
    const alias = isAlias(file, parts[0])
    if (alias === "literal") return "text"
    if (alias === "interface") return "jsonb"
  }
  return fromValue()
}

const columnsOf = (
  file: string,
  elementType: string,
  fixture: JsonObject | undefined,
  skip: ReadonlySet<string>
): ReadonlyArray<Column> => {
  const target = resolveTypeFile(file, elementType)
  const members = target ? (interfaceMembers(dtsFiles.get(target)!, elementType.split(".").pop()!) ?? []) : []
  const byName = new Map(members.map((m) => [m.name, m]))
  const names = new Set([...members.map((m) => m.name), ...Object.keys(fixture ?? {})])
  const columns: Array<Column> = []
  for (const name of [...names].sort()) {
    if (name === "id" || name === "object" || name === "deleted" || skip.has(name)) continue
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) continue
    const member = byName.get(name)
    if (member && /^ApiList</.test(member.type)) continue
    const kind = kindOf(target ?? file, member, name, fixture?.[name])
    columns.push({ name, kind, pgType: pgTypeOf(kind) })
  }
  return columns
}

const fixtureOf = (object: string): JsonObject | undefined =>
  fixtures[object] ?? Object.values(fixtures).find((f) => f.object === object && f.deleted !== true)

const deletableObjects = new Set(
  Object.entries(fixtures)
    .filter(([key, f]) => key.startsWith("deleted_") && f.deleted === true && typeof f.object === "string")
    .map(([, f]) => f.object as string)
)

// ---------------------------------------------------------------------------------------------
// 5. Event types per object (from the SDK's Events.d.ts).
// ---------------------------------------------------------------------------------------------

const eventsFile = join(resourcesDir, "Events.d.ts")
const eventTypesByObject = new Map<string, Array<string>>()
{
  const text = dtsFiles.get(eventsFile) ?? ""
  for (const m of text.matchAll(/^export interface (\w+) extends EventBase \{\n\s+type: '([^']+)';/gm)) {
    const ns = new RegExp(
      `^export declare namespace ${m[1]} \\{\\n\\s+interface Data extends Event\\.Data \\{\\n\\s+object: ([\\w.]+);`,
      "m"
    ).exec(text)
    if (!ns) continue
    const object = objectNameOf(eventsFile, ns[1])
    if (!object) continue
    const list = eventTypesByObject.get(object) ?? []
    list.push(m[2])
    eventTypesByObject.set(object, list)
  }
}

// ---------------------------------------------------------------------------------------------
// 6. Assemble.
// ---------------------------------------------------------------------------------------------

interface Child {
  readonly field: string
  readonly path: string
  readonly table: string
  readonly object: string
}
interface Entry {
  readonly object: string
  readonly table: string
  readonly listPath: string
  readonly listParams?: Record<string, string>
  readonly perParent?: {
    readonly listPath: string
    readonly param: string
    readonly supportsCreated: boolean
    readonly expand?: { readonly field: string; readonly path: string }
    readonly requires?: string
  }
  readonly supportsCreated: boolean
  readonly retrievePath: string | null
  readonly idPrefix: string | null
  readonly deletable: boolean
  readonly defaultEnabled: boolean
  readonly featureGate: string | null
  readonly embeddedLists: ReadonlyArray<Child>
  readonly eventTypes: ReadonlyArray<string>
  readonly columns: ReadonlyArray<Column>
  readonly sdk: string
}
interface ChildEntry {
  readonly object: string
  readonly table: string
  readonly parent: string
  readonly field: string
  readonly retrievePath: string | null
  readonly idPrefix: string | null
  readonly deletable: boolean
  readonly columns: ReadonlyArray<Column>
}

const entries: Array<Entry> = []
const children: Array<ChildEntry> = []
const problems: Array<string> = []
const byObjectSdk = new Map<string, { resource: SdkResource; file: string }>()

for (const resource of sdkResources) {
  const list = resource.methods.get("list")
  if (list?.method !== "GET" || list.path.includes("{")) continue
  const file = dtsOf(resource)
  if (!file) {
    problems.push(`${resource.key}: no .d.ts`)
    continue
  }
  const info = listInfo(file, "list")
  if (!info) {
    problems.push(`${resource.key}: list signature not understood`)
    continue
  }
  const object = objectNameOf(file, info.elementType)
  if (!object) {
    problems.push(`${resource.key}: object name of ${info.elementType} not found`)
    continue
  }
  byObjectSdk.set(object, { resource, file })
  if (excluded.has(object)) continue
  const required = info.params.filter((p) => !p.optional).map((p) => p.name)
  const parent = perParent[object]
  if ((info.paramsRequired || required.length > 0) && !parent) {
    problems.push(`${resource.key}: list needs ${required.join(", ")}; skipped`)
    continue
  }
  const supportsCreated = info.params.some((p) => p.name === "created")
  const fixture = fixtureOf(object)
  const embeddedChoices = embedded[object] ?? []
  const retrieve = resource.methods.get("retrieve")
  const listParams = { ...parent?.listParams, ...listParamOverrides[object] }
  entries.push({
    object,
    table: tableOf(object),
    listPath: list.path,
    ...(Object.keys(listParams).length > 0 ? { listParams } : {}),
    ...(parent
      ? {
          perParent: {
            listPath: parent.listPath,
            param: parent.param,
            supportsCreated: true, // settled below, once the parent's entry exists
            ...(parent.expand ? { expand: parent.expand } : {}),
            ...(parent.requires ? { requires: parent.requires } : {})
          }
        }
      : {}),
    supportsCreated,
    retrievePath: retrieve && retrieve.method === "GET" ? retrieve.path : null,
    idPrefix: object in idPrefixOverrides ? idPrefixOverrides[object] : idPrefixFromId(fixture?.id),
    deletable: deletableObjects.has(object) || resource.methods.has("del"),
    defaultEnabled: !notDefault.has(object),
    featureGate: gateOf(object, list.path),
    embeddedLists: embeddedChoices.map((c) => ({
      field: c.field,
      path: c.path,
      table: c.table,
      object: c.itemObject
    })),
    eventTypes: (eventTypesByObject.get(object) ?? []).sort(),
    columns: columnsOf(file, info.elementType, fixture, new Set(embeddedChoices.map((c) => c.field))),
    sdk: `stripe.${resource.key}.list`
  })
}

// child tables: columns from the item type of the child's own list endpoint and an example item
for (const [parentObject, choices] of Object.entries(embedded)) {
  const parentSdk = byObjectSdk.get(parentObject)
  if (!parentSdk) {
    problems.push(`${parentObject}: parent not in the SDK`)
    continue
  }
  for (const choice of choices) {
    const listMethod = [...parentSdk.resource.methods].find(
      ([name, c]) => name.startsWith("list") && name !== "list" && c.path === choice.path.split("?")[0]
    )
    const own = byObjectSdk.get(choice.itemObject)
    const info = listMethod
      ? listInfo(parentSdk.file, listMethod[0])
      : own
        ? listInfo(own.file, "list")
        : undefined
    const file = listMethod ? parentSdk.file : own?.file
    if (!info || !file) {
      problems.push(`${parentObject}.${choice.field}: item type not found`)
      continue
    }
    const parentFixture = fixtureOf(parentObject)?.[choice.field]
    const embeddedItem =
      isObject(parentFixture) && Array.isArray(parentFixture.data) && isObject(parentFixture.data[0])
        ? parentFixture.data[0]
        : undefined
    const fixture = embeddedItem ?? (choice.itemFixture ? fixtures[choice.itemFixture] : undefined)
    const retrieve = own?.resource.methods.get("retrieve")
    children.push({
      object: choice.itemObject,
      table: choice.table,
      parent: parentObject,
      field: choice.field,
      retrievePath: retrieve && retrieve.method === "GET" ? retrieve.path : null,
      idPrefix: idPrefixFromId(fixture?.id),
      deletable: deletableObjects.has(choice.itemObject),
      columns: columnsOf(file, info.elementType, fixture, new Set())
    })
  }
}

for (const [i, e] of entries.entries()) {
  if (!e.perParent) continue
  const parentEntry = entries.find((p) => p.listPath === e.perParent!.listPath && !p.perParent)
  if (!parentEntry) throw new Error(`${e.object}: parent list ${e.perParent.listPath} is not in the catalog`)
  entries[i] = { ...e, perParent: { ...e.perParent, supportsCreated: parentEntry.supportsCreated } }
}
entries.sort((a, b) => a.table.localeCompare(b.table))
const tables = new Set<string>()
for (const t of [...entries.map((e) => e.table), ...children.map((c) => c.table)]) {
  if (tables.has(t) && !children.some((c) => c.table === t && c.object === "subscription_item")) {
    throw new Error(`duplicate table ${t}`)
  }
  tables.add(t)
}

const body = `// Generated by scripts/generate-catalog.ts from stripe@${sdkVersion} and Stripe's fixtures3.json. Do not edit.
import type { ChildData, ResourceData } from "../internal/catalogData.js"

/** The Stripe API version the SDK pins (\`Stripe.API_VERSION\`). */
export const apiVersion = ${JSON.stringify(Stripe.API_VERSION)}

/** The \`stripe\` SDK version the catalog was derived from. */
export const sdkVersion = ${JSON.stringify(sdkVersion)}

export const resources: ReadonlyArray<ResourceData> = ${JSON.stringify(entries, null, 2)}

export const children: ReadonlyArray<ChildData> = ${JSON.stringify(children, null, 2)}
`
writeFileSync(outPath, body)
for (const p of problems) console.warn(`note: ${p}`)
console.info(`wrote ${outPath}: ${entries.length} resources, ${children.length} child tables`)
