/**
 * Events API polling: reads `GET /v1/events` of every account after a cursor, oldest first, with a
 * safety lag for Stripe's eventual consistency, and appends each event as the log's envelope
 * (`StripeEvent.toEnvelope`, source `events_api`). Needs no public URL.
 *
 * How nothing is missed:
 * - each pass reads the window `(upTo - overlap, now - lag]` of an account, where `now` is Stripe's
 *   own clock (the `Date` header of its answer) and `upTo` the last second stored: events that
 *   become visible late (within `overlap` of where the last pass ended) are still read;
 * - the ids already stored within the overlap are kept in the cursor and skipped (and the log
 *   deduplicates by `(account, event id)` anyway);
 * - the window is read in slices of time, each paged completely (Stripe lists newest first) and then
 *   emitted oldest first in batches whose cursor holds once they are stored: a crash resumes after
 *   the last stored batch. A slice holds at most `maxEventsPerSlice` events in memory: one with more
 *   is dropped and read again at half the span (the span then adapts to the density of events), so a
 *   catch-up after a long downtime reads days of events with flat memory.
 *
 * A cursor older than Stripe's event retention (30 days) cannot be continued: the pass fails with
 * `EventsRetentionExceeded`, which names the command that re-reads the current state (a backfill).
 *
 * @since 0.1.0
 */
import type * as Event from "@stripe-sync/core/Event"
import * as Source from "@stripe-sync/core/Source"
import { Chunk, Data, Duration, Effect, Either, Option, Ref, Schema, Stream } from "effect"
import type * as Backfill from "./Backfill.js"
import * as Revalidate from "./Revalidate.js"
import type * as StripeClient from "./StripeClient.js"
import type * as StripeError from "./StripeError.js"
import * as StripeEvent from "./StripeEvent.js"

/**
 * The source name (and cursor row) of the poller.
 *
 * @since 0.1.0
 */
export const sourceName = "events_api"

/**
 * Stripe keeps events for 30 days (`GET /v1/events` documents "events going back 30 days").
 *
 * @since 0.1.0
 */
export const retentionSeconds = 30 * 24 * 60 * 60

/**
 * The stored cursor cannot be continued: the events after it are past Stripe's retention.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventsRetentionExceeded extends Data.TaggedError("EventsRetentionExceeded")<{
  readonly accountId: string
  /** The last second the cursor had read (unix seconds). */
  readonly since: number
  readonly message: string
}> {}

/**
 * Per account: the last second read completely (`upTo`), and the ids of the events read within
 * the overlap before it.
 *
 * @since 0.1.0
 * @category models
 */
export const AccountCursor = Schema.Struct({
  upTo: Schema.Number,
  seen: Schema.Array(Schema.String)
})
export type AccountCursor = typeof AccountCursor.Type

/**
 * @since 0.1.0
 * @category models
 */
export const Cursor = Schema.Struct({
  accounts: Schema.Record({ key: Schema.String, value: AccountCursor })
})
export type Cursor = typeof Cursor.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly client: StripeClient.Service
  /** The platform (the key's account) and the connected accounts to poll. */
  readonly accounts: ReadonlyArray<Backfill.Account>
  /** Seconds events must be old before they are read (default 5): Stripe's eventual consistency. */
  readonly lag?: number | undefined
  /** Seconds re-read before the cursor on every pass, deduplicated by id (default 30). */
  readonly overlap?: number | undefined
  /** Pause between passes (default 5 s). */
  readonly interval?: Duration.DurationInput | undefined
  /**
   * Where an account without a cursor starts (unix seconds, exclusive). Default: Stripe's now minus
   * the lag (only new events). A stored cursor older than this moves up to it (`sync` gives the
   * backfill's start minus the lag: the backfill holds everything older).
   */
  readonly startAfter?: number | undefined
  /** Object types whose events are replaced by a fresh read of the object (`Revalidate.snapshot`). */
  readonly revalidate?: ReadonlyArray<string> | undefined
  /** One pass over every account, then the stream ends (tests, cron). Default false: poll forever. */
  readonly once?: boolean | undefined
  /** Events per appended batch (default 100). */
  readonly batchSize?: number | undefined
  /** Events held in memory per slice of the window at most (default 5,000; a single second may hold more). */
  readonly maxEventsPerSlice?: number | undefined
}

const createdOf = (e: Record<string, unknown>): number => (typeof e.created === "number" ? e.created : 0)

