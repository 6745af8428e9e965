/**
 * The unit of work as a Postgres transaction (`sql.withTransaction`; nested units are savepoints).
 * Statements of the wrapped effect that use the same `SqlClient` run inside it.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import type { StoreError } from "@stripe-sync/core/PipelineError"
import { UnitOfWork } from "@stripe-sync/core/UnitOfWork"
import { Effect, Layer } from "effect"
import { storeError } from "./internal/errors.js"

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.map(SqlClient.SqlClient, (sql): UnitOfWork["Type"] => {
  const toStore = storeError("unit of work", "transaction")
  return {
    transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      sql
        .withTransaction(effect)
        .pipe(
          Effect.mapError((e) => (e instanceof SqlError ? toStore(e) : e) as E | StoreError)
        ) as Effect.Effect<A, E | StoreError, R>
  }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<UnitOfWork, never, SqlClient.SqlClient> = Layer.effect(UnitOfWork, make)
