/**
 * Revalidation and single-entity sync: retrieve an object by id from the API (its embedded lists
 * completed) and make it a snapshot event (`source: "revalidate"`), so the projections decide by
 * its version like any other state.
 *
 * @since 0.1.0
 */
import * as Event from "@stripe-sync/core/Event"
import type { EventLog } from "@stripe-sync/core/EventLog"
import * as Pipeline from "@stripe-sync/core/Pipeline"
import type { EventLogError, InvalidEvent, StoreError } from "@stripe-sync/core/PipelineError"
import { ProjectionError } from "@stripe-sync/core/PipelineError"
import * as Projection from "@stripe-sync/core/Projection"
import { type Request, RevalidationQueue } from "@stripe-sync/core/RevalidationQueue"
import { Clock, Data, type Duration, Effect, Option } from "effect"
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
    /**
     * The event's source (default `revalidate`). The queue's drain uses `revalidate_queue`: the log
     * stores those even when equal to the latest logged state, since they settle a row in doubt.
     */
    readonly source?: string | undefined
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
    const accountId = account?.id ?? (yield* client.platformAccountId)
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
      source: request.source ?? "revalidate",
      accountId,
      objectType: typeof data.object === "string" ? data.object : resource.value.object,
      objectId: request.id,
      versionTs: response.versionTs,
      apiVersion: client.apiVersion,
      data
    })
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface DrainOptions {
  readonly client: StripeClient.Service
  /** The key's own account: requests of other accounts are read with `Stripe-Account`. */
  readonly platformAccountId: string
  /** Requests taken at once (default 100). */
  readonly limit?: number | undefined
  /** Retrieves in flight (default 8). */
  readonly concurrency?: number | undefined
  /** The current unix second (default the Effect clock): only requests due by then are taken. */
  readonly now?: Effect.Effect<number> | undefined
  /** Seconds before a request whose retrieve failed is due again (default 5). */
  readonly retryAfter?: number | undefined
}

/**
 * The source of the queue's snapshots: stored even when equal to the latest logged state.
 *
 * @since 0.1.0
 */
export const queueSource = "revalidate_queue"

const currentSecond: Effect.Effect<number> = Effect.map(Clock.currentTimeMillis, (ms) =>
  Math.floor(ms / 1000)
)

/**
 * Takes the requests of the revalidation queue that are due (their second has passed), retrieves
 * each object once, and appends the snapshots in one batch. A request whose object is gone is
 * dropped; one whose retrieve failed otherwise is queued again a few seconds later. Returns how many
 * requests it took.
 *
 * @since 0.1.0
 */
export const drainOnce = (
  options: DrainOptions
): Effect.Effect<number, StoreError | EventLogError | InvalidEvent, RevalidationQueue | EventLog> =>
  Effect.gen(function* () {
    const queue = yield* RevalidationQueue
    const now = yield* options.now ?? currentSecond
    const taken = yield* queue.take({ limit: options.limit ?? 100, now })
    if (taken.length === 0) return 0
    const retry: Array<Request> = []
    const results = yield* Effect.forEach(
      taken,
      (request) =>
        snapshot(options.client, {
          id: request.objectId,
          objectType: request.objectType,
          account: { id: request.accountId, connected: request.accountId !== options.platformAccountId },
          source: queueSource
        }).pipe(
          Effect.map(Option.some),
          Effect.catchAll((error) =>
            Effect.gen(function* () {
              if (error._tag === "StripeNotFound" || error._tag === "UnknownObject") {
                yield* Effect.logDebug(`revalidation of ${request.objectId} dropped: ${error.message}`)
              } else {
                yield* Effect.logWarning(
                  `revalidation of ${request.objectId} failed, retrying: ${error.message}`
                )
                retry.push({ ...request, notBefore: now + (options.retryAfter ?? 5) })
              }
              return Option.none<Event.Event>()
            })
          )
        ),
      { concurrency: options.concurrency ?? 8 }
    )
    const events = results.flatMap((r) => Option.toArray(r))
    if (events.length > 0) yield* Pipeline.append("revalidate", { events, cursors: [] })
    if (retry.length > 0) yield* queue.request(retry)
    return taken.length
  }).pipe(Effect.withSpan("Revalidate.drainOnce"))

/**
 * Drains the revalidation queue until interrupted: at once while requests are due, else every
 * `interval` (default 1 s).
 *
 * @since 0.1.0
 */
export const run = (
  options: DrainOptions & { readonly interval?: Duration.DurationInput | undefined }
): Effect.Effect<never, StoreError | EventLogError | InvalidEvent, RevalidationQueue | EventLog> =>
  Effect.forever(
    Effect.flatMap(drainOnce(options), (n) =>
      n >= (options.limit ?? 100) ? Effect.void : Effect.sleep(options.interval ?? "1 second")
    )
  )

/**
 * Per object type, trust the API rather than the payload: a projection that queues every Stripe
 * event (webhook or Events API) of the given object types for revalidation, due at once, so the
 * drain appends the object as the API returns it (a snapshot, newer or of the same second, which the
 * tables rank above the event). The event itself stays in the log.
 *
 * @since 0.1.0
 */
export const onEvents = (objectTypes: ReadonlyArray<string>) => {
  const types = new Set(objectTypes)
  return Projection.make<RevalidationQueue>({
    name: "revalidate_on_event",
    version: 1,
    handles: ["*"],
    apply: (events) =>
      Effect.gen(function* () {
        const requests: Array<Request> = []
        for (const e of events) {
          if (!types.has(e.objectType) || (e.source !== "webhook" && e.source !== "events_api")) continue
          // a deleted object has nothing to read back: the event's tombstone stands
          if (e.type.endsWith(".deleted") || e.data.deleted === true) continue
          requests.push({
            accountId: e.accountId,
            objectType: e.objectType,
            objectId: e.objectId,
            notBefore: e.versionTs,
            reason: "revalidate on event"
          })
        }
        if (requests.length > 0) yield* (yield* RevalidationQueue).request(requests)
      }).pipe(
        Effect.mapError(
          (cause) =>
            new ProjectionError({
              projection: "revalidate_on_event",
              message: `queueing revalidations failed: ${cause.message}`,
              cause
            })
        )
      )
  })
}
