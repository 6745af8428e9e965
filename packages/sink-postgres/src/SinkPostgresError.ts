/**
 * The typed errors of the Postgres sink.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A migration of the sync schema or of a projection failed; its transaction was rolled back.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationError extends Schema.TaggedError<MigrationError>()("MigrationError", {
  /** The schema the migration targets. */
  schema: Schema.String,
  /** `sync` for the sink's own tables, or the projection's name. */
  owner: Schema.String,
  migration: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * A projection rebuild failed; the live tables and checkpoint are as they were.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReplayError extends Schema.TaggedError<ReplayError>()("ReplayError", {
  projection: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}
