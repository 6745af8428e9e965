/**
 * Token buckets for Stripe's limits: one per account (every stream of that account shares it)
 * and one per account and endpoint, created on first use and kept for the life of the scope.
 *
 * Each bucket is a virtual-scheduling token bucket (GCRA): a bucket of `perSecond` tokens, refilled
 * at one token every `1 / perSecond` s, kept as the time at which it would be full again. A request
 * takes its slot at once (first come, first served, no lock: the bookkeeping is synchronous) and
 * sleeps until the slot's time when the bucket is empty. This is per request on the hot path, so it
 * costs a clock read and two additions instead of a fiber and a semaphore.
 */
import { Clock, Effect, type Scope } from "effect"

export interface Limits {
  /** Requests per second for one account. */
  readonly perAccount: number
  /** Requests per second for one endpoint of one account. */
  readonly perEndpoint: number
}

export interface Limiters {
  /** Runs `effect` once a token of the account's bucket and of the endpoint's bucket is free. */
  readonly limit: <A, E, R>(
    account: string,
    endpoint: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
}

interface Bucket {
  /** Milliseconds between two tokens. */
  readonly interval: number
  /** How far ahead of now the bucket may be booked: a full bucket's worth of tokens, minus one. */
  readonly tolerance: number
  /** The time (ms) at which the bucket would be full again. */
  tat: number
}

const bucketOf = (perSecond: number): Bucket => {
  const interval = 1000 / Math.max(perSecond, Number.MIN_VALUE)
  return { interval, tolerance: interval * (Math.max(1, Math.floor(perSecond)) - 1), tat: 0 }
}

/** Takes a token: the milliseconds to wait for it (0 when one is free now). */
const take = (bucket: Bucket, now: number): number => {
  const tat = Math.max(bucket.tat, now)
  const at = tat - bucket.tolerance
  bucket.tat = tat + bucket.interval
  return at > now ? at - now : 0
}

const wait = (bucket: Bucket): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const ms = take(bucket, now)
    return ms > 0 ? Effect.sleep(ms) : Effect.void
  })

export const make = (limits: Limits): Effect.Effect<Limiters, never, Scope.Scope> =>
  Effect.sync(() => {
    const accounts = new Map<string, Bucket>()
    const endpoints = new Map<string, Map<string, Bucket>>()
    const accountBucket = (account: string): Bucket => {
      let found = accounts.get(account)
      if (found === undefined) {
        found = bucketOf(limits.perAccount)
        accounts.set(account, found)
      }
      return found
    }
    const endpointBucket = (account: string, endpoint: string): Bucket => {
      let perAccount = endpoints.get(account)
      if (perAccount === undefined) {
        perAccount = new Map()
        endpoints.set(account, perAccount)
      }
      let found = perAccount.get(endpoint)
      if (found === undefined) {
        found = bucketOf(limits.perEndpoint)
        perAccount.set(endpoint, found)
      }
      return found
    }
    return {
      limit: (account, endpoint, effect) =>
        Effect.suspend(() =>
          // the endpoint's token first: a request held by its endpoint does not hold an account token
          wait(endpointBucket(account, endpoint)).pipe(
            Effect.zipRight(Effect.suspend(() => wait(accountBucket(account)))),
            Effect.zipRight(effect)
          )
        )
    }
  })

/**
 * A cap on effects running at once (requests in flight), first come first served. Effect's own
 * semaphore wakes every waiter on each release and the losers wait again, which with hundreds of
 * waiters (per-parent lists ask for many small pages at once) cost more CPU and memory than the
 * requests themselves; here a release hands its permit to the oldest waiter.
 */
export interface Gate {
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Permits free now and effects waiting for one (for tests). */
  readonly state: () => { readonly free: number; readonly waiting: number }
}

interface Waiter {
  readonly resume: (effect: Effect.Effect<void>) => void
  granted: boolean
}

export const makeGate = (permits: number): Gate => {
  let free = Math.max(1, permits)
  const queue: Array<Waiter> = []
  const release = () => {
    const next = queue.shift()
    if (next === undefined) {
      free++
      return
    }
    next.granted = true
    next.resume(Effect.void)
  }
  const take = Effect.async<void>((resume) => {
    if (free > 0) {
      free--
      resume(Effect.void)
      return
    }
    const waiter: Waiter = { resume, granted: false }
    queue.push(waiter)
    return Effect.sync(() => {
      // interrupted while waiting: leave the queue, or pass on a permit handed over meanwhile
      if (waiter.granted) release()
      else {
        const i = queue.indexOf(waiter)
        if (i >= 0) queue.splice(i, 1)
      }
    })
  })
  const released = Effect.sync(release)
  return {
    withPermit: (effect) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(take), Effect.ensuring(restore(effect), released))
      ),
    state: () => ({ free, waiting: queue.length })
  }
}
