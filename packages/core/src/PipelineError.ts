/**
 * The typed errors of the pipeline. Every error says what failed and, where a person can act on it,
 * what to do.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** An event failed validation at the schema boundary; nothing of its batch was written. */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", {
  /** Index of the event in its batch. */
  index: Schema.Number,
  eventId: Schema.optional(Schema.String),
  /** Dotted path of the offending field, e.g. `versionTs` or `data`. */
  field: Schema.String,
  message: Schema.String
}) {}

/** The event log could not be read or written (e.g. the database is down). Retryable. */
export class EventLogError extends Schema.TaggedError<EventLogError>()("EventLogError", {
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A checkpoint, cursor or queue store failed. Retryable. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  store: Schema.String,
  operation: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** Another runner advanced the checkpoint first: this batch must not be applied twice. */
export class CheckpointConflict extends Schema.TaggedError<CheckpointConflict>()("CheckpointConflict", {
  projection: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {}

/** A source failed to read. `retryable` tells the runner whether to try again. */
export class SourceError extends Schema.TaggedError<SourceError>()("SourceError", {
  source: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A projection failed to apply a batch; its transaction is rolled back and the checkpoint stays. */
export class ProjectionError extends Schema.TaggedError<ProjectionError>()("ProjectionError", {
  projection: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** The configuration is wrong; the message says which setting and how to fix it. */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()("ConfigurationError", {
  setting: Schema.String,
  message: Schema.String
}) {}

export type PipelineError =
  | InvalidEvent
  | EventLogError
  | StoreError
  | CheckpointConflict
  | SourceError
  | ProjectionError
  | ConfigurationError