/** Stripe's clock (the `Date` header of a cheap answer) in unix seconds. */
const stripeNow = (client: StripeClient.Service, account: Backfill.Account) =>
  Effect.map(
    client.list("/v1/events", { limit: 1 }, { account: account.connected ? account.id : undefined }),
    (page) => page.versionTs
  )

/**
 * Reads the events of one account with `created` in `(after, upTo]`, oldest first; none when the
 * slice holds more than `cap` events and spans more than one second (read it in smaller slices).
 */
const readSlice = (
  client: StripeClient.Service,
  account: Backfill.Account,
  after: number,
  upTo: number,
  cap: number
): Effect.Effect<Option.Option<ReadonlyArray<Record<string, unknown>>>, StripeError.StripeError> =>
  Effect.gen(function* () {
    if (upTo <= after) return Option.some([])
    const requestOptions = { account: account.connected ? account.id : undefined }
    const collected: Array<Record<string, unknown>> = []
    let startingAfter: string | undefined
    for (;;) {
      const page = yield* client.list(
        "/v1/events",
        {
          limit: 100,
          "created[gt]": after,
          "created[lte]": upTo,
          ...(startingAfter === undefined ? {} : { starting_after: startingAfter })
        },
        requestOptions
      )
      collected.push(...page.data)
      const last = page.data[page.data.length - 1]
      if (!page.has_more || last === undefined) break
      if (collected.length >= cap && upTo - after > 1) return Option.none()
      startingAfter = String(last.id)
    }
    // Stripe lists newest first (created desc, and within a second its own order): reversed, the
    // oldest comes first. A stable sort by created keeps that order within a second.
    const oldestFirst = collected.reverse()
    oldestFirst.sort((a, b) => createdOf(a) - createdOf(b))
    return Option.some(oldestFirst)
  })

