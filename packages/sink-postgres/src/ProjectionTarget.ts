/**
 * The schema a Postgres projection writes to: its live schema normally, a shadow schema while it is
 * rebuilt. A projection builds every table name from it (`sql(target.schema)` or a quoted
 * identifier), in its migrations and in `apply`.
 *
 * @since 0.1.0
 */
import { Context } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export class ProjectionTarget extends Context.Tag("@stripe-sync/sink-postgres/ProjectionTarget")<
  ProjectionTarget,
  { readonly schema: string }
>() {}
