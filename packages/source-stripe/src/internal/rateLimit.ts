/**
 * Token buckets for Stripe's limits: one per account (every stream of that account shares it)
 * and one per account and endpoint, created on first use and kept for the life of the scope.
 */
import { Effect, RateLimiter, Scope } from "effect"

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

export const make = (limits: Limits): Effect.Effect<Limiters, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const buckets = new Map<string, RateLimiter.RateLimiter>()
    const lock = yield* Effect.makeSemaphore(1)
    const bucket = (key: string, perSecond: number) =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          const found = buckets.get(key)
          if (found) return Effect.succeed(found)
          return RateLimiter.make({ limit: perSecond, interval: "1 second", algorithm: "token-bucket" }).pipe(
            Scope.extend(scope),
            Effect.tap((limiter) => Effect.sync(() => buckets.set(key, limiter)))
          )
        })
      )
    return {
      limit: (account, endpoint, effect) =>
        Effect.gen(function* () {
          const perAccount = yield* bucket(`account ${account}`, limits.perAccount)
          const perEndpoint = yield* bucket(`endpoint ${account} ${endpoint}`, limits.perEndpoint)
          // the endpoint's token first: a request held by its endpoint does not hold an account token
          return yield* perEndpoint(perAccount(effect))
        })
    }
  })
