/**
 * The transaction boundary the runner needs: a projection's `apply` and the checkpoint move run in
 * one unit of work. The Postgres driver makes it a transaction; in memory it runs the effect as is
 * under a lock (the memory drivers do not roll back).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { StoreError } from "./PipelineError.js"

export interface Service {
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
}

export class UnitOfWork extends Context.Tag("@stripe-sync/core/UnitOfWork")<UnitOfWork, Service>() {}

export const layerMemory: Layer.Layer<UnitOfWork> = Layer.effect(
  UnitOfWork,
  Effect.map(Effect.makeSemaphore(1), (lock) => ({ transaction: (effect) => lock.withPermits(1)(effect) }))
)
