/**
 * Revalidation and single-entity sync: retrieve an object by id from the API (its embedded lists
 * completed) and make it a snapshot event (`source: "revalidate"`), so the projections decide by
 * its version like any other state.
 *
 * @since 0.1.0
 */
import * as Event from "@stripe-sync/core/Event"
import { Data, Effect, Option } from "effect"
import * as Backfill from "./Backfill.js"
import * as Catalog from "./Catalog.js"
import type * as StripeClient from "./StripeClient.js"
import type * as StripeError from "./StripeError.js"

/** The id's type cannot be told, or the type cannot be retrieved. */
export class UnknownObject extends Data.TaggedError("UnknownObject")<{ readonly message: string }> {}

/**
 * The resource of an object: from its type when given, else from its id's prefix.
 *
 * @since 0.1.0
 */
export const resourceOf = (
  id: string,
  objectType?: string
): Option.Option<Catalog.Resource | Catalog.Child> =>
  objectType !== undefined
    ? Option.orElse(Catalog.byObject(objectType), () =>
        Option.fromNullable(Catalog.children.find((c) => c.object === objectType))
      )
    : Catalog.byIdPrefix(id)

/**
 * Retrieves one object and returns its snapshot event. A deleted object comes back as Stripe
 * returns it (`deleted: true`), which the projections treat as a tombstone.
 *
 * @since 0.1.0
 */
export const snapshot = (
  client: StripeClient.Service,
  request: {
    readonly id: string
    readonly objectType?: string | undefined
    readonly account?: Backfill.Account | undefined
  }
): Effect.Effect<Event.Event, StripeError.StripeError | UnknownObject> =>
  Effect.gen(function* () {
    const resource = resourceOf(request.id, request.objectType)
    if (Option.isNone(resource) || resource.value.retrievePath === null) {
      return yield* new UnknownObject({
        message: `cannot tell how to retrieve "${request.id}"${request.objectType ? ` (${request.objectType})` : ""}: give an id with a known prefix such as cus_, in_, sub_, pi_`
      })
    }
    const account = request.account
    const path = resource.value.retrievePath.replace("{id}", encodeURIComponent(request.id))
    const response = yield* client.retrieve(
      path,
      {},
      { account: account?.connected ? account.id : undefined }
    )
    const accountId = account?.id ?? String((yield* client.retrieve("/v1/account")).body.id)
    let data = response.body
    if ("embeddedLists" in resource.value && data.deleted !== true) {
      const list = Backfill.listWith(client)
      data = yield* Backfill.completeLists(
        list,
        resource.value,
        account ?? { id: accountId, connected: false },
        data
      ).pipe(
        Effect.catchAll((failure) =>
          // a list that cannot be completed is kept as Stripe sent it (the projection asks again)
          Effect.as(Effect.logWarning(`could not complete the lists of ${request.id}: ${failure._tag}`), data)
        )
      )
    }
    return Event.snapshot({
      source: "revalidate",
      accountId,
      objectType: typeof data.object === "string" ? data.object : resource.value.object,
      objectId: request.id,
      versionTs: response.versionTs,
      apiVersion: client.apiVersion,
      data
    })
  })
