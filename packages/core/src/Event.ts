/**
 * The normalised event envelope of DESIGN.md: one shape for everything a source reads.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Schema } from "effect"
import type { LogPosition } from "./LogPosition.js"

/** Stripe's `evt_…`, a snapshot's deterministic `snap_…`, or a plugin's own id. */
export const EventId = Schema.NonEmptyTrimmedString.pipe(Schema.brand("@stripe-sync/EventId"))
export type EventId = typeof EventId.Type

/** A JSON object as a source received it (Stripe's object, complete and unfiltered). */
export type JsonObject = { readonly [key: string]: unknown }

/**
 * The schema of `data`: any non-array object. Checked in constant time (an object of hundreds of
 * fields is not walked key by key on the hot path).
 */
export const JsonObject: Schema.Schema<JsonObject> = Schema.declare(
  (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u),
  { identifier: "JsonObject", description: "a JSON object" }
)

/** Where an event came from: `webhook`, `events_api`, `backfill`, `revalidate` or a plugin's name. */
export const EventSource = Schema.NonEmptyTrimmedString
export type EventSource = typeof EventSource.Type

/** The envelope every source appends to the log. Field names are the contract. */
export class Event extends Schema.Class<Event>("@stripe-sync/core/Event")({
  id: EventId,
  type: Schema.NonEmptyTrimmedString,
  source: EventSource,
  accountId: Schema.NonEmptyTrimmedString,
  objectType: Schema.NonEmptyTrimmedString,
  objectId: Schema.NonEmptyTrimmedString,
  /** When this state of the object was true: Stripe's clock, whole unix seconds. */
  versionTs: Schema.NonNegativeInt,
  apiVersion: Schema.NullOr(Schema.String),
  data: JsonObject,
  receivedAt: Schema.DateFromSelf
}) {}

/** The encoded form of an event, e.g. as a plugin builds it by hand before validation. */
export type EventInput = typeof Event.Encoded

/** Parses untrusted input into an `Event`; the error names the offending field. */
export const decode = Schema.decodeUnknown(Event, { errors: "all", onExcessProperty: "ignore" })

/** An event as the log stores it. */
export interface StoredEvent extends Event, LogPosition {}

/** `<object>.snapshot`: an object read from the API rather than delivered as an event. */
export const snapshotType = (objectType: string): string => `${objectType}.snapshot`

/** True for the types of `snapshotType`. */
export const isSnapshot = (event: Pick<Event, "type">): boolean => event.type.endsWith(".snapshot")

/**
 * A stable JSON text of a value: object keys sorted, so two equal objects hash alike whatever the
 * key order a server happened to send.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  const keys = Object.keys(value).sort()
  const parts: Array<string> = []
  for (const key of keys) {
    const v = (value as Record<string, unknown>)[key]
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`)
  }
  return `{${parts.join(",")}}`
}

/** The hash of an object's state (hex sha-256 of its canonical JSON). */
export const hashData = (data: unknown): string =>
  createHash("sha256").update(canonicalJson(data)).digest("hex")

/**
 * The deterministic id of a snapshot: derived from the account, the object, its state (as JSON) and
 * the second it was read. Reading the same response twice gives the same id (deduplicated by the log),
 * while a state that comes back later (A → B → A) gets a new id. Re-reading an unchanged object is
 * skipped by the log, which compares the hash with the latest logged state of the object.
 */
export const snapshotId = (input: {
  readonly accountId: string
  readonly objectType: string
  readonly objectId: string
  readonly versionTs: number
  readonly data: unknown
}): EventId =>
  EventId.make(
    `snap_${createHash("sha256")
      .update(
        // the response's own JSON text: the same response gives the same id (a fast hash; the log
        // compares states by their canonical form)
        `${input.accountId}\u0000${input.objectType}\u0000${input.objectId}\u0000${input.versionTs}\u0000${JSON.stringify(input.data)}`
      )
      .digest("hex")
      .slice(0, 40)}`
  )

/** Builds a snapshot event of an object read from an API. */
export const snapshot = (input: {
  readonly source: string
  readonly accountId: string
  readonly objectType: string
  readonly objectId: string
  readonly versionTs: number
  readonly apiVersion: string | null
  readonly data: JsonObject
  readonly receivedAt?: Date
}): Event =>
  new Event({
    id: snapshotId(input),
    type: snapshotType(input.objectType),
    source: input.source,
    accountId: input.accountId,
    objectType: input.objectType,
    objectId: input.objectId,
    versionTs: input.versionTs,
    apiVersion: input.apiVersion,
    data: input.data,
    receivedAt: input.receivedAt ?? new Date()
  })
