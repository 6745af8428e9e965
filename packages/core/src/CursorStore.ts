/**
 * Source cursors. Written by the log's `append` together with the events they cover (so a cursor
 * never runs ahead of what is stored); read by sources when they start. A source may keep several
 * cursors (one per unfinished backfill range), which workers lease so that they share the work.
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, Layer, type Option } from "effect"
import type { CursorWrite } from "./EventLog.js"
import { MemoryStore, memoryCursorStore } from "./internal/memoryStore.js"
import type { StoreError } from "./PipelineError.js"

export interface CursorEntry {
  readonly source: string
  readonly key: string
  readonly value: unknown
}

export interface Service {
  readonly get: (source: string, key: string) => Effect.Effect<Option.Option<unknown>, StoreError>
  /** Every cursor of a source, ordered by key. */
  readonly list: (source: string) => Effect.Effect<ReadonlyArray<CursorEntry>, StoreError>
  /** Writes cursors outside an append (e.g. a source's initial plan); `null` deletes. */
  readonly put: (writes: ReadonlyArray<CursorWrite>) => Effect.Effect<void, StoreError>
  /**
   * Claims one cursor of the source that nobody else holds (or whose lease expired) for `ttl`.
   * Several workers or processes leasing at once never get the same cursor.
   */
  readonly lease: (
    source: string,
    options: { readonly owner: string; readonly ttl: Duration.DurationInput }
  ) => Effect.Effect<Option.Option<CursorEntry>, StoreError>
  /**
   * Extends a lease the owner still holds by `ttl` from now; `false` when the cursor is gone or the
   * lease was lost (it expired and another owner took it).
   */
  readonly renew: (
    source: string,
    key: string,
    options: { readonly owner: string; readonly ttl: Duration.DurationInput }
  ) => Effect.Effect<boolean, StoreError>
  /** Gives a leased cursor back (a no-op when it is gone or held by another owner). */
  readonly release: (source: string, key: string, owner: string) => Effect.Effect<void, StoreError>
}

export class CursorStore extends Context.Tag("@stripe-sync/core/CursorStore")<CursorStore, Service>() {}

export const layerMemory: Layer.Layer<CursorStore, never, MemoryStore> = Layer.effect(
  CursorStore,
  Effect.map(MemoryStore, memoryCursorStore)
)
