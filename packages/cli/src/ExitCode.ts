/**
 * Exit codes that mean something: 0 done; 1 failed; 2 bad usage or configuration (fix the command
 * or the environment and run again); 3 finished with some resources incomplete (run again to
 * resume); 130 interrupted.
 *
 * @since 0.1.0
 */
import { Cause, Exit } from "effect"

export const ok = 0
export const failed = 1
export const usage = 2
export const incomplete = 3
export const interrupted = 130

const usageTags = new Set([
  "ConfigurationError",
  "StripeAuthenticationError",
  "StripePermissionError",
  "EmbeddedDatabaseError",
  "QuitException"
])

export const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ok
  if (Cause.isInterruptedOnly(exit.cause)) return interrupted
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") {
    const error = failure.value as { readonly _tag?: string } | null
    const tag = typeof error === "object" && error !== null ? error._tag : undefined
    if (tag === "IncompleteSync") return incomplete
    if (
      tag !== undefined &&
      (usageTags.has(tag) || /ValidationError|MissingValue|InvalidValue|CommandMismatch/.test(tag))
    )
      return usage
  }
  return failed
}
