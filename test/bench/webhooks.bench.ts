/**
 * `pnpm bench:webhooks [--seconds 60] [--rates 1000,2000,3000,4000,5000] [--latency-rate 1000] [--servers 1] [--semi-space 64]`
 *
 * `stripe-sync serve` runs in its own process (webhook server + the stripe tables projection) on an
 * embedded PostgreSQL in a temporary directory; this process is an open-loop load generator: signed
 * `customer.created` events over loopback HTTP (keep-alive) at a fixed rate, whatever the answers'
 * latency (a request's latency counts from the moment it was due, so queueing in the client counts).
 *
 * 1. latency: at `--latency-rate` events/s for the window: p50/p99 time to acknowledge, and p50/p99
 *    from sending to the row in `stripe.customers` (a sample of events polled every 20 ms, so ±20 ms).
 * 2. throughput: each rate of `--rates` for the window, in order, until one is not sustained:
 *    sustained = every event answered 200 and stored in the log, acknowledgements keeping up (all
 *    answered within 1 s of the window's end) and the projection caught up within 10 s after it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createHmac } from "node:crypto"
import * as fs from "node:fs"
import * as Http from "node:http"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import * as EmbeddedDatabase from "../../packages/cli/src/EmbeddedDatabase.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    rates: { type: "string", default: "1000,2000,3000,4000,5000,6000" },
    "latency-rate": { type: "string", default: "1000" },
    // V8's young generation of the server process, in MB (0: node's default). A webhook server
    // allocates a lot of short-lived objects per request; a larger nursery means fewer scavenges.
    "semi-space": { type: "string", default: "64" },
    // Webhook server processes, requests spread round robin (the projection runs in one of them).
    servers: { type: "string", default: "1" },
    only: { type: "string" }
  }
})
const windowSeconds = Number(values.seconds)
const semiSpace = Number(values["semi-space"])
const serverCount = Math.max(1, Number(values.servers))
const secret = "whsec_bench_secret"
const account = "acct_bench"

const startServer = (databaseUrl: string): Promise<{ readonly url: string; readonly child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    // node itself (not the tsx wrapper): its pid is the server's, for its CPU time.
    const child = spawn(
      process.execPath,
      [
        ...(semiSpace > 0 ? [`--max-semi-space-size=${semiSpace}`] : []),
        "--import",
        "tsx",
        path.join(root, "packages/cli/src/bin.ts"),
        "serve",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--platform-account",
        account,
        "--webhook-secret",
        secret,
        "--log-level",
        "warning"
      ],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, DATABASE_URL: databaseUrl } }
    )
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const m = /listening on (http:\/\/[^\s/]+)/.exec(out)
      if (m) resolve({ url: m[1]!, child })
    })
    child.on("exit", (code) => reject(new Error(`serve exited (${code}): ${out}`)))
  })

let seq = 0
const customerEvent = (run: string, now: number) => {
  const n = ++seq
  const id = `cus_${run}_${n}`
  return {
    id,
    body: JSON.stringify({
      id: `evt_${run}_${n}`,
      object: "event",
      api_version: "2026-10-28.endive",
      created: now,
      livemode: false,
      pending_webhooks: 1,
      request: { id: `req_${run}_${n}`, idempotency_key: null },
      type: "customer.created",
      data: {
        object: {
          id,
          object: "customer",
          address: null,
          balance: 0,
          created: now,
          currency: null,
          default_source: null,
          delinquent: false,
          description: `Bench customer ${n}`,
          discount: null,
          email: `bench.${n}@example.com`,
          invoice_prefix: `B${n.toString(16).toUpperCase()}`,
          invoice_settings: {
            custom_fields: null,
            default_payment_method: null,
            footer: null,
            rendering_options: null
          },
          livemode: false,
          metadata: { bench: run, order: String(n) },
          name: `Customer ${n}`,
          next_invoice_sequence: 1,
          phone: null,
          preferred_locales: [],
          shipping: null,
          tax_exempt: "none",
          test_clock: null
        }
      }
    })
  }
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

interface StepResult {
  readonly rate: number
  readonly sent: number
  readonly ok: number
  readonly failed: number
  readonly statuses: Record<string, number>
  readonly ackMs: ReadonlyArray<number>
  readonly lastAckAfterWindowMs: number
  readonly rowMs: ReadonlyArray<number>
  readonly run: string
  readonly ids: ReadonlyArray<string>
}

/** Sends `rate` events/s for the window, open loop; samples rows in the table when `sampleEvery` > 0. */
const step = (
  baseUrls: ReadonlyArray<string>,
  rate: number,
  seconds: number,
  sampleEvery: number,
  rowSeen: (ids: ReadonlyArray<string>) => Promise<ReadonlyArray<string>>
): Promise<StepResult> =>
  new Promise((resolve) => {
    const urls = baseUrls.map((b) => new URL(`${b}/webhooks`))
    const agent = new Http.Agent({ keepAlive: true, maxSockets: 128 })
    const run = `b${Date.now().toString(36)}`
    const total = Math.round(rate * seconds)
    const ackMs: Array<number> = []
    const rowMs: Array<number> = []
    const statuses: Record<string, number> = {}
    const ids: Array<string> = []
    const pendingRows = new Map<string, number>()
    let sent = 0
    let done = 0
    let ok = 0
    let lastAck = 0
    const start = performance.now()
    const windowEnd = start + seconds * 1000
    let polling = false
    const poller =
      sampleEvery > 0
        ? setInterval(() => {
            if (polling || pendingRows.size === 0) return
            polling = true
            const batch = [...pendingRows.keys()]
            void rowSeen(batch).then(
              (seen) => {
                const t = performance.now()
                for (const id of seen) {
                  const due = pendingRows.get(id)
                  if (due !== undefined) rowMs.push(t - due)
                  pendingRows.delete(id)
                }
                polling = false
                maybeFinish()
              },
              () => {
                polling = false
              }
            )
          }, 20)
        : undefined
    const maybeFinish = () => {
      if (done < total || pendingRows.size > 0) return
      if (poller !== undefined) clearInterval(poller)
      agent.destroy()
      ackMs.sort((a, b) => a - b)
      rowMs.sort((a, b) => a - b)
      resolve({
        rate,
        sent,
        ok,
        failed: total - ok,
        statuses,
        ackMs,
        lastAckAfterWindowMs: lastAck - windowEnd,
        rowMs,
        run,
        ids
      })
    }
    const send = (k: number) => {
      const due = start + (k * 1000) / rate
      const nowSeconds = Math.floor(Date.now() / 1000)
      const event = customerEvent(run, nowSeconds)
      ids.push(event.id)
      const signature = `t=${nowSeconds},v1=${createHmac("sha256", secret).update(`${nowSeconds}.${event.body}`).digest("hex")}`
      // Round robin over the servers, as a load balancer would.
      const url = urls[k % urls.length]!
      const req = Http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          agent,
          headers: {
            "content-type": "application/json; charset=utf-8",
            "content-length": Buffer.byteLength(event.body),
            "stripe-signature": signature
          }
        },
        (res) => {
          res.resume()
          res.on("end", () => {
            const t = performance.now()
            const status = String(res.statusCode)
            statuses[status] = (statuses[status] ?? 0) + 1
            if (res.statusCode === 200) {
              ok++
              ackMs.push(t - due)
              if (sampleEvery > 0 && k % sampleEvery === 0) pendingRows.set(event.id, due)
            }
            lastAck = Math.max(lastAck, t)
            done++
            maybeFinish()
          })
        }
      )
      req.on("error", (e) => {
        statuses[`error ${e.message}`] = (statuses[`error ${e.message}`] ?? 0) + 1
        lastAck = Math.max(lastAck, performance.now())
        done++
        maybeFinish()
      })
      req.end(event.body)
      sent++
    }
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
      while (sent < due) send(sent)
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })

