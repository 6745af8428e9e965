/**
 * Projection plugins: fold stored events into tables. `apply` is set-based (one statement per
 * table per batch); the runner calls it and moves the checkpoint in one unit of work.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { StoredEvent } from "./Event.js"
import { matchesType } from "./EventLog.js"
import type { ProjectionError } from "./PipelineError.js"

/** A migration a projection brings for its own tables. Ids are ascending integers. */
export interface Migration<R = never> {
  readonly id: number
  readonly name: string
  readonly run: Effect.Effect<void, unknown, R>
}

export interface Projection<R = never> {
  readonly name: string
  /** Bumping the version asks for a rebuild (a replay into shadow tables, then a swap). */
  readonly version: number
  /** Event types it folds: exact types, `prefix.*`, or `*`. Other events pass it by. */
  readonly handles: ReadonlyArray<string>
  readonly migrations: ReadonlyArray<Migration<R>>
  /** Applies a batch of stored events, in log order. */
  readonly apply: (events: ReadonlyArray<StoredEvent>) => Effect.Effect<void, ProjectionError, R>
  /**
   * `false`: `apply` does not read the events' `data` (it reads the objects from the log in the
   * store itself, by the events' positions), so the runner asks the log to leave it out, and an
   * event's `data` may be `{}`. Absent or `true`: `data` is always there.
   */
  readonly readsData?: boolean | undefined
}

export const make = <R = never>(projection: {
  readonly name: string
  readonly version: number
  readonly handles: ReadonlyArray<string>
  readonly migrations?: ReadonlyArray<Migration<R>>
  readonly apply: (events: ReadonlyArray<StoredEvent>) => Effect.Effect<void, ProjectionError, R>
  readonly readsData?: boolean | undefined
}): Projection<R> => ({ ...projection, migrations: projection.migrations ?? [] })

/** Does the projection fold this event type? */
export const handles = (projection: Pick<Projection<unknown>, "handles">, type: string): boolean =>
  matchesType(projection.handles, type)
