/**
 * A stateful local Stripe API over HTTP for tests, demos and your own test suites.
 *
 * ```ts
 * const emulator = await startEmulator({ seed: "demo", scale: 1 })
 * const stripe = new Stripe("sk_test_123", { host: "127.0.0.1", port: emulator.port, protocol: "http" })
 * // … then: await emulator.stop()
 * ```
 *
 * or, scoped, from Effect: `Layer.provide(Emulator.layer({ seed: "demo" }))` and `yield* Emulator.Emulator`.
 */

import { Context, Effect, Layer, type Scope } from "effect"
import { registerControl } from "./internal/control.js"
import { type CoreOptions, EmulatorCore } from "./internal/core.js"
import { type FaultOptions, updateFaults } from "./internal/faults.js"
import { plannedCounts } from "./internal/generate.js"
import * as Ops from "./internal/operations.js"
import { registerFallbacks, registerResources } from "./internal/resources.js"
import { registerSigma, type SigmaOptions, sigmaRows } from "./internal/sigma.js"
import type { WebhookDelivery, WebhookOptions } from "./internal/webhooks.js"
import type { Router } from "./Router.js"
import type { Account, StripeObject } from "./Store.js"

export { DEFAULT_API_VERSION } from "./internal/core.js"
export type { FaultOptions, RateLimitOptions, ScriptedFault } from "./internal/faults.js"
export type { SigmaOptions } from "./internal/sigma.js"
export type { WebhookDelivery, WebhookOptions } from "./internal/webhooks.js"
export { signPayload } from "./internal/webhooks.js"

/** The emulator's state, for extensions (route modules) and the change driver. */
export type EmulatorState = EmulatorCore

/** A module that adds routes (e.g. the Sigma APIs); it may keep the state to read accounts' objects. */
export type Extension = (router: Router, state: EmulatorState) => void

export interface EmulatorOptions {
  /** Port on loopback; 0 (default) picks a free one. */
  readonly port?: number
  /** Interface to bind (default 127.0.0.1). */
  readonly host?: string
  /** Seed of every generated id and value (default "stripe-sync"): the same seed gives the same account. */
  readonly seed?: string | number
  /** Size of the platform account: about 4,300 objects per unit (0 = almost empty). Default 1. */
  readonly scale?: number
  /** Number of Connect accounts, each with its own generated state. Default 0. */
  readonly connectedAccounts?: number
  /** Size of each connected account (default: `scale`). */
  readonly connectedScale?: number
  /** Generate objects at all (default true); false starts with empty accounts. */
  readonly generate?: boolean
  /** Milliseconds since the epoch (default Date.now): Stripe's `created` and event times come from it. */
  readonly clock?: () => number
  /** Unix seconds at which the generated history ends (default: the clock at start). Fix it for identical `created` across runs. */
  readonly epoch?: number
  /** `Stripe-Version` answered when the request has none (default the SDK's pinned version). */
  readonly apiVersion?: string
  /**
   * Restricted keys accepted, with their permissions: `"<resource>:read"` or `"<resource>:write"`, where
   * resource is the first path segment after /v1 (`customers`, `invoices`, `checkout`, …) or `*`.
   */
  readonly restrictedKeys?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly faults?: FaultOptions
  readonly webhooks?: WebhookOptions
  /** Route modules, added after the built-in resources (which win on the same method and path) and before the empty-list answers of other SDK list endpoints (which they can replace). */
  readonly extensions?: ReadonlyArray<Extension>
  /** Sigma (the Queries API and the older query runs): on by default, with no refresh lag. */
  readonly sigma?: SigmaOptions
}

export interface EmulatorHandle {
  /** Base URL, e.g. `http://127.0.0.1:12111`. */
  readonly url: string
  readonly host: string
  readonly port: number
  /** The platform account id. */
  readonly accountId: string
  /** Connected account ids, in creation order. */
  readonly connectedAccountIds: ReadonlyArray<string>
  readonly state: EmulatorState
  /** Every object of a type as it is now (live newest first, then deleted ones with `deleted: true`). */
  truth(type: string, account?: string): Array<StripeObject>
  /** The rows of a Sigma table as Sigma holds them now (created up to now minus the refresh lag). */
  sigmaTruth(table: string, account?: string): Array<Record<string, unknown>>
  /** The account's state (platform by default). */
  account(id?: string): Account
  /** Webhook delivery attempts recorded so far. */
  deliveries(): ReadonlyArray<WebhookDelivery>
  /** Changes the fault knobs at run time (as `POST /_emulator/faults`). */
  setFaults(faults: FaultOptions & { readonly reset?: boolean }): void
  /** Requests served so far by route pattern and status. */
  stats(): { requests: number; byPath: Record<string, Record<string, number>> }
  /** Stops the server and pending webhook deliveries. */
  stop(): Promise<void>
}

/** Approximate object counts of an account at a scale (the generator's targets; actual counts vary with the seed). */
export const sizeOf = (scale: number) => ({
  ...plannedCounts(scale),
  approximateObjects: Math.round(4300 * scale)
})

/** Builds the state without listening (tests of extensions, benchmarks of start-up). */
export const makeState = (options: EmulatorOptions = {}): EmulatorState => {
  const core = new EmulatorCore(options as CoreOptions)
  registerControl(core.router, core)
  registerResources(core.router, core)
  registerSigma(core.router, core, options.sigma)
  for (const ext of options.extensions ?? []) ext(core.router, core)
  registerFallbacks(core.router)
  return core
}

export const startEmulator = async (options: EmulatorOptions = {}): Promise<EmulatorHandle> => {
  const core = makeState(options)
  const url = await core.listen()
  const u = new URL(url)
  return {
    url,
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: core.port,
    accountId: core.platform.id,
    connectedAccountIds: [...core.accounts.values()].filter((a) => a.connected).map((a) => a.id),
    state: core,
    truth: (type, account) => accountOf(core, account).truth(type),
    sigmaTruth: (table, account) =>
      sigmaRows(accountOf(core, account), table, core.now() - (options.sigma?.lagSeconds ?? 0)) ?? [],
    account: (id) => accountOf(core, id),
    deliveries: () => core.webhooks.records,
    setFaults: (f) => updateFaults(core.faults, f),
    stats: () => core.stats,
    stop: () => core.close()
  }
}

const accountOf = (core: EmulatorCore, id: string | undefined): Account => {
  if (id === undefined) return core.platform
  const a = core.account(id)
  if (a === undefined) throw new Error(`no account ${id}`)
  return a
}

/** The running emulator, as a service. */
export class Emulator extends Context.Tag("@stripe-sync/stripe-emulator/Emulator")<
  Emulator,
  EmulatorHandle
>() {}

/** Starts the emulator in a scope; it stops when the scope closes. */
export const make = (options: EmulatorOptions = {}): Effect.Effect<EmulatorHandle, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startEmulator(options),
      catch: (e) => (e instanceof Error ? e : new Error(String(e)))
    }),
    (h) => Effect.promise(() => h.stop())
  )

/** A scoped layer providing {@link Emulator}. */
export const layer = (options: EmulatorOptions = {}): Layer.Layer<Emulator, Error> =>
  Layer.scoped(Emulator, make(options))

/** Stripe's state-machine changes, for drivers and tests (`payInvoice`, `cancelSubscription`, `refundCharge`, …). */
export const operations = Ops
