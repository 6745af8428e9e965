/**
 * Vitest global setup: the bundled stripe-sync command (`packages/cli/dist/stripe-sync.mjs`) is
 * built, when a source changed since it was last built, before any test starts it. The tests run the
 * command as it ships, on node alone (see packages/cli/scripts/bundle.mjs). Vitest runs this once per
 * project in the same process: the build happens once, the other projects wait for it.
 */
import { ensureBundle } from "../../packages/cli/scripts/bundle.mjs"

const key = Symbol.for("@stripe-sync/e2e/harness/bundle")
type GlobalWithBundle = typeof globalThis & { [key]?: Promise<string> }

export default async function setup(): Promise<void> {
  const g = globalThis as GlobalWithBundle
  g[key] ??= ensureBundle()
  await g[key]
}
