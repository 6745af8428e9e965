/**
 * Stripe's `Event` object (from a webhook or `GET /v1/events`) as the envelope of the log: one
 * conversion shared by every live source, so a webhook and a polled copy of one event are the same
 * log row (same `id`, deduplicated per account).
 *
 * @since 0.1.0
 */
import * as Event from "@stripe-sync/core/Event"
import { Data, Either } from "effect"

/** A body that is not a Stripe event: the reason says which field is wrong. */
export class InvalidStripeEvent extends Data.TaggedError("InvalidStripeEvent")<{
  readonly message: string
}> {}

/** Where a Stripe event came from. */
export type EventSource = "webhook" | "events_api"

const isObject = (u: unknown): u is Event.JsonObject =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const invalid = (message: string) => Either.left(new InvalidStripeEvent({ message }))

/** A non-empty string without leading or trailing whitespace (the envelope's text fields). */
const isText = (u: unknown): u is string =>
  typeof u === "string" && u.length > 0 && u.trim().length === u.length

/**
 * Converts one parsed Stripe event. `accountId` is `event.account` for a Connect event, else
 * `platformAccountId` (the account of the API key). The object's `id` is its `objectId`; an object
 * without one (`balance`) is keyed by its type. `versionTs` is `event.created`.
 *
 * Every field the envelope's schema requires is checked here, so the envelope is built without
 * validating it again (the schema costs several times the rest of the conversion, per event).
 *
 * @since 0.1.0
 */
export const toEnvelope = (
  raw: unknown,
  options: {
    readonly source: EventSource
    readonly platformAccountId: string
    readonly receivedAt?: Date | undefined
  }
): Either.Either<Event.Event, InvalidStripeEvent> => {
  if (!isObject(raw)) return invalid("the body is not a JSON object")
  if (raw.object !== "event") return invalid(`"object" is ${JSON.stringify(raw.object)}, not "event"`)
  const { id, type, created, account } = raw
  if (!isText(id)) return invalid(`"id" is missing or not an id: ${JSON.stringify(id)}`)
  if (!isText(type)) return invalid(`"type" is missing or not a type in ${id}: ${JSON.stringify(type)}`)
  if (typeof created !== "number" || !Number.isInteger(created) || created < 0) {
    return invalid(`"created" is not a unix time in ${id}`)
  }
  const data = isObject(raw.data) ? raw.data.object : undefined
  if (!isObject(data)) return invalid(`"data.object" is missing in ${id}`)
  const objectType = typeof data.object === "string" && data.object.length > 0 ? data.object : undefined
  if (objectType === undefined) return invalid(`"data.object.object" is missing in ${id}`)
  if (!isText(objectType)) return invalid(`"data.object.object" is not a type in ${id}`)
  const objectId = typeof data.id === "string" && data.id.length > 0 ? data.id : objectType
  if (!isText(objectId)) return invalid(`"data.object.id" is not an id in ${id}`)
  const accountId = typeof account === "string" && account.length > 0 ? account : options.platformAccountId
  if (!isText(accountId)) return invalid(`"account" is not an account id in ${id}`)
  if (!isText(options.source)) return invalid(`the source ${JSON.stringify(options.source)} is not a name`)
  return Either.right(
    new Event.Event(
      {
        id: Event.EventId.make(id, true),
        type,
        source: options.source,
        accountId,
        objectType,
        objectId,
        versionTs: created,
        apiVersion: typeof raw.api_version === "string" ? raw.api_version : null,
        data,
        receivedAt: options.receivedAt ?? new Date()
      },
      // Validated above, field by field.
      true
    )
  )
}
