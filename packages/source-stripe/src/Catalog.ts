/**
 * The resource catalog: every Stripe resource a sync can list, with what it takes to list it
 * completely (filters, per-parent lists, embedded lists to complete), its table and typed columns.
 * The data is generated from the official `stripe` SDK and Stripe's example objects by
 * `scripts/generate-catalog.ts` (`pnpm --filter @stripe-sync/source-stripe generate`).
 *
 * @since 0.1.0
 */
import { Option } from "effect"
import * as Generated from "./generated/catalog.js"
import type {
  ChildData,
  ColumnData,
  ColumnKind as ColumnKindData,
  EmbeddedListData,
  ResourceData
} from "./internal/catalogData.js"

/**
 * How a typed column is read from `_raw_data`: `bigint` (amounts, unix times), `boolean`, `text`,
 * `numeric` (fractions), `jsonb` (nested objects and arrays) or `ref` (an expandable reference: the
 * id as `text` whether expanded or not, indexed).
 *
 * @since 0.1.0
 * @category models
 */
export type ColumnKind = ColumnKindData

/**
 * A typed column: Stripe's top-level field name, its kind and its Postgres type.
 *
 * @since 0.1.0
 * @category models
 */
export type Column = ColumnData

/**
 * An embedded list that Stripe truncates, completed from its own endpoint (`{id}` is the parent's
 * id) and kept in a child table.
 *
 * @since 0.1.0
 * @category models
 */
export type EmbeddedList = EmbeddedListData

/**
 * A listable resource.
 *
 * - `listPath` / `listParams`: the list endpoint and the filters that make it complete
 *   (subscriptions `status=all`).
 * - `perParent`: the list is read per parent object (payment methods per customer): page
 *   `perParent.listPath`, then `listPath` with `perParent.param=<parent id>`; with
 *   `perParent.expand`, the parent page expands its list of these objects (a customer's `tax_ids`)
 *   and only a list that says `has_more` is paged further, from `expand.path`.
 * - `supportsCreated`: the list endpoint takes `created` filters (range splitting).
 * - `retrievePath`: `GET` path of one object (`{id}`), if Stripe has one.
 * - `idPrefix`: the prefix of Stripe's ids (`cus_`), null when ids are user-chosen or unknown.
 * - `deletable`: Stripe deletes these objects (a `*.deleted` event leaves a tombstone).
 * - `defaultEnabled`: part of a full sync unless asked otherwise (reference data is not).
 * - `featureGate`: the Stripe product an account must have (Issuing, Treasury, …); lists of gated
 *   resources may fail with a permission error, which means "skip", not "fail the run".
 *
 * @since 0.1.0
 * @category models
 */
export type Resource = ResourceData

/**
 * A child table filled from a parent's embedded list (invoice `lines` → `invoice_line_items`).
 *
 * @since 0.1.0
 * @category models
 */
export type Child = ChildData

/**
 * The API version the catalog was derived for (the SDK's pinned `Stripe.API_VERSION`).
 *
 * @since 0.1.0
 */
export const apiVersion: string = Generated.apiVersion

/**
 * Every listable resource, ordered by table name.
 *
 * @since 0.1.0
 */
export const all: ReadonlyArray<Resource> = Generated.resources

/**
 * The resources a full sync reads by default.
 *
 * @since 0.1.0
 */
export const defaults: ReadonlyArray<Resource> = all.filter((r) => r.defaultEnabled)

/**
 * Every child table.
 *
 * @since 0.1.0
 */
export const children: ReadonlyArray<Child> = Generated.children

const objectIndex = new Map(all.map((r) => [r.object, r]))
const tableIndex = new Map(all.map((r) => [r.table, r]))
const childTableIndex = new Map(children.map((c) => [c.table, c]))

/**
 * @since 0.1.0
 * @category lookups
 */
export const byObject = (object: string): Option.Option<Resource> =>
  Option.fromNullable(objectIndex.get(object))

/**
 * @since 0.1.0
 * @category lookups
 */
export const byTable = (table: string): Option.Option<Resource> => Option.fromNullable(tableIndex.get(table))

/**
 * @since 0.1.0
 * @category lookups
 */
export const childByTable = (table: string): Option.Option<Child> =>
  Option.fromNullable(childTableIndex.get(table))

/** Prefixes, longest first, so `sub_sched_…` is a subscription schedule and not a subscription. */
const prefixes: ReadonlyArray<readonly [string, Resource | Child]> = [
  ...all.flatMap((r) => (r.idPrefix ? [[r.idPrefix, r] as const] : [])),
  ...children.flatMap((c) =>
    c.idPrefix && !all.some((r) => r.idPrefix === c.idPrefix) ? [[c.idPrefix, c] as const] : []
  )
].sort((a, b) => b[0].length - a[0].length)

/**
 * The resource (or child) an id belongs to, by its prefix (`cus_…` → customer). Ids chosen by
 * users (coupons, plans) have no prefix and give `None`.
 *
 * @since 0.1.0
 * @category lookups
 */
export const byIdPrefix = (id: string): Option.Option<Resource | Child> =>
  Option.fromNullable(prefixes.find(([prefix]) => id.startsWith(prefix) && id.length > prefix.length)?.[1])

const deletableObjects = new Set([
  ...all.filter((r) => r.deletable).map((r) => r.object),
  ...children.filter((c) => c.deletable).map((c) => c.object)
])

/**
 * Whether Stripe deletes objects of this type (so a `<type>.deleted` event leaves a tombstone).
 * `customer.subscription.deleted` is not a delete: `subscription` is not deletable.
 *
 * @since 0.1.0
 * @category lookups
 */
export const isDeletable = (objectType: string): boolean => deletableObjects.has(objectType)

/**
 * A table of the `stripe` tables projection, in the shape `@stripe-sync/sink-postgres`'s
 * `StripeTables.projection({ tables })` takes (the two packages do not import each other).
 *
 * @since 0.1.0
 * @category models
 */
export interface TableSpec {
  readonly object: string
  readonly table: string
  readonly deletable: boolean
  readonly columns: ReadonlyArray<{ readonly name: string; readonly kind: ColumnKind }>
  readonly children?: ReadonlyArray<{ readonly field: string; readonly table: string }>
  readonly isChild?: boolean
}

/**
 * The tables of a set of resources (default: every resource), with the child tables of their
 * embedded lists.
 *
 * @since 0.1.0
 */
export const tableSpecs = (resources: ReadonlyArray<Resource> = all): ReadonlyArray<TableSpec> => {
  const specs: Array<TableSpec> = resources.map((r) => ({
    object: r.object,
    table: r.table,
    deletable: r.deletable,
    columns: r.columns,
    children: r.embeddedLists.map((l) => ({ field: l.field, table: l.table }))
  }))
  const childTables = new Set(resources.flatMap((r) => r.embeddedLists.map((l) => l.table)))
  for (const c of children) {
    if (!childTables.has(c.table) || specs.some((s) => s.table === c.table)) continue
    specs.push({
      object: c.object,
      table: c.table,
      deletable: c.deletable,
      columns: c.columns,
      isChild: true
    })
  }
  return specs
}
