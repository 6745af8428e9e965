import { EventLogError, StoreError } from "@stripe-sync/core/PipelineError"

const messageOf = (cause: unknown): string => {
  const inner = (cause as { cause?: { message?: unknown } })?.cause?.message
  const outer = (cause as { message?: unknown })?.message
  return typeof inner === "string" ? inner : typeof outer === "string" ? outer : String(cause)
}

export const logError = (operation: string) => (cause: unknown) =>
  new EventLogError({ operation, message: `event log ${operation} failed: ${messageOf(cause)}`, cause })

export const storeError = (store: string, operation: string) => (cause: unknown) =>
  new StoreError({ store, operation, message: `${store} ${operation} failed: ${messageOf(cause)}`, cause })
