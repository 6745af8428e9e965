/**
 * Projection checkpoints: where each projection stands in the log, moved by compare-and-set in the
 * same unit of work as the batch it covers, so each event takes effect exactly once.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Option, type Scope } from "effect"
import { MemoryStore, memoryCheckpointStore } from "./internal/memoryStore.js"
import type { LogPosition } from "./LogPosition.js"
import type { CheckpointConflict, StoreError } from "./PipelineError.js"

export interface Checkpoint {
  readonly projection: string
  readonly position: LogPosition
  /** The projection version whose tables this checkpoint describes. */
  readonly version: number
  readonly updatedAt: Date
}

export interface Service {
  readonly get: (projection: string) => Effect.Effect<Option.Option<Checkpoint>, StoreError>
  readonly list: Effect.Effect<ReadonlyArray<Checkpoint>, StoreError>
  /** Creates the checkpoint at the start of the log if absent; returns what is stored. */
  readonly register: (projection: string, version: number) => Effect.Effect<Checkpoint, StoreError>
  /** Moves the checkpoint from `expected` to `next`; fails if another runner moved it first. */
  readonly compareAndSet: (
    projection: string,
    expected: LogPosition,
    next: LogPosition
  ) => Effect.Effect<void, CheckpointConflict | StoreError>
  /** Sets position and version unconditionally (a finished rebuild). */
  readonly reset: (
    projection: string,
    position: LogPosition,
    version: number
  ) => Effect.Effect<void, StoreError>
  /**
   * Holds the projection's runner lock for the life of the scope; waits while another runner (in
   * this process or another) holds it.
   */
  readonly lock: (projection: string) => Effect.Effect<void, StoreError, Scope.Scope>
  /** Takes the lock if free; `false` when another runner holds it. */
  readonly tryLock: (projection: string) => Effect.Effect<boolean, StoreError, Scope.Scope>
}

export class CheckpointStore extends Context.Tag("@stripe-sync/core/CheckpointStore")<
  CheckpointStore,
  Service
>() {}

export const layerMemory: Layer.Layer<CheckpointStore, never, MemoryStore> = Layer.effect(
  CheckpointStore,
  Effect.map(MemoryStore, memoryCheckpointStore)
)
