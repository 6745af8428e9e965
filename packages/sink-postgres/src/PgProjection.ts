/**
 * Runs projections on Postgres: applies their migrations to their target schema, then folds the
 * log with core's runner, providing `ProjectionTarget` (and the `SqlClient` of the transaction
 * that also moves the checkpoint).
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql"
import * as Pipeline from "@stripe-sync/core/Pipeline"
import type { Projection } from "@stripe-sync/core/Projection"
import { Effect } from "effect"
import * as Migrations from "./Migrations.js"
import { PgSinkConfig } from "./PgSinkConfig.js"
import { ProjectionTarget } from "./ProjectionTarget.js"

/**
 * Where a projection's tables live: the sync schema unless `target` names another.
 *
 * @since 0.1.0
 * @category models
 */
export interface TargetOptions {
  /** The live schema of the projection's tables (default: the sync schema). */
  readonly target?: string
}

/**
 * Applies the projection's pending migrations to its live schema.
 *
 * @since 0.1.0
 * @category constructors
 */
export const migrate = <R>(projection: Projection<R>, options: TargetOptions = {}) =>
  Effect.flatMap(PgSinkConfig, ({ schema }) =>
    Migrations.runProjection(projection, { schema, target: options.target ?? schema })
  )

const provideTarget =
  (options: TargetOptions) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.flatMap(PgSinkConfig, ({ schema }) =>
      Effect.provideService(effect, ProjectionTarget, { schema: options.target ?? schema })
    )

/**
 * Migrates, then applies everything in the log up to its head; returns the number of events
 * applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const catchUp = <R>(
  projection: Projection<R>,
  options: Pipeline.ProjectionOptions & TargetOptions = {}
) =>
  Effect.zipRight(
    migrate(projection, options),
    Pipeline.catchUp(projection, options).pipe(provideTarget(options))
  )

/**
 * Migrates, then runs the projection until interrupted (one active runner per projection across
 * processes, through its advisory lock).
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <R>(projection: Projection<R>, options: Pipeline.ProjectionOptions & TargetOptions = {}) =>
  Effect.zipRight(
    migrate(projection, options),
    Pipeline.runProjection(projection, options).pipe(provideTarget(options))
  )

/**
 * The requirements of a Postgres projection's `apply` and migrations.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements = SqlClient.SqlClient | ProjectionTarget
