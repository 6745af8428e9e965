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

/**
 * Converts one parsed Stripe event. `accountId` is `event.account` for a Connect event, else
 * `platformAccountId` (the account of the API key). The object's `id` is its `objectId`; an object
 * without one (`balance`) is keyed by its type. `versionTs` is `event.created`.
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
  const invalid = (message: string) => Either.left(new InvalidStripeEvent({ message }))
  if (!isObject(raw)) return invalid("the body is not a JSON object")
  if (raw.object !== "event") return invalid(`"object" is ${JSON.stringify(raw.object)}, not "event"`)
  const { id, type, created, account } = raw
  if (typeof id !== "string" || id.length === 0) return invalid(`"id" is missing`)
  if (typeof type !== "string" || type.length === 0) return invalid(`"type" is missing in ${id}`)
  if (typeof created !== "number" || !Number.isInteger(created) || created < 0) {
    return invalid(`"created" is not a unix time in ${id}`)
  }
  const data = isObject(raw.data) ? raw.data.object : undefined
  if (!isObject(data)) return invalid(`"data.object" is missing in ${id}`)
  const objectType = typeof data.object === "string" && data.object.length > 0 ? data.object : undefined
  if (objectType === undefined) return invalid(`"data.object.object" is missing in ${id}`)
  const objectId = typeof data.id === "string" && data.id.length > 0 ? data.id : objectType
  const accountId = typeof account === "string" && account.length > 0 ? account : options.platformAccountId
  return Either.right(
    new Event.Event({
      id: Event.EventId.make(id),
      type,
      source: options.source,
      accountId,
      objectType,
      objectId,
      versionTs: created,
      apiVersion: typeof raw.api_version === "string" ? raw.api_version : null,
      data,
      receivedAt: options.receivedAt ?? new Date()
    })
  )
}
