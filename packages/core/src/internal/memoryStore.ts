import { Context, Duration, Effect, Option, PubSub, Stream } from "effect"
import type * as CheckpointStore from "../CheckpointStore.js"
import type * as CursorStore from "../CursorStore.js"
import * as Event from "../Event.js"
import type * as EventLog from "../EventLog.js"
import * as LogPosition from "../LogPosition.js"
import { CheckpointConflict } from "../PipelineError.js"
import type * as RevalidationQueue from "../RevalidationQueue.js"
import { validateBatch } from "./validate.js"

interface CursorRow {
  value: unknown
  leasedBy: string | undefined
  leaseUntil: number
}

/** The shared state of the in-memory drivers. */
export interface State {
  readonly events: Array<Event.StoredEvent>
  readonly eventKeys: Set<string>
  readonly latestHash: Map<string, string>
  txid: bigint
  position: bigint
  readonly changes: PubSub.PubSub<void>
  readonly cursors: Map<string, Map<string, CursorRow>>
  readonly checkpoints: Map<string, CheckpointStore.Checkpoint>
  readonly locks: Map<string, Effect.Semaphore>
  readonly heldLocks: Set<string>
  readonly revalidation: Map<string, RevalidationQueue.Request>
}

export class MemoryStore extends Context.Tag("@stripe-sync/core/MemoryStore")<MemoryStore, State>() {}

export const makeState: Effect.Effect<State> = Effect.map(PubSub.sliding<void>(1), (changes) => ({
  events: [],
  eventKeys: new Set(),
  latestHash: new Map(),
  txid: 0n,
  position: 0n,
  changes,
  cursors: new Map(),
  checkpoints: new Map(),
  locks: new Map(),
  heldLocks: new Set(),
  revalidation: new Map()
}))

const objectKey = (e: Event.Event) => `${e.accountId}\u0000${e.objectType}\u0000${e.objectId}`

const writeCursors = (state: State, writes: ReadonlyArray<EventLog.CursorWrite>) => {
  for (const w of writes) {
    let rows = state.cursors.get(w.source)
    if (rows === undefined) {
      rows = new Map()
      state.cursors.set(w.source, rows)
    }
    if (w.value === null) rows.delete(w.key)
    else {
      const prev = rows.get(w.key)
      rows.set(w.key, { value: w.value, leasedBy: prev?.leasedBy, leaseUntil: prev?.leaseUntil ?? 0 })
    }
  }
}

export const memoryEventLog = (state: State): EventLog.Service => ({
  append: (batch) =>
    Effect.flatMap(validateBatch(batch.events), (events) =>
      Effect.sync(() => {
        // One synchronous block: no other fiber runs in between, so the batch and its cursors
        // become visible together.
        const txid = ++state.txid
        let appended = 0
        for (const event of events) {
          const key = `${event.accountId}\u0000${event.id}`
          if (state.eventKeys.has(key)) continue
          const hash = Event.hashData(event.data)
          const okey = objectKey(event)
          if (
            Event.isSnapshot(event) &&
            event.source !== "revalidate_queue" &&
            state.latestHash.get(okey) === hash
          )
            continue
          state.eventKeys.add(key)
          state.latestHash.set(okey, hash)
          state.events.push(
            Object.assign(Object.create(Object.getPrototypeOf(event)), event, {
              txid,
              position: ++state.position
            })
          )
          appended++
        }
        writeCursors(state, batch.cursors ?? [])
        return { appended, skipped: events.length - appended }
      }).pipe(
        Effect.tap(({ appended }) => (appended > 0 ? PubSub.publish(state.changes, undefined) : Effect.void))
      )
    ),
  read: (after, options) =>
    Effect.sync(() => {
      const out: Array<Event.StoredEvent> = []
      // events are stored in log order; find the first after `after`
      let lo = 0
      let hi = state.events.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (LogPosition.order(state.events[mid]!, after) <= 0) lo = mid + 1
        else hi = mid
      }
      let last: LogPosition.LogPosition = after
      for (let i = lo; i < state.events.length && out.length < options.limit; i++) {
        const e = state.events[i]!
        last = { txid: e.txid, position: e.position }
        if (matches(options.types, e.type)) out.push(e)
      }
      const exhausted = out.length < options.limit
      const next = exhausted ? LogPosition.max(last, { txid: state.txid, position: state.position }) : last
      return { events: out, next }
    }),
  head: Effect.sync(() => ({ txid: state.txid, position: state.position })),
  changes: Stream.fromPubSub(state.changes),
  horizonHolders: Effect.succeed([])
})

const matches = (types: ReadonlyArray<string> | undefined, type: string): boolean => {
  if (types === undefined || types.length === 0) return true
  for (const t of types) {
    if (t === "*" || t === type) return true
    if (t.endsWith(".*") && type.startsWith(t.slice(0, -1))) return true
  }
  return false
}

