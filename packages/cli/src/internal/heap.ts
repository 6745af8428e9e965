import * as v8 from "node:v8"

/**
 * How far V8 lets the old generation grow past what a full collection left alive before it
 * collects again: 100 %, a factor of 2 (V8's own factor goes up to 4 on a machine with memory to
 * spare).
 *
 * Why: a backfill keeps little alive (about 40 MB of heap after a full collection, run from the
 * bundle), but it reads pages faster than it can append them, so much of what it allocates lives
 * through a young collection or two and is promoted before it dies. With V8's own factor the old
 * generation swells between full collections: at 100,000 objects the bundled backfill peaked at
 * 279–305 MB of RSS, against 205–215 MB with 100 % (and 183–207 MB with 50 %, for about 7 % more
 * CPU in the sync process). Unlike a fixed `--max-old-space-size`, the limit still follows the live
 * heap (no out-of-memory risk as an account grows). The price is more full collections, each
 * marking the live heap: measured at 5–8 % more CPU per object than V8's own factor.
 */
export const heapGrowingPercent = 100

/**
 * Sets V8's old-generation growing factor for this process (read by V8 at each collection, so it
 * takes effect when set after start-up), unless node was started with one (`node
 * --heap-growing-percent=0` keeps V8's own).
 */
export const tuneHeap = (): void => {
  if (process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent\b/.test(flag))) return
  v8.setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`)
}
