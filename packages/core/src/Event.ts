/**
 * The normalised event envelope of DESIGN.md: one shape for everything a source reads.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Schema } from "effect"
import { canonicalText } from "./internal/canonicalText.js"
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
 * A stable JSON text of a value: every object's keys in one fixed order (jsonb's: shorter first,
 * then by code unit), so two equal objects hash alike whatever the key order a server happened to
 * send. The same text the log stores (see `digest`).
 */
export const canonicalJson = (value: unknown): string => canonicalText(value)

/** The hash of an object's state (hex sha-256 of its canonical JSON). */
export const hashData = (data: unknown): string => Crypto.hash("sha256", canonicalJson(data), "hex")

/**
 * The canonical JSON text of an event's data (every object's keys in jsonb's order: shorter first,
 * then by code unit) and its hash (base64 sha-256): what the log stores and compares. Computed
 * once per data object (an event's data is never changed once the event exists): the snapshot id
 * is derived from it, and the log's append reuses it.
 */
export interface DataDigest {
  readonly text: string
  readonly hash: string
}

const digests = new WeakMap<JsonObject, DataDigest>()

/** The `DataDigest` of an event's data. */
export const digest = (data: JsonObject): DataDigest => {
  let d = digests.get(data)
  if (d === undefined) {
    const text = canonicalText(data)
    d = { text, hash: Crypto.hash("sha256", text, "base64") }
    digests.set(data, d)
  }
  return d
}

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
}): EventId => {
  const { data } = input
  // the state by its canonical text (key order does not matter), computed once for the log too
  const state =
    typeof data === "object" && data !== null && !Array.isArray(data)
      ? digest(data as JsonObject).hash
      : canonicalJson(data)
  return EventId.make(
    `snap_${Crypto.hash(
      "sha256",
      `${input.accountId}\u0000${input.objectType}\u0000${input.objectId}\u0000${input.versionTs}\u0000${state}`,
      "hex"
    ).slice(0, 40)}`,
    true
  )
}

/** A string `Schema.NonEmptyTrimmedString` accepts, checked without the schema. */
const trimmed = (s: unknown): s is string => typeof s === "string" && s.length > 0 && s.trim() === s

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
}): Event => {
  const fields = {
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
  }
  // a backfill builds one per object: the schema runs only when a field looks wrong (then it throws
  // as it always did), not for every well-formed snapshot
  const wellFormed =
    trimmed(fields.source) &&
    trimmed(fields.accountId) &&
    trimmed(fields.objectType) &&
    trimmed(fields.objectId) &&
    Number.isSafeInteger(fields.versionTs) &&
    fields.versionTs >= 0 &&
    (fields.apiVersion === null || typeof fields.apiVersion === "string") &&
    typeof fields.data === "object" &&
    fields.data !== null &&
    !Array.isArray(fields.data) &&
    fields.receivedAt instanceof Date
  return new Event(fields, wellFormed)
}
