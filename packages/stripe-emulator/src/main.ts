/**
 * Runs the emulator until SIGINT/SIGTERM and prints its base URL.
 *
 *   tsx packages/stripe-emulator/src/main.ts --port 12111 --seed demo --scale 1 --connected-accounts 2 --latency 20
 */
import { parseArgs } from "node:util"
import { startEmulator } from "./Emulator.js"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "12111" },
    host: { type: "string", default: "127.0.0.1" },
    seed: { type: "string", default: "stripe-sync" },
    scale: { type: "string", default: "1" },
    "connected-accounts": { type: "string", default: "0" },
    latency: { type: "string", default: "0" },
    "error-rate": { type: "string", default: "0" },
    "rate-limit": { type: "string" },
    epoch: { type: "string" }
  }
})

const num = (name: string, v: string | undefined): number => {
  const n = Number(v)
  if (v === undefined || Number.isNaN(n)) {
    process.stderr.write(`invalid --${name}: ${String(v)}\n`)
    process.exit(2)
  }
  return n
}

const started = Date.now()
const emulator = await startEmulator({
  port: num("port", values.port),
  host: values.host!,
  seed: values.seed!,
  scale: num("scale", values.scale),
  connectedAccounts: num("connected-accounts", values["connected-accounts"]),
  ...(values.epoch === undefined ? {} : { epoch: num("epoch", values.epoch) }),
  faults: {
    latencyMs: num("latency", values.latency),
    errorRate: num("error-rate", values["error-rate"]),
    ...(values["rate-limit"] === undefined
      ? {}
      : {
          rateLimit: {
            perSecond: num("rate-limit", values["rate-limit"]),
            perEndpointPerSecond: num("rate-limit", values["rate-limit"])
          }
        })
  }
})
const objects = emulator.account().objectCount()
process.stdout.write(
  `Stripe emulator listening on ${emulator.url} (account ${emulator.accountId}, ${objects} objects, ${emulator.connectedAccountIds.length} connected accounts, ready in ${Date.now() - started} ms)\n`
)
const shutdown = () => {
  void emulator.stop().then(() => process.exit(0))
}
process.once("SIGINT", shutdown)
process.once("SIGTERM", shutdown)
