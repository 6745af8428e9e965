/**
 * The runner: sources append batches (events + cursor in one unit of work); projections fold the
 * log after their checkpoint (apply + checkpoint in one unit of work), one active runner each.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Effect, Fiber, Metric, Option, Stream } from "effect"
import { CheckpointStore } from "./CheckpointStore.js"
import type { CursorStore } from "./CursorStore.js"
import * as EventLog from "./EventLog.js"
import * as LogPosition from "./LogPosition.js"
import type {
  CheckpointConflict,
  EventLogError,
  InvalidEvent,
  ProjectionError,
  SourceError,
  StoreError
} from "./PipelineError.js"
import * as PipelineMetrics from "./PipelineMetrics.js"
import type { Projection } from "./Projection.js"
import * as Retry from "./Retry.js"
import type { Batch, Source } from "./Source.js"
import { UnitOfWork } from "./UnitOfWork.js"

/** The services a pipeline runs on: a sink such as `Memory.layer` or the Postgres sink provides them. */
export type Services = EventLog.EventLog | CursorStore | CheckpointStore | UnitOfWork

export interface ProjectionOptions {
  /** Events per transaction (default 1000). */
  readonly batchSize?: number
  /** Poll interval when caught up and no change signal comes (default 1 s). */
  readonly pollInterval?: Duration.DurationInput
  /**
   * When caught up, the least time between the end of one read and the next (default none). Under
   * a steady trickle of events (webhooks), fewer and larger batches, each with its fixed cost paid
   * once, for at most this much more latency.
   */
  readonly minInterval?: Duration.DurationInput
}

const isRetryableStoreError = (e: { readonly _tag: string }): boolean =>
  e._tag === "EventLogError" || e._tag === "StoreError"

/** Appends one batch with its cursor writes, retrying while the log is unavailable. */
export const append = (
  source: string,
  batch: Batch
): Effect.Effect<EventLog.AppendResult, InvalidEvent | EventLogError, EventLog.EventLog> =>
  Effect.flatMap(EventLog.EventLog, (log) =>
    log.append({ events: batch.events, cursors: batch.cursors }).pipe(
      Metric.trackDuration(PipelineMetrics.appendDuration.pipe(Metric.tagged("source", source))),
      Effect.tapError((e) =>
        isRetryableStoreError(e) ? Effect.logWarning(`append failed, retrying: ${e.message}`) : Effect.void
      ),
      Effect.retry({ schedule: Retry.worker, while: isRetryableStoreError }),
      Effect.tap((r) =>
        Effect.all([
          Metric.incrementBy(
            PipelineMetrics.eventsAppended.pipe(Metric.tagged("source", source)),
            r.appended
          ),
          Metric.incrementBy(PipelineMetrics.eventsSkipped.pipe(Metric.tagged("source", source)), r.skipped)
        ])
      )
    )
  )

/** Runs a source until its stream ends, appending each batch with its cursor. */
export const runSource = <E, R>(
  source: Source<E, R>
): Effect.Effect<
  void,
  E | SourceError | StoreError | InvalidEvent | EventLogError,
  R | CursorStore | EventLog.EventLog
> =>
  source.read.pipe(
    Stream.mapEffect((batch) => append(source.name, batch)),
    Stream.runDrain,
    Effect.annotateLogs("source", source.name),
    Effect.withSpan("Pipeline.runSource", { attributes: { source: source.name } })
  )

const readPage = <R>(projection: Projection<R>, from: LogPosition.LogPosition, batchSize: number) =>
  Effect.flatMap(EventLog.EventLog, (log) =>
    log.read(from, {
      limit: batchSize,
      types: projection.handles,
      ...(projection.readsData === false ? { data: false } : {})
    })
  )

/** Applies a page read after `from` and moves the checkpoint from `from` to its end, in one unit of work. */
const applyPage = <R>(
  projection: Projection<R>,
  from: LogPosition.LogPosition,
  page: EventLog.ReadResult,
  batchSize: number
): Effect.Effect<
  { readonly next: LogPosition.LogPosition; readonly applied: number; readonly full: boolean },
  ProjectionError | StoreError | CheckpointConflict,
  R | CheckpointStore | UnitOfWork
