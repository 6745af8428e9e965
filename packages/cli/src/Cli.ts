/**
 * The `stripe-sync` command.
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import { CheckpointStore, CursorStore, EventLog, LogPosition } from "@stripe-sync/core"
import { Console, Effect } from "effect"
import { sinkLayer, withLogging } from "./internal/runtime.js"
import * as SharedOptions from "./SharedOptions.js"

const migrate = Command.make("migrate", SharedOptions.shared, (options) =>
  Effect.gen(function* () {
    yield* Effect.logInfo(`schema "${options.schema}" is migrated`)
  }).pipe(Effect.provide(sinkLayer(options)), withLogging(options))
).pipe(
  Command.withDescription("Create or upgrade the sync schema (event log, cursors, checkpoints, tables).")
)

const status = Command.make("status", SharedOptions.shared, (options) =>
  Effect.gen(function* () {
    const log = yield* EventLog.EventLog
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const cursors = yield* CursorStore.CursorStore
    const head = yield* log.head
    yield* Console.log(`event log head: ${LogPosition.format(head)}`)
    const list = yield* checkpoints.list
    yield* Console.log(list.length === 0 ? "projections: none yet" : "projections:")
    for (const c of list) {
      const behind = head.position > c.position.position ? head.position - c.position.position : 0n
      yield* Console.log(
        `  ${c.projection} v${c.version} at ${LogPosition.format(c.position)} (about ${behind} events behind), updated ${c.updatedAt.toISOString()}`
      )
    }
    const backfill = yield* cursors.list("backfill")
    if (backfill.length > 0) yield* Console.log(`backfill: ${backfill.length} unfinished ranges`)
    const holders = yield* log.horizonHolders
    if (holders.length > 0) {
      yield* Console.log("transactions holding readers back:")
      for (const h of holders) {
        yield* Console.log(
          `  pid ${h.pid} (${h.applicationName || "?"}) open ${h.ageSeconds}s, ${h.state}: ${h.query.slice(0, 120)}`
        )
      }
    }
  }).pipe(Effect.provide(sinkLayer(options)), withLogging(options))
).pipe(
  Command.withDescription(
    "Show the event log, projections and their lag, backfill progress, and what holds readers back."
  )
)

export const root = Command.make("stripe-sync").pipe(
  Command.withDescription("Keep Stripe mirrored in PostgreSQL: backfill, live sync, replay."),
  Command.withSubcommands([migrate, status])
)

export const run = Command.run(root, { name: "stripe-sync", version: "0.1.0" })
