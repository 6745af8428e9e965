/** `/_emulator/*`: stats, truth, faults and webhook deliveries for tests (no API key needed). */
import { invalidRequest, type RequestContext, type Router } from "../Router.js"
import type { Account } from "../Store.js"
import type { EmulatorCore } from "./core.js"
import { type FaultOptions, updateFaults } from "./faults.js"

export const registerControl = (router: Router, core: EmulatorCore): void => {
  const open = { auth: false }
  const accountOf = (ctx: RequestContext): Account => {
    const h = ctx.headers["stripe-account"]
    const id =
      typeof h === "string" && h !== ""
        ? h
        : typeof ctx.input.account === "string"
          ? ctx.input.account
          : undefined
    if (id === undefined) return core.platform
    const a = core.account(id)
    if (a === undefined) throw invalidRequest(`No such account: '${id}'`, "account", "resource_missing")
    return a
  }
  router.get("/_emulator/health", () => ({ ok: true }), open)
  router.get(
    "/_emulator/accounts",
    () => ({
      platform: core.platform.id,
      connected: [...core.accounts.values()].filter((a) => a.connected).map((a) => a.id),
      objects: Object.fromEntries([...core.accounts.values()].map((a) => [a.id, a.objectCount()]))
    }),
    open
  )
  router.get(
    "/_emulator/stats",
    () => {
      const cpu = process.cpuUsage()
      return { ...core.stats, processCpuMs: (cpu.user + cpu.system) / 1000 }
    },
    open
  )
  router.post(
    "/_emulator/stats/reset",
    () => {
      core.stats.requests = 0
      core.stats.byPath = {}
      return { ok: true }
    },
    open
  )
  router.get(
    "/_emulator/truth/:type",
    (ctx) => {
      const account = accountOf(ctx)
      const data = account.truth(ctx.params.type!)
      return { object: "list", account: account.id, type: ctx.params.type, data }
    },
    open
  )
  router.get("/_emulator/faults", () => core.faults, open)
  router.post(
    "/_emulator/faults",
    (ctx) => {
      updateFaults(core.faults, normaliseFaults(ctx.input))
      return core.faults
    },
    open
  )
  router.get(
    "/_emulator/webhook_deliveries",
    (ctx) => {
      const ep = ctx.input.endpoint
      const ev = ctx.input.event
      const data = core.webhooks.records.filter(
        (d) => (ep === undefined || d.endpointId === ep) && (ev === undefined || d.eventId === ev)
      )
      return { object: "list", data, pending: core.webhooks.pending }
    },
    open
  )
}

/** Form bodies carry strings: turn numeric strings of the fault knobs into numbers. */
const normaliseFaults = (input: Record<string, unknown>): FaultOptions & { reset?: boolean } => {
  const num = (v: unknown): unknown =>
    typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)
      ? Number(v)
      : typeof v === "object" && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, num(x)]))
        : Array.isArray(v)
          ? v.map(num)
          : v === "true"
            ? true
            : v === "false"
              ? false
              : v
  const out = num(input) as FaultOptions & { reset?: boolean; script?: unknown }
  if (out.script !== undefined && !Array.isArray(out.script))
    return { ...out, script: Object.values(out.script as object) } as FaultOptions
  return out
}
