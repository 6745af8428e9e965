import { Event } from "../../src/index.js"

let counter = 0

/** A unique suffix, so contract tests can share one store (one Postgres database per file). */
export const unique = (prefix: string): string =>
  `${prefix}_${Date.now().toString(36)}${(counter++).toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`

/** A Stripe-like event for `accountId`, with a customer object of about `size` bytes. */
export const customerEvent = (options: {
  readonly accountId: string
  readonly id?: string
  readonly type?: string
  readonly objectId?: string
  readonly versionTs?: number
  readonly name?: string
  readonly source?: string
}): Event.Event => {
  const objectId = options.objectId ?? unique("cus")
  return new Event.Event({
    id: Event.EventId.make(options.id ?? unique("evt")),
    type: options.type ?? "customer.updated",
    source: options.source ?? "webhook",
    accountId: options.accountId,
    objectType: "customer",
    objectId,
    versionTs: options.versionTs ?? 1_700_000_000,
    apiVersion: "2025-01-27.acacia",
    data: {
      id: objectId,
      object: "customer",
      name: options.name ?? "Jenny Rosen",
      metadata: { plan: "pro" },
      balance: 0
    },
    receivedAt: new Date("2026-01-01T00:00:00.000Z")
  })
}

/** A snapshot of a customer in state `name`, read at `versionTs`. */
export const customerSnapshot = (
  accountId: string,
  objectId: string,
  name: string,
  versionTs: number
): Event.Event =>
  Event.snapshot({
    source: "backfill",
    accountId,
    objectType: "customer",
    objectId,
    versionTs,
    apiVersion: "2025-01-27.acacia",
    data: { id: objectId, object: "customer", name, metadata: {} },
    receivedAt: new Date("2026-01-01T00:00:00.000Z")
  })
