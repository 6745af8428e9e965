/**
 * Metrics of the pipeline, as Effect metrics (exported in Prometheus format by the servers).
 *
 * @since 0.1.0
 */
import { Metric, MetricBoundaries } from "effect"

/** Events stored in the log, tagged by `source`. */
export const eventsAppended = Metric.counter("stripe_sync_events_appended_total", {
  description: "Events stored in the event log",
  incremental: true
})

/** Duplicates and unchanged snapshots that the log skipped, tagged by `source`. */
export const eventsSkipped = Metric.counter("stripe_sync_events_skipped_total", {
  description: "Events skipped by the log as duplicates or unchanged snapshots",
  incremental: true
})

/** Events folded by a projection, tagged by `projection`. */
export const eventsApplied = Metric.counter("stripe_sync_events_applied_total", {
  description: "Events applied by projections",
  incremental: true
})

/** Events in the log that a projection has not applied yet, tagged by `projection`. */
export const projectionLag = Metric.gauge("stripe_sync_projection_lag_events", {
  description: "Events behind the head of the log"
})

/** Time to apply one batch and move the checkpoint, tagged by `projection`. */
export const applyDuration = Metric.timerWithBoundaries(
  "stripe_sync_apply_milliseconds",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 }).values,
  "Time to apply one batch of events and move the checkpoint"
)

/** Time to append one batch, tagged by `source`. */
export const appendDuration = Metric.timerWithBoundaries(
  "stripe_sync_append_milliseconds",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 14 }).values,
  "Time to append one batch of events with its cursor"
)