> =>
  Effect.gen(function* () {
    if (LogPosition.equals(page.next, from)) return { next: from, applied: 0, full: false }
    const checkpoints = yield* CheckpointStore
    const uow = yield* UnitOfWork
    yield* uow.transaction(
      Effect.zipRight(
        page.events.length > 0 ? projection.apply(page.events) : Effect.void,
        checkpoints.compareAndSet(projection.name, from, page.next)
      )
    )
    if (page.events.length > 0) {
      yield* Metric.incrementBy(
        PipelineMetrics.eventsApplied.pipe(Metric.tagged("projection", projection.name)),
        page.events.length
      )
    }
    return { next: page.next, applied: page.events.length, full: page.events.length >= batchSize }
  })

/**
 * One step of a projection: reads after its checkpoint, applies, and moves the checkpoint, in one
 * unit of work. Returns the new position and how many events it applied.
 */
export const step = <R>(
  projection: Projection<R>,
  from: LogPosition.LogPosition,
  batchSize: number
): Effect.Effect<
  { readonly next: LogPosition.LogPosition; readonly applied: number; readonly full: boolean },
  ProjectionError | EventLogError | StoreError | CheckpointConflict,
  R | Services
> =>
  Effect.flatMap(readPage(projection, from, batchSize), (page) =>
    applyPage(projection, from, page, batchSize)
  ).pipe(
    Metric.trackDuration(PipelineMetrics.applyDuration.pipe(Metric.tagged("projection", projection.name)))
  )

/**
 * Steps with read-ahead: while a full page is applied, the page after it is read on another
 * connection (a read after a position is valid for whoever holds that position as checkpoint, so
 * it is used only by the step that starts from there; one that starts elsewhere, after a
 * checkpoint conflict or a failure, drops it and reads afresh). Scoped: a read-ahead still
 * running is interrupted when the scope closes.
 */
const stepper = <R>(projection: Projection<R>, batchSize: number) =>
  Effect.map(Effect.scope, (scope) => {
    let ahead:
      | {
          readonly from: LogPosition.LogPosition
          readonly fiber: Fiber.RuntimeFiber<EventLog.ReadResult, EventLogError>
        }
      | undefined
    const drop = () => {
      const a = ahead
      ahead = undefined
      return a === undefined ? Effect.void : Fiber.interruptFork(a.fiber)
    }
    return (from: LogPosition.LogPosition, readAhead: (next: LogPosition.LogPosition) => boolean) =>
      Effect.gen(function* () {
        const prefetched =
          ahead !== undefined && LogPosition.equals(ahead.from, from) ? ahead.fiber : undefined
        if (prefetched !== undefined) ahead = undefined
        else yield* drop()
        const page = yield* prefetched !== undefined
          ? Fiber.join(prefetched)
          : readPage(projection, from, batchSize)
        if (page.events.length >= batchSize && readAhead(page.next)) {
          const fiber = yield* readPage(projection, page.next, batchSize).pipe(Effect.forkIn(scope))
          ahead = { from: page.next, fiber }
        }
        return yield* applyPage(projection, from, page, batchSize)
      }).pipe(
        Effect.tapError(drop),
        Metric.trackDuration(PipelineMetrics.applyDuration.pipe(Metric.tagged("projection", projection.name)))
      )
  })

const startPosition = <R>(projection: Projection<R>) =>
  Effect.gen(function* () {
    const checkpoints = yield* CheckpointStore
    const checkpoint = yield* checkpoints.register(projection.name, projection.version)
    if (checkpoint.version !== projection.version) {
      yield* Effect.logWarning(
        `projection ${projection.name} is at version ${projection.version} but its tables were built by version ${checkpoint.version}: run \`stripe-sync replay ${projection.name}\` to rebuild them`
      )
    }
    return checkpoint.position
  })

const retryStore = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.tapError((e) =>
      isRetryableStoreError(e) || e._tag === "CheckpointConflict"
        ? Effect.logWarning(
            `projection step failed, retrying: ${String((e as { message?: string }).message ?? e._tag)}`
          )
        : Effect.void
    ),
    Effect.retry({
      schedule: Retry.worker,
      while: (e) => isRetryableStoreError(e) || e._tag === "CheckpointConflict"
    })
  )

/**
 * When another writer moved the checkpoint (a finished rebuild, or a runner whose lock was lost),
 * the retry starts from the stored checkpoint instead of the stale one.
 */
const onConflictReload =
  (checkpoints: CheckpointStore["Type"], projection: string, set: (p: LogPosition.LogPosition) => void) =>
  <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tapError(effect, (e) =>
      e._tag === "CheckpointConflict"
        ? checkpoints.get(projection).pipe(Effect.map(Option.map((c) => set(c.position))), Effect.ignore)
        : Effect.void
    )

