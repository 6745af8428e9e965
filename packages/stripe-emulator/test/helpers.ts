import Stripe from "stripe"
import type { EmulatorHandle } from "../src/Emulator.js"

export const client = (
  emulator: EmulatorHandle,
  key = "sk_test_emulator",
  options: { maxNetworkRetries?: number; stripeAccount?: string } = {}
): Stripe =>
  new Stripe(key, {
    host: emulator.host,
    port: emulator.port,
    protocol: "http",
    maxNetworkRetries: options.maxNetworkRetries ?? 0,
    ...(options.stripeAccount === undefined ? {} : { stripeAccount: options.stripeAccount })
  })

/** Polls `f` until it returns a value other than undefined, or fails after `ms`. */
export const eventually = async <A>(f: () => A | undefined, ms = 5000, what = "condition"): Promise<A> => {
  const deadline = Date.now() + ms
  for (;;) {
    const v = f()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
