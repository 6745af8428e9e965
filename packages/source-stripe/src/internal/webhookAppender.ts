/**
 * The webhook appender: requests park their events and wait; one append (at most `concurrency` in
 * flight) takes everything waiting, up to `maxBatchSize`, and calls back every request of the batch.
 * Events that arrive while appends are in flight go in the next batch as soon as one ends. With a
 * linger, the first event of a batch also arms a timer and the append waits for it; without (the
 * webhook server's default), an event goes at once when a slot is free.
 *
 * Plain JS with callbacks: this runs for every request, and a fiber, a queue or an `Effect.async`
 * per event costs more than the append's share of the event.
 */
import type * as Event from "@stripe-sync/core/Event"
import type { AppendResult } from "@stripe-sync/core/EventLog"
import { Data, type Duration, Effect, type Fiber } from "effect"

/** Why an event was not stored: the log failed, timed out, or too many events are waiting. */
export class LogUnavailable extends Data.TaggedError("LogUnavailable")<{ readonly message: string }> {}

/** Called once per event: `undefined` when it is committed, else why not. */
export type Done = (error: LogUnavailable | undefined) => void

interface Waiter {
  readonly event: Event.Event
  readonly done: Done
}

export interface AppenderOptions {
  readonly maxBatchSize: number
  readonly lingerMillis: number
  readonly concurrency: number
  readonly timeout: Duration.Duration
  /** Events waiting at most; beyond, `submit` refuses at once (the log is far behind). */
  readonly capacity: number
}

export class Appender {
  private waiting: Array<Waiter> = []
  private appending = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private closed = false
  private readonly unavailable = new LogUnavailable({ message: "the event log is unavailable" })
  private readonly full = new LogUnavailable({ message: "too many events waiting for the event log" })
  private readonly flushNow: () => void

  constructor(
    /** Appends one batch; its failure (or a timeout) fails every event of the batch. */
    private readonly append: (events: ReadonlyArray<Event.Event>) => Effect.Effect<AppendResult, unknown>,
    /** Runs an append in the background (the runtime of the server's scope). */
    private readonly runFork: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>,
    private readonly options: AppenderOptions,
    /** Called after each stored batch with its size and what the log said (metrics). */
    private readonly onStored: (size: number, result: AppendResult) => void
  ) {
    this.flushNow = () => this.flush()
  }

  /** Queues an event; `done` is called once it is committed, or failed (at once when full or closed). */
  submit(event: Event.Event, done: Done): void {
    if (this.closed || this.waiting.length >= this.options.capacity) {
      done(this.full)
      return
    }
    this.waiting.push({ event, done })
    if (this.appending >= this.options.concurrency) return
    if (this.waiting.length >= this.options.maxBatchSize || this.options.lingerMillis <= 0) this.flush()
    else if (this.timer === undefined) this.timer = setTimeout(this.flushNow, this.options.lingerMillis)
  }

  /** Fails every waiting event and refuses new ones (appends in flight finish). */
  close(): void {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    const waiting = this.waiting
    this.waiting = []
    for (const w of waiting) w.done(this.unavailable)
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    while (this.waiting.length > 0 && this.appending < this.options.concurrency) {
      let items: Array<Waiter>
      if (this.waiting.length <= this.options.maxBatchSize) {
        items = this.waiting
        this.waiting = []
      } else {
        items = this.waiting.slice(0, this.options.maxBatchSize)
        this.waiting = this.waiting.slice(this.options.maxBatchSize)
      }
      this.appending++
      this.runFork(this.appendBatch(items))
    }
  }

  // One timer per batch, not per request: a hung append fails every request of its batch.
  private appendBatch(items: ReadonlyArray<Waiter>): Effect.Effect<void> {
    const events = new Array<Event.Event>(items.length)
    for (let i = 0; i < items.length; i++) events[i] = items[i]!.event
    return this.append(events).pipe(
      Effect.timeoutFail({
        duration: this.options.timeout,
        onTimeout: () => new LogUnavailable({ message: "timed out waiting for the event log" })
      }),
      Effect.matchCauseEffect({
        onSuccess: (r) =>
          Effect.sync(() => {
            this.onStored(items.length, r)
            for (const w of items) w.done(undefined)
          }),
        onFailure: (cause) =>
          Effect.zipRight(
            Effect.logWarning("webhook append failed; answering 503 so Stripe retries", cause),
            Effect.sync(() => {
              for (const w of items) w.done(this.unavailable)
            })
          )
      }),
      Effect.ensuring(
        Effect.sync(() => {
          this.appending--
          if (this.waiting.length > 0) this.flush()
        })
      )
    )
  }
}
