/**
 * Source plugins: a Stream of batches, each with the cursor writes that hold once its events are
 * stored. The runner hands both to the log's `append`, which writes them in one unit of work.
 *
 * @since 0.1.0
 */
import { Effect, Option, Schema, Stream } from "effect"
import { CursorStore } from "./CursorStore.js"
import type * as Event from "./Event.js"
import type { CursorWrite } from "./EventLog.js"
import { SourceError, type StoreError } from "./PipelineError.js"

/** Events and the cursor writes that become true once they are stored. */
export interface Batch {
  readonly events: ReadonlyArray<Event.Event>
  readonly cursors: ReadonlyArray<CursorWrite>
}

export interface Source<E = never, R = never> {
  readonly name: string
  /** Reads from where the stored cursors say, as a stream of batches. */
  readonly read: Stream.Stream<Batch, SourceError | StoreError | E, R | CursorStore>
}

/**
 * A source with a single typed cursor. `read` receives the stored cursor (none on a first run)
 * and emits events with the cursor that holds once they are stored.
 */
export const make = <C, I, E, R>(options: {
  readonly name: string
  readonly cursor: Schema.Schema<C, I>
  readonly read: (
    from: Option.Option<C>
  ) => Stream.Stream<{ readonly events: ReadonlyArray<Event.Event>; readonly cursor: C }, E, R>
}): Source<E, R> => {
  const decode = Schema.decodeUnknown(options.cursor)
  const encode = Schema.encodeSync(options.cursor)
  return {
    name: options.name,
    read: Stream.unwrap(
      Effect.gen(function* () {
        const store = yield* CursorStore
        const stored = yield* store.get(options.name, "default")
        const from = yield* Option.match(stored, {
          onNone: () => Effect.succeed(Option.none<C>()),
          onSome: (raw) =>
            decode(raw).pipe(
              Effect.map(Option.some),
              Effect.mapError(
                (error) =>
                  new SourceError({
                    source: options.name,
                    message: `the stored cursor does not decode (${error.message}); reset it to start over`,
                    retryable: false
                  })
              )
            )
        })
        return options.read(from).pipe(
          Stream.map(
            (batch): Batch => ({
              events: batch.events,
              cursors: [{ source: options.name, key: "default", value: encode(batch.cursor) }]
            })
          )
        )
      })
    )
  }
}

/** A source that manages its cursor rows itself (several keys, leases). */
export const makeRaw = <E, R>(options: {
  readonly name: string
  readonly read: Stream.Stream<Batch, SourceError | StoreError | E, R | CursorStore>
}): Source<E, R> => options
