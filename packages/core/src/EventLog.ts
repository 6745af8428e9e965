/**
 * The append-only event log: the port, its in-memory driver, and the log tail as a Stream.
 *
 * @since 0.1.0
 */
import { Chunk, Context, type Duration, Effect, Layer, Option, Queue, type Scope, Stream } from "effect"
import type * as Event from "./Event.js"
import { MemoryStore, memoryEventLog } from "./internal/memoryStore.js"
import { validateBatch } from "./internal/validate.js"
import * as LogPosition from "./LogPosition.js"
import type { EventLogError, InvalidEvent } from "./PipelineError.js"

/** A write to a source's cursor, stored in the same unit of work as the events it covers. */
export interface CursorWrite {
  readonly source: string
  readonly key: string
  /** The cursor's new value (JSON); `null` deletes it (e.g. a finished backfill range). */
  readonly value: unknown
}

/** What a source hands to the log: events, and the cursor writes that hold once they are stored. */
export interface AppendBatch {
  readonly events: ReadonlyArray<Event.Event | Event.EventInput>
  readonly cursors?: ReadonlyArray<CursorWrite> | undefined
}

export interface AppendResult {
  /** Events newly stored. */
  readonly appended: number
  /** Duplicates (same account and event id) and unchanged snapshots, skipped. */
  readonly skipped: number
}

export interface ReadOptions {
  /** At most this many events. */
  readonly limit: number
  /**
   * Only these event types (`customer.updated`), prefixes (`customer.*`) or everything (`*`, or
   * absent). The returned `next` still moves past events of other types.
   */
  readonly types?: ReadonlyArray<string> | undefined
  /**
   * `false`: the caller does not need the events' `data` (a projection that reads the objects in the
   * store itself); a driver may then return `{}` instead of each event's data. A hint: a driver may
   * ignore it and return the data.
   */
  readonly data?: boolean | undefined
}

export interface ReadResult {
  readonly events: ReadonlyArray<Event.StoredEvent>
  /** Where the next read starts: the checkpoint once `events` are applied. */
  readonly next: LogPosition.LogPosition
}

/** What keeps readers waiting: the oldest open transaction on the server (Postgres only). */
export interface HorizonHolder {
  readonly pid: number
  readonly ageSeconds: number
  readonly state: string
  readonly query: string
  readonly applicationName: string
}

export interface Service {
  /**
   * Appends a batch and its cursor writes in one unit of work. Idempotent: an event whose
   * (account, id) is already stored is skipped, as is a snapshot whose state equals the latest
   * logged state of its object. Fails with `InvalidEvent` (nothing written) on a malformed event.
   */
  readonly append: (batch: AppendBatch) => Effect.Effect<AppendResult, InvalidEvent | EventLogError>
  /** Reads events after a position, in log order, never past what is final. */
  readonly read: (
    after: LogPosition.LogPosition,
    options: ReadOptions
  ) => Effect.Effect<ReadResult, EventLogError>
  /** The position up to which the log is final: a reader caught up to it has seen everything appended. */
  readonly head: Effect.Effect<LogPosition.LogPosition, EventLogError>
  /** Signals that events may have been appended (a wake-up hint; readers poll as well). */
  readonly changes: Stream.Stream<void>
  /** Open transactions that hold readers back (empty where the driver has none). */
  readonly horizonHolders: Effect.Effect<ReadonlyArray<HorizonHolder>, EventLogError>
}

export class EventLog extends Context.Tag("@stripe-sync/core/EventLog")<EventLog, Service>() {}

/**
 * Validates a batch at the schema boundary, as every driver's `append` must: the first malformed
 * event fails the whole batch with `InvalidEvent` naming the event and the field.
 */
export const validate: (
  events: ReadonlyArray<Event.Event | Event.EventInput>
) => Effect.Effect<ReadonlyArray<Event.Event>, InvalidEvent> = validateBatch

/** Does a read filter accept this type? `*`, exact types and `prefix.*` patterns. */
export const matchesType = (types: ReadonlyArray<string> | undefined, type: string): boolean => {
  if (types === undefined || types.length === 0) return true
  for (const t of types) {
    if (t === "*" || t === type) return true
    if (t.endsWith(".*") && type.startsWith(t.slice(0, -1))) return true
  }
  return false
}

/**
 * The log as a Stream of pages, from a position on, for as long as it is consumed: reads until
 * caught up, then waits for a change signal or the poll interval, whichever comes first.
 */
export const tail = (
  log: Service,
  after: LogPosition.LogPosition,
  options: ReadOptions & { readonly pollInterval?: Duration.DurationInput }
): Stream.Stream<ReadResult, EventLogError> =>
  Stream.unwrapScoped(
    Effect.map(changeWaiter(log, options.pollInterval ?? "1 second"), (waitForChange) =>
      Stream.paginateChunkEffect({ from: after, wait: false }, ({ from, wait }) =>
        (wait ? waitForChange : Effect.void).pipe(
          Effect.zipRight(log.read(from, options)),
          Effect.map((result) => {
            const moved = !LogPosition.equals(result.next, from)
            return [
              moved ? Chunk.of(result) : Chunk.empty<ReadResult>(),
              Option.some({ from: result.next, wait: result.events.length < options.limit })
            ] as const
          })
        )
      )
    )
  )

/**
 * Subscribes to the log's change signals for the life of the scope and returns an effect that
 * waits for the next signal (or any that came since the last wait) or the poll interval.
 */
export const changeWaiter = (
  log: Service,
  pollInterval: Duration.DurationInput
): Effect.Effect<Effect.Effect<void>, never, Scope.Scope> =>
  Effect.map(Stream.toQueue(log.changes, { strategy: "sliding", capacity: 1 }), (queue) =>
    Effect.zipRight(Effect.timeoutOption(Queue.take(queue), pollInterval), Queue.takeAll(queue)).pipe(
      Effect.asVoid
    )
  )

/** The in-memory driver (tests, examples). Shares its store with the other memory drivers. */
export const layerMemory: Layer.Layer<EventLog, never, MemoryStore> = Layer.effect(
  EventLog,
  Effect.map(MemoryStore, memoryEventLog)
)
