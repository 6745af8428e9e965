/**
 * Derives the compact object templates of the emulator from Stripe's published examples
 * (`fixtures3.json`, from stripe/openapi) and the list endpoints from the installed `stripe` SDK.
 *
 *   pnpm --filter @stripe-sync/stripe-emulator generate            # default fixture path
 *   tsx packages/stripe-emulator/scripts/generate-templates.ts <fixtures3.json>
 *
 * Output: src/generated/templates.ts (committed). The emulator never reads the fixtures at run time.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const fixturesPath = process.argv[2] ?? join(here, "../../../../shared/stripe/fixtures3.json")
const outPath = join(here, "../src/generated/templates.ts")

/** Resource types the emulator generates, keyed by the fixture name. */
const TYPES = [
  "account",
  "balance_transaction",
  "charge",
  "checkout.session",
  "coupon",
  "credit_note",
  "credit_note_line_item",
  "customer",
  "dispute",
  "event",
  "invoice",
  "invoiceitem",
  "item",
  "line_item",
  "payment_intent",
  "payment_method",
  "payout",
  "plan",
  "price",
  "product",
  "promotion_code",
  "radar.early_fraud_warning",
  "refund",
  "review",
  "setup_intent",
  "subscription",
  "subscription_item",
  "subscription_schedule",
  "tax_id",
  "tax_rate",
  "transfer",
  "webhook_endpoint"
]

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
const isRecord = (v: Json): v is { [k: string]: Json } =>
  typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * Compaction: embedded lists keep their envelope with no data; expandable objects embedded by the
 * example (anything nested with an `id` and an `object`) become null, since the emulator sets its own
 * references; ids and timestamps are reset and filled in by the generator.
 */
const compact = (value: Json, depth: number): Json => {
  if (Array.isArray(value)) return value.map((v) => compact(v, depth + 1))
  if (!isRecord(value)) return value
  if (depth > 0 && value.object === "list") {
    return { object: "list", data: [], has_more: false, url: typeof value.url === "string" ? value.url : "" }
  }
  if (depth > 0 && typeof value.id === "string" && typeof value.object === "string") return null
  const out: { [k: string]: Json } = {}
  for (const key of Object.keys(value).sort()) out[key] = compact(value[key] as Json, depth + 1)
  return out
}

/**
 * Fields whose published example is filler (every option of every payment method, placeholder numbers)
 * take the value Stripe returns for a plain object of the type.
 */
const OVERRIDES: Record<string, Record<string, Json>> = {
  invoice: {
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    shipping_cost: null,
    shipping_details: null,
    customer_shipping: null,
    from_invoice: null,
    last_finalization_error: null,
    threshold_reason: null,
    amount_overpaid: 0
  },
  subscription: {
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: "off"
    },
    pending_update: null,
    billing_schedules: [],
    billing_cycle_anchor_config: null,
    pending_invoice_item_interval: null
  },
  "checkout.session": { shipping_cost: null, currency_conversion: null },
  credit_note: { shipping_cost: null, pretax_credit_amounts: [], refunds: [] },
  payment_intent: { payment_method_options: null },
  setup_intent: { payment_method_options: null, last_setup_error: null, next_action: null }
}

const fixtures = JSON.parse(readFileSync(fixturesPath, "utf8")) as { resources: Record<string, Json> }
const templates: Record<string, Json> = {}
for (const type of TYPES) {
  const fixture = fixtures.resources[type]
  if (!isRecord(fixture)) throw new Error(`fixture ${type} missing`)
  const t = compact(fixture, 0) as { [k: string]: Json }
  t.id = ""
  if ("created" in t) t.created = 0
  if ("livemode" in t) t.livemode = false
  if ("metadata" in t) t.metadata = {}
  for (const [k, v] of Object.entries(OVERRIDES[type] ?? {})) if (k in t) t[k] = v
  templates[type] = t
}

// Every list endpoint of the SDK (GET, methodType "list"), as path patterns with `:param`.
const require = createRequire(import.meta.url)
const sdkDir = join(dirname(require.resolve("stripe")), "..", "esm", "resources")
const listPaths = new Set<string>()
const walk = (dir: string) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) walk(p)
    else if (entry.name.endsWith(".js")) {
      const src = readFileSync(p, "utf8")
      const re =
        /_makeRequest\('GET',\s*[`'](\/v1\/[^`']*)[`'],\s*params,\s*options,\s*\{\s*methodType: 'list'/g
      for (const m of src.matchAll(re))
        listPaths.add(m[1]!.replace(/\$\{encodeURIComponent\((\w+)\)\}/g, ":$1"))
    }
  }
}
walk(sdkDir)
const sdkVersion = (
  JSON.parse(readFileSync(join(dirname(require.resolve("stripe")), "..", "package.json"), "utf8")) as {
    version: string
  }
).version

const body = `// Generated by scripts/generate-templates.ts from Stripe's fixtures3.json and stripe@${sdkVersion}. Do not edit.
export const templates: Record<string, Record<string, unknown>> = ${JSON.stringify(templates)}

/** Every list endpoint of the stripe SDK (GET, paginated), \`:name\` for path parameters. */
export const sdkListPaths: ReadonlyArray<string> = ${JSON.stringify([...listPaths].sort(), null, 1)}
`
writeFileSync(outPath, body)
process.stdout.write(`wrote ${outPath}: ${TYPES.length} templates, ${listPaths.size} list paths\n`)