export const memoryCursorStore = (state: State): CursorStore.Service => ({
  get: (source, key) => Effect.sync(() => Option.fromNullable(state.cursors.get(source)?.get(key)?.value)),
  list: (source) =>
    Effect.sync(() =>
      [...(state.cursors.get(source)?.entries() ?? [])]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, row]) => ({ source, key, value: row.value }))
    ),
  put: (writes) => Effect.sync(() => writeCursors(state, writes)),
  lease: (source, options) =>
    Effect.sync(() => {
      const now = Date.now()
      const rows = [...(state.cursors.get(source)?.entries() ?? [])].sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0
      )
      for (const [key, row] of rows) {
        if (row.leasedBy === undefined || row.leaseUntil <= now) {
          row.leasedBy = options.owner
          row.leaseUntil = now + Duration.toMillis(Duration.decode(options.ttl))
          return Option.some({ source, key, value: row.value })
        }
      }
      return Option.none()
    }),
  renew: (source, key, options) =>
    Effect.sync(() => {
      const row = state.cursors.get(source)?.get(key)
      if (row === undefined || row.leasedBy !== options.owner) return false
      row.leaseUntil = Date.now() + Duration.toMillis(Duration.decode(options.ttl))
      return true
    }),
  release: (source, key, owner) =>
    Effect.sync(() => {
      const row = state.cursors.get(source)?.get(key)
      if (row !== undefined && row.leasedBy === owner) {
        row.leasedBy = undefined
        row.leaseUntil = 0
      }
    })
})

const lockOf = (state: State, projection: string) =>
  Effect.suspend(() => {
    const existing = state.locks.get(projection)
    if (existing) return Effect.succeed(existing)
    return Effect.map(Effect.makeSemaphore(1), (s) => {
      const again = state.locks.get(projection)
      if (again) return again
      state.locks.set(projection, s)
      return s
    })
  })

export const memoryCheckpointStore = (state: State): CheckpointStore.Service => ({
  get: (projection) => Effect.sync(() => Option.fromNullable(state.checkpoints.get(projection))),
  list: Effect.sync(() =>
    [...state.checkpoints.values()].sort((a, b) => a.projection.localeCompare(b.projection))
  ),
  register: (projection, version) =>
    Effect.sync(() => {
      const existing = state.checkpoints.get(projection)
      if (existing) return existing
      const created = { projection, position: LogPosition.zero, version, updatedAt: new Date() }
      state.checkpoints.set(projection, created)
      return created
    }),
  compareAndSet: (projection, expected, next) =>
    Effect.suspend(() => {
      const current = state.checkpoints.get(projection)
      const actual = current?.position ?? LogPosition.zero
      if (!LogPosition.equals(actual, expected)) {
        return Effect.fail(
          new CheckpointConflict({
            projection,
            expected: LogPosition.format(expected),
            actual: LogPosition.format(actual)
          })
        )
      }
      state.checkpoints.set(projection, {
        projection,
        position: next,
        version: current?.version ?? 0,
        updatedAt: new Date()
      })
      return Effect.void
    }),
  reset: (projection, position, version) =>
    Effect.sync(() => {
      state.checkpoints.set(projection, { projection, position, version, updatedAt: new Date() })
    }),
  lock: (projection) =>
    Effect.flatMap(lockOf(state, projection), (s) =>
      Effect.acquireRelease(
        Effect.zipRight(
          s.take(1),
          Effect.sync(() => state.heldLocks.add(projection))
        ),
        () =>
          Effect.zipRight(
            Effect.sync(() => state.heldLocks.delete(projection)),
            s.release(1)
          )
      )
    ).pipe(Effect.asVoid),
  tryLock: (projection) =>
    Effect.flatMap(lockOf(state, projection), (s) =>
      Effect.acquireRelease(
        Effect.suspend(() =>
          state.heldLocks.has(projection)
            ? Effect.succeed(false)
            : Effect.as(
                Effect.zipRight(
                  s.take(1),
                  Effect.sync(() => state.heldLocks.add(projection))
                ),
                true
              )
        ),
        (taken) =>
          taken
            ? Effect.zipRight(
                Effect.sync(() => state.heldLocks.delete(projection)),
                s.release(1)
              )
            : Effect.void
      )
    )
})

export const memoryRevalidationQueue = (state: State): RevalidationQueue.Service => ({
  request: (requests) =>
    Effect.sync(() => {
      for (const r of requests) {
        const key = `${r.accountId}\u0000${r.objectType}\u0000${r.objectId}`
        const prev = state.revalidation.get(key)
        state.revalidation.set(key, prev && prev.notBefore > r.notBefore ? prev : r)
      }
    }),
  take: ({ limit, now }) =>
    Effect.sync(() => {
      const due = [...state.revalidation.entries()]
        .filter(([, r]) => r.notBefore <= now)
        .sort(([, a], [, b]) => a.notBefore - b.notBefore)
        .slice(0, limit)
      for (const [key] of due) state.revalidation.delete(key)
      return due.map(([, r]) => r)
    }),
  size: Effect.sync(() => state.revalidation.size)
})
