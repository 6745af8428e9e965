/**
 * Named retry schedules. All are bounded and jittered; the delay is capped before the bound is
 * applied (a union added after an intersect would never end).
 *
 * @since 0.1.0
 */
import { type Duration, Schedule } from "effect"

export interface Options {
  /** First delay. */
  readonly base?: Duration.DurationInput
  /** Largest delay. */
  readonly cap?: Duration.DurationInput
  /** Retries at most. */
  readonly times?: number
}

/** Jittered exponential backoff from `base`, each delay at most `cap`, at most `times` retries. */
export const backoff = (options: Options = {}): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(options.base ?? "200 millis").pipe(
    Schedule.jittered,
    Schedule.union(Schedule.spaced(options.cap ?? "30 seconds")),
    Schedule.intersect(Schedule.recurs(options.times ?? 8)),
    Schedule.map(([[delay]]) => delay)
  )

/** Transient I/O (a dropped connection, a deadlock): quick, few retries. */
export const transient: Schedule.Schedule<Duration.Duration> = backoff({
  base: "100 millis",
  cap: "5 seconds",
  times: 6
})

/** A long-running worker whose store is down: keep trying with a capped delay, for about ten minutes. */
export const worker: Schedule.Schedule<Duration.Duration> = backoff({
  base: "500 millis",
  cap: "30 seconds",
  times: 25
})
