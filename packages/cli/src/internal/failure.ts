import { Cause, Option } from "effect"

const messageOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message !== ""
    ? u.message
    : undefined

/**
 * What a person reads when a command fails: `error: <message>` for a failure (with its cause's
 * message when it has one), the full trace for a defect (a bug), nothing for the usage errors that
 * `@effect/cli` has printed already.
 */
export const describeFailure = (cause: Cause.Cause<unknown>): string | undefined => {
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return Cause.pretty(cause)
  const error = failure.value
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : undefined
  if (
    tag !== undefined &&
    /ValidationError|MissingValue|InvalidValue|CommandMismatch|HelpRequested/.test(tag)
  ) {
    return undefined
  }
  const message = messageOf(error) ?? String(error)
  const inner = messageOf(
    typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
  )
  if (tag === "SqlError") {
    return `error: ${message}${inner ? `: ${inner}` : ""} (check --database-url / DATABASE_URL, and that the server is up)`
  }
  return `error: ${message}${inner && !message.includes(inner) ? ` (${inner})` : ""}`
}
