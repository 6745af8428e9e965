/**
 * The Sigma tables (generated from Stripe's Sigma schema): columns, types, primary keys, the
 * cursor of incremental reads, and how each table is kept (append-only tables incrementally,
 * tables whose rows change in place refreshed in full).
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Option } from "effect"
import { tables as generated } from "./generated/schema.js"
import type { TableData } from "./internal/tableData.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Table = TableData

/**
 * Every Sigma table.
 *
 * @since 0.1.0
 */
export const all: ReadonlyArray<Table> = generated

const index = new Map(all.map((t) => [t.name, t]))

/**
 * @since 0.1.0
 */
export const byName = (name: string): Option.Option<Table> => Option.fromNullable(index.get(name))

/**
 * The default set: the reconciliation tables Sigma is used for most.
 *
 * @since 0.1.0
 */
export const defaultNames: ReadonlyArray<string> = [
  "balance_transactions",
  "balance_transaction_fee_details",
  "charges",
  "customers",
  "invoices",
  "subscriptions",
  "subscription_items",
  "subscription_item_change_events",
  "refunds",
  "disputes",
  "prices",
  "products"
]

/**
 * Tables that can be synced: they have a primary key (rows are upserted by it).
 *
 * @since 0.1.0
 */
export const syncable = (table: Table): boolean => table.primaryKey.length > 0

/**
 * The PostgreSQL type of a Sigma type.
 *
 * @since 0.1.0
 */
export const pgType = (sigmaType: string): string =>
  sigmaType === "bigint"
    ? "bigint"
    : sigmaType === "timestamp"
      ? "timestamptz"
      : sigmaType === "boolean"
        ? "boolean"
        : sigmaType === "double"
          ? "double precision"
          : sigmaType.startsWith("decimal")
            ? "numeric"
            : "text"

/**
 * A column's name in PostgreSQL: Sigma's own, or for the few longer than PostgreSQL's 63 bytes, its
 * first 54 bytes and a hash of the whole (stable, and distinct where truncation would collide).
 *
 * @since 0.1.0
 */
export const pgColumn = (name: string): string =>
  Buffer.byteLength(name) <= 63
    ? name
    : `${name.slice(0, 54)}_${createHash("sha256").update(name).digest("hex").slice(0, 8)}`
