/** Builders of Stripe objects from the committed templates (shared by the generator and the API). */
import { templates } from "../generated/templates.js"
import type { StripeObject } from "../Store.js"

type Fields = Record<string, unknown>

/** A new object of `type`: the template with `fields` over it. Nested template values are shared, never mutated. */
export const make = (type: string, fields: Fields & { id: string }): StripeObject => {
  const t = templates[type]
  if (t === undefined) throw new Error(`no template for ${type}`)
  return { ...t, ...fields } as StripeObject
}

/** Stripe's embedded list: at most 10 items, `has_more`, `total_count`, and the `url` that pages the rest. */
export const embeddedList = (all: ReadonlyArray<StripeObject>, url: string) => ({
  object: "list",
  data: all.length > 10 ? all.slice(0, 10) : all,
  has_more: all.length > 10,
  total_count: all.length,
  url
})

export const invoiceLinesUrl = (id: string) => `/v1/invoices/${id}/lines`
export const subscriptionItemsUrl = (id: string) => `/v1/subscription_items?subscription=${id}`
export const creditNoteLinesUrl = (id: string) => `/v1/credit_notes/${id}/lines`
export const checkoutLineItemsUrl = (id: string) => `/v1/checkout/sessions/${id}/line_items`

/** Which embedded list of a parent type holds its children, and the url that pages them. */
export const embedded: Readonly<
  Record<string, { field: string; url: (id: string) => string; expandOnly?: boolean }>
> = {
  invoice: { field: "lines", url: invoiceLinesUrl },
  subscription: { field: "items", url: subscriptionItemsUrl },
  credit_note: { field: "lines", url: creditNoteLinesUrl },
  "checkout.session": { field: "line_items", url: checkoutLineItemsUrl, expandOnly: true }
}

/**
 * Lists that Stripe includes in an object only when expanded, drawn from another type's objects: a
 * customer's `tax_ids` (not included by default since API 2020-08-27, "you can still expand the list
 * of tax IDs"), paged further by `GET /v1/customers/{id}/tax_ids`.
 */
export const includable: Readonly<
  Record<string, Readonly<Record<string, { type: string; owner: string; url: (id: string) => string }>>>
> = {
  customer: { tax_ids: { type: "tax_id", owner: "customer", url: (id) => `/v1/customers/${id}/tax_ids` } }
}

export const invoiceDefaults: Fields = {
  amount_overpaid: 0,
  last_finalization_error: null,
  from_invoice: null,
  latest_revision: null,
  next_payment_attempt: null,
  due_date: null,
  auto_advance: false,
  automatically_finalizes_at: null,
  post_payment_credit_notes_amount: 0,
  pre_payment_credit_notes_amount: 0,
  starting_balance: 0,
  ending_balance: 0,
  attempt_count: 0,
  attempted: false
}

export const subscriptionDefaults: Fields = {
  billing_cycle_anchor_config: null,
  billing_thresholds: null,
  billing_schedules: [],
  cancel_at: null,
  cancel_at_period_end: false,
  canceled_at: null,
  ended_at: null,
  next_pending_invoice_item_invoice: null,
  pause_collection: null,
  pending_invoice_item_interval: null,
  pending_update: null,
  trial_end: null,
  trial_start: null,
  schedule: null,
  latest_invoice: null
}