/**
 * Applies everything in the log up to its head at the time of the call, then returns how many
 * events it applied. Holds the projection's runner lock meanwhile.
 */
export const catchUp = <R>(
  projection: Projection<R>,
  options: ProjectionOptions = {}
): Effect.Effect<number, ProjectionError | EventLogError | StoreError | CheckpointConflict, R | Services> =>
  Effect.scoped(
    Effect.gen(function* () {
      const checkpoints = yield* CheckpointStore
      const log = yield* EventLog.EventLog
      yield* checkpoints.lock(projection.name)
      const target = yield* log.head
      const batchSize = options.batchSize ?? 1000
      const next = yield* stepper(projection, batchSize)
      // Another writer of the checkpoint (a finished rebuild) shows as a conflict, and the retry
      // starts from the stored checkpoint.
      let position = yield* startPosition(projection)
      let applied = 0
      while (LogPosition.isAfter(target, position)) {
        const r = yield* retryStore(
          Effect.suspend(() => next(position, (p) => LogPosition.isAfter(target, p))).pipe(
            onConflictReload(checkpoints, projection.name, (p) => {
              position = p
            })
          )
        )
        applied += r.applied
        if (LogPosition.equals(r.next, position)) break
        position = r.next
      }
      return applied
    })
  ).pipe(Effect.annotateLogs("projection", projection.name))

/**
 * Runs a projection until interrupted: takes its runner lock (waiting while another process holds
 * it), folds the log, and wakes on change signals or the poll interval when caught up.
 */
export const runProjection = <R>(
  projection: Projection<R>,
  options: ProjectionOptions = {}
): Effect.Effect<never, ProjectionError | EventLogError | StoreError | CheckpointConflict, R | Services> =>
  Effect.scoped(
    Effect.gen(function* () {
      const checkpoints = yield* CheckpointStore
      const log = yield* EventLog.EventLog
      yield* checkpoints.lock(projection.name)
      yield* Effect.logDebug("projection runner started")
      const batchSize = options.batchSize ?? 1000
      // Subscribed before the first read, so that no signal between a read and the wait is lost.
      const waitForChange = yield* EventLog.changeWaiter(log, options.pollInterval ?? "1 second")
      // a signal that comes during the pause is kept: the wait after it then returns at once
      const caughtUp =
        options.minInterval === undefined
          ? waitForChange
          : Effect.zipRight(Effect.sleep(options.minInterval), waitForChange)
      const next = yield* stepper(projection, batchSize)
      let position = yield* startPosition(projection)
      return yield* Effect.forever(
        Effect.gen(function* () {
          const r = yield* retryStore(
            Effect.suspend(() => next(position, () => true)).pipe(
              onConflictReload(checkpoints, projection.name, (p) => {
                position = p
              })
            )
          )
          position = r.next
          if (!r.full) yield* caughtUp
        })
      )
    })
  ).pipe(Effect.annotateLogs("projection", projection.name))

export interface Pipeline<E, R> {
  /** Sources to completion, then every projection caught up with the log. */
  readonly runOnce: Effect.Effect<void, E, R>
  /** Sources and projections together until interrupted (live sources never end). */
  readonly run: Effect.Effect<void, E, R>
}

/** Composes sources and projections into a pipeline. */
export const make = <ES = never, RS = never, RP = never>(options: {
  readonly sources: ReadonlyArray<Source<ES, RS>>
  readonly projections: ReadonlyArray<Projection<RP>>
  readonly projectionOptions?: ProjectionOptions
}): Pipeline<
  ES | SourceError | StoreError | InvalidEvent | EventLogError | ProjectionError | CheckpointConflict,
  RS | RP | Services
> => {
  const sources = Effect.forEach(options.sources, runSource, { concurrency: "unbounded", discard: true })
  const catchUpAll = Effect.forEach(options.projections, (p) => catchUp(p, options.projectionOptions), {
    concurrency: "unbounded",
    discard: true
  })
  return {
    runOnce: Effect.zipRight(sources, catchUpAll).pipe(Effect.withSpan("Pipeline.runOnce")),
    run: Effect.all(
      [
        sources,
        Effect.forEach(options.projections, (p) => runProjection(p, options.projectionOptions), {
          concurrency: "unbounded",
          discard: true
        })
      ],
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.withSpan("Pipeline.run"))
  }
}
