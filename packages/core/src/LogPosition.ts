/**
 * Positions in the log, and projection checkpoints. The log's order is `(txid, position)`; a
 * checkpoint says every event at or before it has been applied.
 *
 * @since 0.1.0
 */
import type { Order } from "effect"

/** The log's order of a stored event: the appending transaction's id, then the identity position. */
export interface LogPosition {
  readonly txid: bigint
  readonly position: bigint
}

/** Before the first event. */
export const zero: LogPosition = { txid: 0n, position: 0n }

/** The largest position a bigint column holds. */
export const maxPosition = 9223372036854775807n

export const make = (txid: bigint, position: bigint): LogPosition => ({ txid, position })

export const order: Order.Order<LogPosition> = (a, b) =>
  a.txid < b.txid ? -1 : a.txid > b.txid ? 1 : a.position < b.position ? -1 : a.position > b.position ? 1 : 0

export const isAfter = (a: LogPosition, b: LogPosition): boolean => order(a, b) > 0

export const equals = (a: LogPosition, b: LogPosition): boolean => order(a, b) === 0

export const max = (a: LogPosition, b: LogPosition): LogPosition => (order(a, b) >= 0 ? a : b)

/** `"txid:position"`, for logs, JSON and status output. */
export const format = (p: LogPosition): string => `${p.txid}:${p.position}`

export const parse = (text: string): LogPosition | undefined => {
  const m = /^(\d+):(\d+)$/.exec(text.trim())
  return m ? { txid: BigInt(m[1]!), position: BigInt(m[2]!) } : undefined
}
