/**
 * The port where managed webhook endpoints are kept (the endpoints the tool created, with their
 * signing secrets), with a lock held across processes. `@stripe-sync/source-stripe`'s
 * `ManagedWebhooks` uses it; `@stripe-sync/sink-postgres`'s `PgManagedWebhooks` implements it.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option, type Redacted } from "effect"
import type { StoreError } from "./PipelineError.js"

/**
 * An endpoint as the store keeps it.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredEndpoint {
  readonly id: string
  readonly accountId: string
  readonly url: string
  readonly secret: Redacted.Redacted<string>
  readonly enabledEvents: ReadonlyArray<string>
  /** A Connect endpoint (receives the connected accounts' events). */
  readonly connect: boolean
  readonly createdAt: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Runs `effect` while holding the exclusive lock named `key` (waits for it). */
  readonly withLock: <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | StoreError, R>
  readonly find: (
    accountId: string,
    url: string,
    connect: boolean
  ) => Effect.Effect<Option.Option<StoredEndpoint>, StoreError>
  readonly get: (id: string) => Effect.Effect<Option.Option<StoredEndpoint>, StoreError>
  readonly list: Effect.Effect<ReadonlyArray<StoredEndpoint>, StoreError>
  readonly insert: (endpoint: StoredEndpoint) => Effect.Effect<void, StoreError>
  readonly remove: (id: string) => Effect.Effect<void, StoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ManagedWebhookStore extends Context.Tag("@stripe-sync/core/ManagedWebhookStore")<
  ManagedWebhookStore,
  Service
>() {}