/** CPU seconds (user + system) a process has used so far (Linux; 0 elsewhere). */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined || process.platform !== "linux") return 0
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

const loadAverage = () =>
  process.platform === "linux" ? fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3) : []

const fmt = (ms: number) => (Number.isNaN(ms) ? "n/a" : `${ms.toFixed(1)} ms`)

const program = Effect.gen(function* () {
  const tmp = fs.mkdtempSync(path.join("/tmp", "stripe-sync-bench-webhooks-"))
  fs.chmodSync(tmp, 0o755)
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(tmp, { recursive: true, force: true })))
  const db = yield* EmbeddedDatabase.start({ dataDir: path.join(tmp, "pg", "data") })
  // Several servers share the log (stateless behind a load balancer); the projection runs in one of
  // them at a time (its advisory lock), the others' runners wait.
  const servers = yield* Effect.forEach(
    Array.from({ length: serverCount }, (_, i) => i),
    () =>
      Effect.acquireRelease(
        Effect.promise(() => startServer(Redacted.value(db.url))),
        (s) =>
          Effect.async<void>((resume) => {
            s.child.once("exit", () => resume(Effect.void))
            s.child.kill("SIGTERM")
          })
      ),
    { concurrency: "unbounded" }
  )
  const urls = servers.map((s) => s.url)
  /** CPU seconds of the server processes (webhooks + projection), not Postgres' nor this generator's. */
  const serverCpu = () => servers.reduce((sum, s) => sum + cpuSeconds(s.child.pid), 0)
  const perEvent = (seconds: number, events: number) => `${Math.round((seconds * 1e6) / events)} µs/event`
  const sql = Context.get(
    yield* Layer.build(PgClient.layer({ url: db.url, maxConnections: 2 })),
    PgClient.PgClient
  )
  const rowSeen = (ids: ReadonlyArray<string>) =>
    Effect.runPromise(
      Effect.map(sql<{ id: string }>`SELECT id FROM stripe.customers WHERE id = ANY(${ids})`, (rows) =>
        rows.map((r) => r.id)
      ).pipe(Effect.orDie)
    )
  const stored = (run: string) =>
    Effect.map(
      sql<{
        n: string
      }>`SELECT count(*)::text AS n FROM stripe._events WHERE event_id LIKE ${`evt_${run}_%`}`,
      (r) => Number(r[0]?.n ?? 0)
    )
  const rows = (run: string) =>
    Effect.map(
      sql<{ n: string }>`SELECT count(*)::text AS n FROM stripe.customers WHERE id LIKE ${`cus_${run}_%`}`,
      (r) => Number(r[0]?.n ?? 0)
    )
  const caughtUp = (run: string, expected: number, withinMs: number) =>
    Effect.gen(function* () {
      const deadline = Date.now() + withinMs
      while (Date.now() < deadline) {
        if ((yield* rows(run)) >= expected) return true
        yield* Effect.sleep("100 millis")
      }
      return (yield* rows(run)) >= expected
    })

  console.log(
    `${serverCount} webhook server process(es) ${urls.join(" ")} (projection running${semiSpace > 0 ? `, --max-semi-space-size=${semiSpace}` : ""}), window ${windowSeconds} s; load average ${loadAverage().join(" ")}`
  )
  // Warm-up: JIT, connection pools, plans; then the projection catches up before measuring.
  const warm = yield* Effect.promise(() => step(urls, 500, 5, 0, rowSeen))
  yield* caughtUp(warm.run, warm.sent, 30_000)

  if (values.only === undefined || values.only === "latency") {
    const rate = Number(values["latency-rate"])
    const cpu0 = serverCpu()
    const r = yield* Effect.promise(() => step(urls, rate, windowSeconds, 10, rowSeen))
    const n = yield* stored(r.run)
    yield* caughtUp(r.run, r.sent, 30_000)
    console.log(
      `latency @ ${rate}/s for ${windowSeconds} s: ${r.ok}/${r.sent} acknowledged (${JSON.stringify(r.statuses)}), ${n} stored; server CPU ${perEvent(serverCpu() - cpu0, r.sent)}, load ${loadAverage()[0]}; ack p50 ${fmt(percentile(r.ackMs, 50))}, p99 ${fmt(percentile(r.ackMs, 99))}, max ${fmt(r.ackMs[r.ackMs.length - 1] ?? Number.NaN)}; receipt→row (sample of ${r.rowMs.length}) p50 ${fmt(percentile(r.rowMs, 50))}, p99 ${fmt(percentile(r.rowMs, 99))}, max ${fmt(r.rowMs[r.rowMs.length - 1] ?? Number.NaN)}`
    )
  }

  if (values.only === undefined || values.only === "throughput") {
    let best = 0
    for (const rate of String(values.rates)
      .split(",")
      .map(Number)
      .filter((n) => n > 0)) {
      const cpu0 = serverCpu()
      const r = yield* Effect.promise(() => step(urls, rate, windowSeconds, 0, rowSeen))
      const n = yield* stored(r.run)
      const projected = yield* caughtUp(r.run, r.sent, 10_000)
      const cpu = perEvent(serverCpu() - cpu0, r.sent)
      const keptUp = r.lastAckAfterWindowMs <= 1000
      const sustained = r.ok === r.sent && n === r.sent && keptUp && projected
      console.log(
        `${rate}/s for ${windowSeconds} s: ${r.ok}/${r.sent} acknowledged (${JSON.stringify(r.statuses)}), ${n} stored, last answer ${fmt(r.lastAckAfterWindowMs)} after the window, projection ${projected ? "caught up" : "behind"} within 10 s; server CPU ${cpu}, load ${loadAverage()[0]}; ack p50 ${fmt(percentile(r.ackMs, 50))}, p99 ${fmt(percentile(r.ackMs, 99))} → ${sustained ? "sustained" : "NOT sustained"}`
      )
      if (!sustained) break
      best = rate
    }
    console.log(
      `highest rate sustained for ${windowSeconds} s: ${best > 0 ? `${best} events/s` : "none of the rates tried"}`
    )
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning))).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
