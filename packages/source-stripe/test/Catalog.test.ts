import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import * as Catalog from "../src/Catalog.js"

describe("Catalog", () => {
  it("holds at least 60 listable resources, each with a table and a list path", () => {
    assert.isAtLeast(Catalog.all.length, 60)
    for (const r of Catalog.all) {
      assert.match(r.table, /^[a-z][a-z0-9_]*$/, r.object)
      assert.match(r.listPath, /^\/v1\/[a-z_/]+$/, r.object)
      assert.isAbove(r.columns.length, 0, r.object)
    }
  })

  it("has no duplicate tables or objects, children included", () => {
    const tables = [...Catalog.all.map((r) => r.table), ...Catalog.children.map((c) => c.table)]
    assert.strictEqual(new Set(tables).size, tables.length)
    const objects = Catalog.all.map((r) => r.object)
    assert.strictEqual(new Set(objects).size, objects.length)
  })

  it("uses today's engines' table names", () => {
    for (const [object, table] of [
      ["customer", "customers"],
      ["product", "products"],
      ["price", "prices"],
      ["plan", "plans"],
      ["coupon", "coupons"],
      ["promotion_code", "promotion_codes"],
      ["subscription", "subscriptions"],
      ["subscription_schedule", "subscription_schedules"],
      ["invoice", "invoices"],
      ["charge", "charges"],
      ["payment_intent", "payment_intents"],
      ["payment_method", "payment_methods"],
      ["setup_intent", "setup_intents"],
      ["refund", "refunds"],
      ["dispute", "disputes"],
      ["payout", "payouts"],
      ["tax_id", "tax_ids"],
      ["credit_note", "credit_notes"],
      ["radar.early_fraud_warning", "early_fraud_warnings"],
      ["review", "reviews"],
      ["checkout.session", "checkout_sessions"],
      ["entitlements.feature", "features"],
      ["entitlements.active_entitlement", "active_entitlements"],
      ["invoice_payment", "invoice_payments"]
    ] as const) {
      assert.strictEqual(Option.getOrThrow(Catalog.byObject(object)).table, table, object)
    }
  })

  it("customers: the plain list, created filters, deletable", () => {
    const customers = Option.getOrThrow(Catalog.byTable("customers"))
    assert.strictEqual(customers.object, "customer")
    assert.strictEqual(customers.listPath, "/v1/customers")
    assert.strictEqual(customers.listParams, undefined)
    assert.strictEqual(customers.perParent, undefined)
    assert.strictEqual(customers.supportsCreated, true)
    assert.strictEqual(customers.idPrefix, "cus_")
    assert.strictEqual(customers.retrievePath, "/v1/customers/{id}")
    assert.strictEqual(customers.deletable, true)
    assert.strictEqual(customers.defaultEnabled, true)
    assert.strictEqual(customers.featureGate, null)
    assert.deepStrictEqual(customers.embeddedLists, [])
    assert.include(customers.eventTypes, "customer.deleted")
    const byName = new Map(customers.columns.map((c) => [c.name, c]))
    assert.deepStrictEqual(byName.get("email"), { name: "email", kind: "text", pgType: "text" })
    assert.deepStrictEqual(byName.get("created"), { name: "created", kind: "bigint", pgType: "bigint" })
    assert.deepStrictEqual(byName.get("balance"), { name: "balance", kind: "bigint", pgType: "bigint" })
    assert.deepStrictEqual(byName.get("livemode"), { name: "livemode", kind: "boolean", pgType: "boolean" })
    assert.deepStrictEqual(byName.get("address"), { name: "address", kind: "jsonb", pgType: "jsonb" })
    assert.deepStrictEqual(byName.get("default_source"), {
      name: "default_source",
      kind: "ref",
      pgType: "text"
    })
    assert.isFalse(byName.has("id"))
    assert.isFalse(byName.has("object"))
  })

  it("subscriptions: status=all, items completed into subscription_items, not deletable", () => {
    const subscriptions = Option.getOrThrow(Catalog.byObject("subscription"))
    assert.strictEqual(subscriptions.table, "subscriptions")
    assert.strictEqual(subscriptions.listPath, "/v1/subscriptions")
    assert.deepStrictEqual(subscriptions.listParams, { status: "all" })
    assert.strictEqual(subscriptions.supportsCreated, true)
    assert.strictEqual(subscriptions.deletable, false)
    assert.isFalse(Catalog.isDeletable("subscription"))
    assert.deepStrictEqual(subscriptions.embeddedLists, [
      {
        field: "items",
        path: "/v1/subscription_items?subscription={id}",
        table: "subscription_items",
        object: "subscription_item"
      }
    ])
    assert.isFalse(subscriptions.columns.some((c) => c.name === "items"))
    const customer = subscriptions.columns.find((c) => c.name === "customer")
    assert.deepStrictEqual(customer, { name: "customer", kind: "ref", pgType: "text" })
  })

  it("payment methods are read per customer", () => {
    const pm = Option.getOrThrow(Catalog.byTable("payment_methods"))
    assert.strictEqual(pm.listPath, "/v1/payment_methods")
    assert.deepStrictEqual(pm.perParent, {
      listPath: "/v1/customers",
      param: "customer",
      supportsCreated: true
    })
    assert.strictEqual(pm.idPrefix, "pm_")
  })

  it("invoices: lines completed into invoice_line_items, draft invoices deletable", () => {
    const invoices = Option.getOrThrow(Catalog.byTable("invoices"))
    assert.strictEqual(invoices.listPath, "/v1/invoices")
    assert.strictEqual(invoices.supportsCreated, true)
    assert.strictEqual(invoices.deletable, true)
    assert.deepStrictEqual(invoices.embeddedLists, [
      { field: "lines", path: "/v1/invoices/{id}/lines", table: "invoice_line_items", object: "line_item" }
    ])
    const lines = Option.getOrThrow(Catalog.childByTable("invoice_line_items"))
    assert.strictEqual(lines.parent, "invoice")
    assert.strictEqual(lines.field, "lines")
    assert.strictEqual(lines.object, "line_item")
    assert.deepStrictEqual(
      lines.columns.find((c) => c.name === "amount"),
      { name: "amount", kind: "bigint", pgType: "bigint" }
    )
  })

  it("checkout sessions expand line_items so they can be completed", () => {
    const sessions = Option.getOrThrow(Catalog.byTable("checkout_sessions"))
    assert.deepStrictEqual(sessions.listParams, { "expand[]": "data.line_items" })
    assert.deepStrictEqual(
      sessions.embeddedLists.map((e) => [e.field, e.table, e.path]),
      [["line_items", "checkout_session_line_items", "/v1/checkout/sessions/{id}/line_items"]]
    )
    const credit = Option.getOrThrow(Catalog.byTable("credit_notes"))
    assert.deepStrictEqual(
      credit.embeddedLists.map((e) => e.table),
      ["credit_note_line_items"]
    )
  })

  it("finds resources by id prefix, longest prefix first", () => {
    const objectOf = (id: string) => Option.map(Catalog.byIdPrefix(id), (r) => r.object)
    assert.deepStrictEqual(objectOf("cus_QXg1o8vcGmoR32"), Option.some("customer"))
    assert.deepStrictEqual(objectOf("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"), Option.some("subscription"))
    assert.deepStrictEqual(
      objectOf("sub_sched_1Pgc7AB7WZ01zgkWaeHcsbnC"),
      Option.some("subscription_schedule")
    )
    assert.deepStrictEqual(objectOf("si_QXhVBoJ7NQdNXh"), Option.some("subscription_item"))
    assert.deepStrictEqual(objectOf("cs_test_a1YS1URl"), Option.some("checkout.session"))
    assert.deepStrictEqual(objectOf("in_1Pgc6tB7WZ01zgkW"), Option.some("invoice"))
    assert.deepStrictEqual(objectOf("ii_1Pgc6sB7WZ01zgkW"), Option.some("invoiceitem"))
    assert.deepStrictEqual(objectOf("Z4OV52SU"), Option.none())
    assert.deepStrictEqual(objectOf("cus_"), Option.none())
  })

  it("knows what Stripe deletes", () => {
    for (const o of ["customer", "product", "price", "plan", "coupon", "tax_id", "invoice", "invoiceitem"]) {
      assert.isTrue(Catalog.isDeletable(o), o)
    }
    assert.isTrue(Catalog.isDeletable("subscription_item"))
    for (const o of ["subscription", "charge", "payment_intent", "unknown_thing"]) {
      assert.isFalse(Catalog.isDeletable(o), o)
    }
  })

  it("marks feature-gated resources", () => {
    assert.strictEqual(Option.getOrThrow(Catalog.byTable("issuing_cards")).featureGate, "issuing")
    assert.strictEqual(
      Option.getOrThrow(Catalog.byTable("treasury_financial_accounts")).featureGate,
      "treasury"
    )
    assert.strictEqual(Option.getOrThrow(Catalog.byTable("climate_orders")).featureGate, "climate")
    assert.isFalse(Catalog.defaults.some((r) => r.object === "event" || r.object === "country_spec"))
  })

  it("gives the tables of the stripe tables projection, children included", () => {
    const specs = Catalog.tableSpecs()
    const invoices = specs.find((s) => s.table === "invoices")!
    assert.deepStrictEqual(invoices.children, [{ field: "lines", table: "invoice_line_items" }])
    const lines = specs.find((s) => s.table === "invoice_line_items")!
    assert.isTrue(lines.isChild)
    assert.strictEqual(new Set(specs.map((s) => s.table)).size, specs.length)
    const only = Catalog.tableSpecs(Catalog.all.filter((r) => r.table === "customers"))
    assert.deepStrictEqual(
      only.map((s) => s.table),
      ["customers"]
    )
  })

  it("pins the SDK's API version", () => {
    assert.match(Catalog.apiVersion, /^\d{4}-\d{2}-\d{2}\.\w+$/)
  })
})
