/**
 * Runner settings, with defaults, readable from the environment (`STRIPE_SYNC_BATCH_SIZE`, …).
 *
 * @since 0.1.0
 */
import { Config, Duration } from "effect"

export interface PipelineConfig {
  /** Events a projection applies per transaction. */
  readonly batchSize: number
  /** How often a caught-up projection polls the log when no change signal comes. */
  readonly pollInterval: Duration.Duration
}

export const defaults: PipelineConfig = {
  batchSize: 1000,
  pollInterval: Duration.seconds(1)
}

export const config: Config.Config<PipelineConfig> = Config.all({
  batchSize: Config.integer("STRIPE_SYNC_BATCH_SIZE").pipe(
    Config.validate({ message: "must be between 1 and 10000", validation: (n) => n >= 1 && n <= 10_000 }),
    Config.withDefault(defaults.batchSize)
  ),
  pollInterval: Config.duration("STRIPE_SYNC_POLL_INTERVAL").pipe(Config.withDefault(defaults.pollInterval))
})
