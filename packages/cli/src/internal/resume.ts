/**
 * Whether `sync` may go straight to live on a restart instead of reading all history again.
 *
 * It may when everything a fresh backfill would give is already in the log and the Events API can
 * bring it up to date: no backfill range is unfinished, the latest run of every account completed
 * every selected resource, and the polling cursor of every account is recent enough that the events
 * after it are still within Stripe's 30-day retention (with a day to spare). Otherwise `sync`
 * backfills as on a first start.
 */
import { CursorStore } from "@stripe-sync/core"
import { SyncRuns } from "@stripe-sync/sink-postgres"
import { Backfill, EventsPoller } from "@stripe-sync/source-stripe"
import { Effect, Option, Schema } from "effect"

/** Margin kept before Stripe's retention: a cursor this close to it backfills instead. */
const marginSeconds = 24 * 60 * 60

export type Decision =
  | { readonly _tag: "Resume"; readonly oldestCursor: number }
  | { readonly _tag: "Backfill"; readonly reason: string }

const backfillBecause = (reason: string): Decision => ({ _tag: "Backfill", reason })

const decodeCursor = Schema.decodeUnknownOption(EventsPoller.Cursor)

/**
 * Decides for the given accounts and resource objects (`customer`, `invoice`, …) at `now` (unix seconds).
 */
export const decide = (options: {
  readonly accounts: ReadonlyArray<Backfill.Account>
  readonly objects: ReadonlyArray<string>
  readonly now: number
}) =>
  Effect.gen(function* () {
    const store = yield* CursorStore.CursorStore
    if ((yield* store.list(Backfill.sourceName)).length > 0) {
      return backfillBecause("a backfill was stopped before it finished; resuming it")
    }
    const polled = Option.flatMap(
      Option.fromNullable((yield* store.list(EventsPoller.sourceName)).find((c) => c.key === "default")),
      (c) => decodeCursor(c.value)
    )
    if (Option.isNone(polled)) return backfillBecause("no Events API cursor yet")
    const runs = yield* SyncRuns.latest(200)
    let oldest = Number.POSITIVE_INFINITY
    for (const account of options.accounts) {
      const cursor = polled.value.accounts[account.id]
      if (cursor === undefined) return backfillBecause(`${account.id} has never been polled`)
      if (cursor.upTo < options.now - EventsPoller.retentionSeconds + marginSeconds) {
        return backfillBecause(
          `the Events API cursor of ${account.id} (${new Date(cursor.upTo * 1000).toISOString()}) is too close to Stripe's 30-day event retention`
        )
      }
      oldest = Math.min(oldest, cursor.upTo)
      const run = runs.find((r) => r.accountId === account.id)
      if (run === undefined || run.status !== "complete") {
        return backfillBecause(`the last backfill of ${account.id} did not complete`)
      }
      const done = new Set(
        (yield* SyncRuns.objects(run.id))
          .filter((o) => o.status === "complete" || o.status === "skipped")
          .map((o) => o.object)
      )
      const missing = options.objects.filter((o) => !done.has(o))
      if (missing.length > 0) {
        return backfillBecause(`the last backfill of ${account.id} did not cover ${missing.join(", ")}`)
      }
    }
    return { _tag: "Resume", oldestCursor: oldest } satisfies Decision as Decision
  })
