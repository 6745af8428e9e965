/**
 * Managed webhook endpoints: the tool creates the Stripe webhook endpoint for a URL itself and keeps
 * its signing secret, so a deployment needs no copy-pasted `whsec_…`.
 *
 * - find-or-create runs under a lock held across processes (a Postgres advisory lock in the Postgres
 *   store), so several processes starting at once create one endpoint;
 * - the tool only ever touches endpoints it created: each carries `metadata[managed_by]=stripe-sync`
 *   in Stripe AND has its row in this database's store, so another environment's endpoints (another
 *   database, the same Stripe account) are never listed, changed or deleted from here.
 *
 * The store is a port (`Store`): the Postgres sink provides it over `<schema>._managed_webhooks`.
 *
 * @since 0.1.0
 */
import * as ManagedWebhookStore from "@stripe-sync/core/ManagedWebhookStore"
import type { StoreError } from "@stripe-sync/core/PipelineError"
import { Data, Effect, Option, Redacted } from "effect"
import type * as StripeClient from "./StripeClient.js"
import type * as StripeError from "./StripeError.js"

/**
 * The metadata marker of the endpoints this tool created.
 *
 * @since 0.1.0
 */
export const marker = { key: "managed_by", value: "stripe-sync" } as const

/**
 * An endpoint as the store keeps it.
 *
 * @since 0.1.0
 * @category models
 */
export type StoredEndpoint = ManagedWebhookStore.StoredEndpoint

/**
 * Where managed endpoints are kept (core's `ManagedWebhookStore` port).
 *
 * @since 0.1.0
 * @category models
 */
export type StoreService = ManagedWebhookStore.Service

/**
 * @since 0.1.0
 * @category tags
 */
export const Store = ManagedWebhookStore.ManagedWebhookStore
/**
 * @since 0.1.0
 * @category tags
 */
export type Store = ManagedWebhookStore.ManagedWebhookStore

/**
 * The endpoint is not one this tool manages here (no row in this database, or no marker in Stripe).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotManaged extends Data.TaggedError("NotManaged")<{
  readonly id: string
  readonly message: string
}> {}

/**
 * A managed endpoint with its state in Stripe (`None` when Stripe no longer has it).
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoint extends StoredEndpoint {
  readonly stripe: Option.Option<Record<string, unknown>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  readonly url: string
  /** Event types (default `["*"]`). */
  readonly enabledEvents?: ReadonlyArray<string> | undefined
  /** A Connect endpoint of the platform (connected accounts' events). */
  readonly connect?: boolean | undefined
  readonly description?: string | undefined
}

const isManaged = (endpoint: Record<string, unknown>): boolean => {
  const metadata = endpoint.metadata
  return (
    typeof metadata === "object" &&
    metadata !== null &&
    (metadata as Record<string, unknown>)[marker.key] === marker.value
  )
}

const retrieve = (client: StripeClient.Service, id: string) =>
  client.retrieve(`/v1/webhook_endpoints/${encodeURIComponent(id)}`).pipe(
    Effect.map((r) => (r.body.deleted === true ? Option.none() : Option.some(r.body))),
    Effect.catchTag("StripeNotFound", () => Effect.succeed(Option.none<Record<string, unknown>>()))
  )

/**
 * Returns the managed endpoint for `url` (and `connect`), creating it in Stripe if this database has
 * none (or Stripe lost it). Several processes at once get the same one: the lookup and the creation
 * run under the store's lock for this account and URL.
 *
 * @since 0.1.0
 */
export const findOrCreate = (
  client: StripeClient.Service,
  options: CreateOptions
): Effect.Effect<
  StoredEndpoint & { readonly created: boolean },
  StripeError.StripeError | StoreError,
  Store
> =>
  Effect.gen(function* () {
    const store = yield* Store
    const accountId = yield* client.platformAccountId
    const connect = options.connect ?? false
    const enabledEvents = options.enabledEvents ?? ["*"]
    return yield* store.withLock(
      `stripe-sync:managed-webhook:${accountId}:${connect ? "connect" : "account"}:${options.url}`,
      Effect.gen(function* () {
        const existing = yield* store.find(accountId, options.url, connect)
        if (Option.isSome(existing)) {
          const inStripe = yield* retrieve(client, existing.value.id)
          if (Option.isSome(inStripe)) return { ...existing.value, created: false }
          // deleted in Stripe behind our back: forget it and create a new one
          yield* Effect.logWarning(
            `managed webhook endpoint ${existing.value.id} is gone from Stripe; creating a new one`
          )
          yield* store.remove(existing.value.id)
        }
        const response = yield* client.request("POST", "/v1/webhook_endpoints", {
          url: options.url,
          enabled_events: enabledEvents,
          api_version: client.apiVersion,
          metadata: { [marker.key]: marker.value },
          ...(connect ? { connect: true } : {}),
          ...(options.description === undefined ? {} : { description: options.description })
        })
        const body = response.body
        const endpoint: StoredEndpoint = {
          id: String(body.id),
          accountId,
          url: options.url,
          secret: Redacted.make(String(body.secret)),
          enabledEvents,
          connect,
          createdAt: new Date()
        }
        yield* store.insert(endpoint)
        yield* Effect.logInfo(`created managed webhook endpoint ${endpoint.id} for ${options.url}`)
        return { ...endpoint, created: true }
      })
    )
  })

/**
 * The managed endpoints of this database, each with its state in Stripe.
 *
 * @since 0.1.0
 */
export const list = (
  client: StripeClient.Service
): Effect.Effect<ReadonlyArray<Endpoint>, StripeError.StripeError | StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store
    const rows = yield* store.list
    return yield* Effect.forEach(
      rows,
      (row) => Effect.map(retrieve(client, row.id), (stripe): Endpoint => ({ ...row, stripe })),
      { concurrency: 4 }
    )
  })

/**
 * One managed endpoint (fails `NotManaged` for any other id).
 *
 * @since 0.1.0
 */
export const get = (
  client: StripeClient.Service,
  id: string
): Effect.Effect<Endpoint, StripeError.StripeError | StoreError | NotManaged, Store> =>
  Effect.gen(function* () {
    const store = yield* Store
    const row = yield* store.get(id)
    if (Option.isNone(row)) {
      return yield* new NotManaged({
        id,
        message: `${id} is not a webhook endpoint managed from this database (see \`stripe-sync webhooks list\`); it is left alone`
      })
    }
    return { ...row.value, stripe: yield* retrieve(client, id) }
  })

/**
 * Deletes a managed endpoint in Stripe and forgets it. Only an endpoint that this database created
 * AND that carries the marker in Stripe is deleted; any other id fails `NotManaged` and nothing is
 * touched. An endpoint already gone from Stripe is just forgotten.
 *
 * @since 0.1.0
 */
export const remove = (
  client: StripeClient.Service,
  id: string
): Effect.Effect<void, StripeError.StripeError | StoreError | NotManaged, Store> =>
  Effect.gen(function* () {
    const store = yield* Store
    const endpoint = yield* get(client, id)
    if (Option.isSome(endpoint.stripe)) {
      if (!isManaged(endpoint.stripe.value)) {
        return yield* new NotManaged({
          id,
          message: `${id} does not carry metadata ${marker.key}=${marker.value} in Stripe: not deleting it`
        })
      }
      yield* client
        .request("DELETE", `/v1/webhook_endpoints/${encodeURIComponent(id)}`)
        .pipe(Effect.catchTag("StripeNotFound", () => Effect.void))
    }
    yield* store.remove(id)
  })
