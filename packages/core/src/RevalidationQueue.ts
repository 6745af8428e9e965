/**
 * Objects that a projection asks to re-fetch from the API: two states in one second, a truncated
 * embedded list, an event whose object is unknown. A source drains the queue once each item is due.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import { MemoryStore, memoryRevalidationQueue } from "./internal/memoryStore.js"
import type { StoreError } from "./PipelineError.js"

export interface Request {
  readonly accountId: string
  readonly objectType: string
  readonly objectId: string
  /** Not before this unix second (the second after the conflicting states). */
  readonly notBefore: number
  readonly reason: string
}

export interface Service {
  /** Queues objects; an object already queued keeps the later `notBefore`. */
  readonly request: (requests: ReadonlyArray<Request>) => Effect.Effect<void, StoreError>
  /** Takes (removes) up to `limit` requests due at `now` (unix seconds), oldest first. */
  readonly take: (options: {
    readonly limit: number
    readonly now: number
  }) => Effect.Effect<ReadonlyArray<Request>, StoreError>
  readonly size: Effect.Effect<number, StoreError>
}

export class RevalidationQueue extends Context.Tag("@stripe-sync/core/RevalidationQueue")<
  RevalidationQueue,
  Service
>() {}

export const layerMemory: Layer.Layer<RevalidationQueue, never, MemoryStore> = Layer.effect(
  RevalidationQueue,
  Effect.map(MemoryStore, memoryRevalidationQueue)
)