/**
 * The polling source. Its cursor is one row (`events_api/default`) holding every account's position.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) => {
  const lag = options.lag ?? 5
  const overlap = options.overlap ?? 30
  const interval = options.interval ?? Duration.seconds(5)
  const batchSize = options.batchSize ?? 100
  const maxEventsPerSlice = Math.max(100, options.maxEventsPerSlice ?? 5_000)
  const revalidate = new Set(options.revalidate ?? [])
  const platform = options.accounts.find((a) => !a.connected)?.id ?? options.accounts[0]?.id ?? ""
  const client = options.client

  /** The envelopes of one account's events; the revalidated types read afresh. */
  const toEvents = (account: Backfill.Account, raw: ReadonlyArray<Record<string, unknown>>) =>
    Effect.gen(function* () {
      const out: Array<Event.Event> = []
      for (const r of raw) {
        const converted = StripeEvent.toEnvelope(r, { source: "events_api", platformAccountId: platform })
        if (Either.isLeft(converted)) {
          yield* Effect.logWarning(`skipping an event that is not a Stripe event: ${converted.left.message}`)
          continue
        }
        const event = converted.right
        if (!revalidate.has(event.objectType) || event.type.endsWith(".deleted")) {
          out.push(event)
          continue
        }
        // trust the API's current object rather than the payload; an object that cannot be read
        // (gone, or of a type that cannot be retrieved) keeps the event's payload
        const fresh = yield* Revalidate.snapshot(client, {
          id: event.objectId,
          objectType: event.objectType,
          account
        }).pipe(
          Effect.catchTags({
            StripeNotFound: () => Effect.succeed(event),
            UnknownObject: () => Effect.succeed(event)
          })
        )
        out.push(fresh)
      }
      return out
    })

  /** A batch to append and the cursor (of every account) true once it is stored. */
  type Polled = { readonly events: ReadonlyArray<Event.Event>; readonly cursor: Cursor }

  /** A slice of an account's window still to read: from `from` (exclusive), about `span` seconds. */
  interface Slice {
    readonly from: number
    readonly span: number
    /** The account's cursor once everything before `from` is stored. */
    readonly cursor: AccountCursor
    /** `created` of the ids read so far (to keep only the overlap's ids in the cursor). */
    readonly created: Map<string, number>
  }

  /**
   * One pass over one account, slice after slice up to Stripe's now minus the lag: the batches to
   * append, each with the cursor (of every account) true once stored; `state` follows them.
   */
  const passAccount = (account: Backfill.Account, state: Ref.Ref<Cursor>) =>
    Stream.unwrap(
      Effect.gen(function* () {
        const now = yield* stripeNow(client, account)
        const windowEnd = now - lag
        const stored = (yield* Ref.get(state)).accounts[account.id]
        const cursor: AccountCursor =
          stored === undefined
            ? { upTo: options.startAfter ?? windowEnd, seen: [] }
            : options.startAfter !== undefined && stored.upTo < options.startAfter
              ? { upTo: options.startAfter, seen: [] }
              : stored
        if (cursor.upTo < now - retentionSeconds) {
          return yield* new EventsRetentionExceeded({
            accountId: account.id,
            since: cursor.upTo,
            message: `the events polling cursor of ${account.id} is at ${new Date(cursor.upTo * 1000).toISOString()}, older than Stripe's 30-day event retention, so the events after it can no longer be read. Run \`stripe-sync sync\`: it backfills the current state first, then polls from there`
          })
        }
        const upTo = Math.max(windowEnd, cursor.upTo)
        const from = cursor.upTo - overlap
        const first: Slice = { from, span: Math.max(1, upTo - from), cursor, created: new Map() }
        return Stream.paginateChunkEffect(first, (slice) =>
          Effect.gen(function* () {
            const end = Math.min(upTo, slice.from + slice.span)
            const read = yield* readSlice(client, account, slice.from, end, maxEventsPerSlice)
            if (Option.isNone(read)) {
              // too many events to hold at once: the same slice, half as long
              const smaller: Slice = { ...slice, span: Math.max(1, Math.floor(slice.span / 2)) }
              return [Chunk.empty<Polled>(), Option.some(smaller)] as const
            }
            const window = read.value
            for (const e of window) slice.created.set(String(e.id), createdOf(e))
            const seen = new Set(slice.cursor.seen)
            const fresh = window.filter((e) => !seen.has(String(e.id)))
            /**
             * The cursor once `fresh[0, n)` is stored: every second before the next unread event is
             * complete; the ids within the overlap (and of a partly stored second) are kept to skip them.
             */
            const cursorAfter = (n: number): AccountCursor => {
              const next = fresh[n]
              const doneUpTo = Math.max(slice.cursor.upTo, next === undefined ? end : createdOf(next) - 1)
              const ids = [...slice.cursor.seen, ...fresh.slice(0, n).map((e) => String(e.id))]
              return {
                upTo: doneUpTo,
                seen: ids.filter(
                  (id) => (slice.created.get(id) ?? Number.NEGATIVE_INFINITY) > doneUpTo - overlap
                )
              }
            }
            const withAccount = (c: AccountCursor) =>
              Ref.updateAndGet(state, (all): Cursor => ({ accounts: { ...all.accounts, [account.id]: c } }))
            const batches: Array<Polled> = []
            for (let start = 0; start < fresh.length; start += batchSize) {
              const stop = Math.min(start + batchSize, fresh.length)
              batches.push({
                events: yield* toEvents(account, fresh.slice(start, stop)),
                cursor: yield* withAccount(cursorAfter(stop))
              })
            }
            const after = cursorAfter(fresh.length)
            // nothing new: the cursor still moves (a batch without events stores only the cursor)
            if (batches.length === 0) batches.push({ events: [], cursor: yield* withAccount(after) })
            if (end >= upTo) return [Chunk.unsafeFromArray(batches), Option.none()] as const
            for (const [id, created] of slice.created) {
              if (created <= after.upTo - overlap) slice.created.delete(id)
            }
            // the next span aims at half the cap for the density just seen, at most twice as long
            const span =
              window.length === 0
                ? slice.span * 2
                : Math.max(
                    1,
                    Math.min(slice.span * 2, Math.floor((slice.span * maxEventsPerSlice) / 2 / window.length))
                  )
            const next: Slice = { from: end, span, cursor: after, created: slice.created }
            return [Chunk.unsafeFromArray(batches), Option.some(next)] as const
          })
        )
      })
    )

  return Source.make({
    name: sourceName,
    cursor: Cursor,
    read: (from) =>
      Stream.unwrap(
        Effect.map(Ref.make(Option.getOrElse(from, (): Cursor => ({ accounts: {} }))), (state) => {
          const pass = Stream.flatMap(Stream.fromIterable(options.accounts), (account) =>
            passAccount(account, state)
          )
          return options.once === true
            ? pass
            : Stream.forever(Stream.concat(pass, Stream.drain(Stream.fromEffect(Effect.sleep(interval)))))
        })
      )
  })
}
