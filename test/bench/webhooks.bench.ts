/**
 * `pnpm bench:webhooks [--seconds 60] [--rates 1000,2000,3000,4000,5000] [--latency-rate 1000] [--servers 1] [--semi-space 64] [--node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"]`
 *
 * `stripe-sync serve` runs in its own process (the bundled command, rebuilt when a source changed:
 * packages/cli/scripts/bundle.mjs; the webhook server + the stripe tables projection) on an
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
import { createHmac, createSecretKey } from "node:crypto"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { bundleFile, ensureBundle } from "../../packages/cli/scripts/bundle.mjs"
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
    // Keep-alive connections of the generator per server (one request at a time on each).
    connections: { type: "string", default: "512" },
    // Extra node flags for the server process(es), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    "node-flags": { type: "string", default: "" },
    only: { type: "string" }
  }
})
const windowSeconds = Number(values.seconds)
const semiSpace = Number(values["semi-space"])
const serverCount = Math.max(1, Number(values.servers))
const maxConnections = Math.max(1, Number(values.connections))
const nodeFlags = String(values["node-flags"])
  .split(/\s+/)
  .filter((f) => f.length > 0)
const secret = "whsec_bench_secret"
const account = "acct_bench"

const startServer = (databaseUrl: string): Promise<{ readonly url: string; readonly child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    // the bundled command on node itself, as it ships: its pid is the server's, for its CPU time
    const child = spawn(
      process.execPath,
      [
        ...(semiSpace > 0 ? [`--max-semi-space-size=${semiSpace}`] : []),
        ...nodeFlags,
        bundleFile,
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
/** A `customer.created` event's JSON text, written out directly (no object to build and stringify). */
const customerEvent = (run: string, now: number) => {
  const n = ++seq
  const id = `cus_${run}_${n}`
  return {
    id,
    body: `{"id":"evt_${run}_${n}","object":"event","api_version":"2026-10-28.endive","created":${now},"livemode":false,"pending_webhooks":1,"request":{"id":"req_${run}_${n}","idempotency_key":null},"type":"customer.created","data":{"object":{"id":"${id}","object":"customer","address":null,"balance":0,"created":${now},"currency":null,"default_source":null,"delinquent":false,"description":"Bench customer ${n}","discount":null,"email":"bench.${n}@example.com","invoice_prefix":"B${n.toString(16).toUpperCase()}","invoice_settings":{"custom_fields":null,"default_payment_method":null,"footer":null,"rendering_options":null},"livemode":false,"metadata":{"bench":"${run}","order":"${n}"},"name":"Customer ${n}","next_invoice_sequence":1,"phone":null,"preferred_locales":[],"shipping":null,"tax_exempt":"none","test_clock":null}}}`
  }
}

/**
 * A minimal HTTP/1.1 keep-alive client for the generator (node:http's client costs ~100 µs of CPU
 * per request, as much as the server it measures on the same 2 cores): each request is one
 * prebuilt buffer written to an idle connection, one request at a time per connection, and the
 * answer's status line and Content-Length are all it parses. Connections are opened on demand up
 * to `maxConnections`; beyond that, requests wait in order (that wait counts in their latency).
 */
class LoadClient {
  private readonly idle: Array<Connection> = []
  private readonly queue: Array<{ readonly bytes: Buffer; readonly done: (status: number) => void }> = []
  private open = 0
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly maxConnections: number
  ) {}
  send(bytes: Buffer, done: (status: number) => void) {
    const conn = this.idle.pop() ?? (this.open < this.maxConnections ? this.connect() : undefined)
    if (conn === undefined) this.queue.push({ bytes, done })
    else conn.send(bytes, done)
  }
  private connect(): Connection {
    this.open++
    return new Connection(
      Net.connect({ host: this.host, port: this.port, noDelay: true }),
      (conn) => {
        const next = this.queue.shift()
        if (next !== undefined) conn.send(next.bytes, next.done)
        else this.idle.push(conn)
      },
      (conn) => {
        this.open--
        const i = this.idle.indexOf(conn)
        if (i >= 0) this.idle.splice(i, 1)
        // A request waiting for a connection gets a new one.
        const next = this.queue.shift()
        if (next !== undefined) this.send(next.bytes, next.done)
      }
    )
  }
  close() {
    for (const c of this.idle) c.socket.destroy()
  }
}

class Connection {
  private pending: ((status: number) => void) | undefined
  private buffered = ""
  constructor(
    readonly socket: Net.Socket,
    private readonly onIdle: (conn: Connection) => void,
    private readonly onClosed: (conn: Connection) => void
  ) {
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      this.buffered = this.buffered.length === 0 ? chunk : this.buffered + chunk
      const end = this.buffered.indexOf("\r\n\r\n")
      if (end < 0) return
      const m = /\r\ncontent-length: *(\d+)/i.exec(this.buffered.slice(0, end))
      const length = m === null ? 0 : Number(m[1])
      if (this.buffered.length < end + 4 + length) return
      const status = Number(this.buffered.slice(9, 12))
      const closing = /\r\nconnection: *close/i.test(this.buffered.slice(0, end))
      this.buffered = this.buffered.slice(end + 4 + length)
      const done = this.pending
      this.pending = undefined
      if (closing) socket.end()
      else this.onIdle(this)
      done?.(status)
    })
    const fail = () => {
      const done = this.pending
      this.pending = undefined
      this.onClosed(this)
      done?.(0)
    }
    socket.on("error", () => socket.destroy())
    socket.on("close", fail)
  }
  send(bytes: Buffer, done: (status: number) => void) {
    this.pending = done
    this.socket.write(bytes)
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
  /** p99 time to acknowledge of each 10 s of the window (due times), to tell a spread tail from a burst. */
  readonly ackP99By10s: ReadonlyArray<number>
  readonly lastAckAfterWindowMs: number
  readonly rowMs: ReadonlyArray<number>
  readonly run: string
  readonly ids: ReadonlyArray<string>
  /** CPU seconds (user, system) this generator process used during the step. */
  readonly generatorCpu: { readonly user: number; readonly system: number }
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
    const clients = baseUrls.map((b) => {
      const url = new URL(b)
      return new LoadClient(url.hostname, Number(url.port), maxConnections)
    })
    const run = `b${Date.now().toString(36)}`
    const total = Math.round(rate * seconds)
    const ackMs: Array<number> = []
    const ackBy10s: Array<Array<number>> = []
    const rowMs: Array<number> = []
    const statuses: Record<string, number> = {}
    const ids: Array<string> = []
    const pendingRows = new Map<string, number>()
    let sent = 0
    let done = 0
    let ok = 0
    let lastAck = 0
    const cpuStart = process.cpuUsage()
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
      for (const c of clients) c.close()
      const cpu = process.cpuUsage(cpuStart)
      ackMs.sort((a, b) => a - b)
      const ackP99By10s = Array.from(ackBy10s, (slice) =>
        slice === undefined
          ? Number.NaN
          : percentile(
              slice.sort((a, b) => a - b),
              99
            )
      )
      rowMs.sort((a, b) => a - b)
      resolve({
        rate,
        sent,
        ok,
        failed: total - ok,
        statuses,
        ackMs,
        ackP99By10s,
        lastAckAfterWindowMs: lastAck - windowEnd,
        rowMs,
        run,
        ids,
        generatorCpu: { user: cpu.user / 1e6, system: cpu.system / 1e6 }
      })
    }
    // One signing key per step (imported once), as the server does.
    const key = createSecretKey(Buffer.from(secret, "utf8"))
    const send = (k: number) => {
      const due = start + (k * 1000) / rate
      const nowSeconds = Math.floor(Date.now() / 1000)
      const event = customerEvent(run, nowSeconds)
      ids.push(event.id)
      const signature = createHmac("sha256", key).update(`${nowSeconds}.`).update(event.body).digest("hex")
      const body = Buffer.from(event.body, "utf8")
      // Round robin over the servers, as a load balancer would.
      const client = clients[k % clients.length]!
      const head = `POST /webhooks HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${body.length}\r\nStripe-Signature: t=${nowSeconds},v1=${signature}\r\n\r\n`
      client.send(Buffer.concat([Buffer.from(head, "latin1"), body]), (status) => {
        const t = performance.now()
        const label = status === 0 ? "error connection closed" : String(status)
        statuses[label] = (statuses[label] ?? 0) + 1
        if (status === 200) {
          ok++
          ackMs.push(t - due)
          const slice = Math.floor((due - start) / 10_000)
          if (ackBy10s[slice] === undefined) ackBy10s[slice] = []
          ackBy10s[slice]!.push(t - due)
          if (sampleEvery > 0 && k % sampleEvery === 0) pendingRows.set(event.id, due)
        }
        lastAck = Math.max(lastAck, t)
        done++
        maybeFinish()
      })
      sent++
    }
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
      while (sent < due) send(sent)
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })

/** CPU seconds (user, system) a process has used so far (Linux; 0 elsewhere). */
const cpuSeconds = (pid: number | undefined): { user: number; system: number } => {
  if (pid === undefined || process.platform !== "linux") return { user: 0, system: 0 }
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
  } catch {
    return { user: 0, system: 0 }
  }
}

/** CPU seconds of a PostgreSQL server: the postmaster, its live children and the children it reaped. */
const postgresCpu = (dataDir: string): number => {
  if (process.platform !== "linux") return 0
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0])
    const stat = (p: string) => fs.readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ")
    const own = stat(String(pid))
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const f = stat(entry)
        if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12])
      } catch {
        // exited meanwhile
      }
    }
    return ticks / 100
  } catch {
    return 0
  }
}

const loadAverage = () =>
  process.platform === "linux" ? fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3) : []

/** Sums and counts of the server's histograms that say where an event's time goes (from /metrics). */
const histograms = async (baseUrl: string) => {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const lines = text.split("\n")
  /** The series of `name` whose labels include `label` (`key="value"`, or "" for any). */
  const read = (name: string, label: string) => {
    const value = (suffix: string) => {
      const line = lines.find((l) => l.startsWith(`${name}_${suffix}`) && l.includes(label))
      return Number(line?.slice(line.lastIndexOf(" ") + 1) ?? 0)
    }
    return { sum: value("sum"), count: value("count") }
  }
  return {
    batch: read("stripe_sync_webhook_batch_size", ""),
    append: read("stripe_sync_append_milliseconds", 'source="webhook"'),
    apply: read("stripe_sync_apply_milliseconds", 'projection="stripe_tables"')
  }
}
type Histograms = Awaited<ReturnType<typeof histograms>>

/** "appends: <n> of <mean> events in <mean> ms; projection batches: <n> in <mean> ms" between two reads. */
const histogramLine = (a: Histograms, b: Histograms) => {
  const d = (x: { sum: number; count: number }, y: { sum: number; count: number }) => ({
    sum: y.sum - x.sum,
    count: y.count - x.count
  })
  const batch = d(a.batch, b.batch)
  const append = d(a.append, b.append)
  const apply = d(a.apply, b.apply)
  const mean = (x: { sum: number; count: number }) => (x.count > 0 ? (x.sum / x.count).toFixed(1) : "n/a")
  return `appends ${batch.count} of ${mean(batch)} events in ${mean(append)} ms; projection batches ${apply.count} in ${mean(apply)} ms`
}

const fmt = (ms: number) => (Number.isNaN(ms) ? "n/a" : `${ms.toFixed(1)} ms`)

const program = Effect.gen(function* () {
  const tmp = fs.mkdtempSync(path.join("/tmp", "stripe-sync-bench-webhooks-"))
  fs.chmodSync(tmp, 0o755)
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(tmp, { recursive: true, force: true })))
  const dataDir = path.join(tmp, "pg", "data")
  const db = yield* EmbeddedDatabase.start({ dataDir })
  yield* Effect.promise(() => ensureBundle())
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
  const serverCpu = () =>
    servers.reduce(
      (sum, s) => {
        const c = cpuSeconds(s.child.pid)
        return { user: sum.user + c.user, system: sum.system + c.system }
      },
      { user: 0, system: 0 }
    )
  const perEvent = (seconds: number, events: number) => `${Math.round((seconds * 1e6) / events)} µs/event`
  /** "<total> µs/event (<user> user + <system> sys)". */
  const split = (c: { readonly user: number; readonly system: number }, events: number) =>
    `${perEvent(c.user + c.system, events)} (${Math.round((c.user * 1e6) / events)} user + ${Math.round((c.system * 1e6) / events)} sys)`
  /** CPU per event of the server(s), PostgreSQL and this generator since `before`. */
  const cpuLine = (
    before: { readonly server: { readonly user: number; readonly system: number }; readonly pg: number },
    r: StepResult
  ) => {
    const now = serverCpu()
    return `CPU server ${split({ user: now.user - before.server.user, system: now.system - before.server.system }, r.sent)}, postgres ${perEvent(postgresCpu(dataDir) - before.pg, r.sent)}, generator ${split(r.generatorCpu, r.sent)}`
  }
  const cpuNow = () => ({ server: serverCpu(), pg: postgresCpu(dataDir) })
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
    const cpu0 = cpuNow()
    const h0 = yield* Effect.promise(() => histograms(urls[0]!))
    const r = yield* Effect.promise(() => step(urls, rate, windowSeconds, 10, rowSeen))
    const n = yield* stored(r.run)
    yield* caughtUp(r.run, r.sent, 30_000)
    const h1 = yield* Effect.promise(() => histograms(urls[0]!))
    console.log(
      `latency @ ${rate}/s for ${windowSeconds} s: ${r.ok}/${r.sent} acknowledged (${JSON.stringify(r.statuses)}), ${n} stored; ${cpuLine(cpu0, r)}, load ${loadAverage()[0]}; ack p50 ${fmt(percentile(r.ackMs, 50))}, p99 ${fmt(percentile(r.ackMs, 99))}, p99.9 ${fmt(percentile(r.ackMs, 99.9))}, max ${fmt(r.ackMs[r.ackMs.length - 1] ?? Number.NaN)} (p99 of each 10 s: ${r.ackP99By10s.map((x) => x.toFixed(0)).join(", ")} ms); receipt→row (sample of ${r.rowMs.length}) p50 ${fmt(percentile(r.rowMs, 50))}, p99 ${fmt(percentile(r.rowMs, 99))}, max ${fmt(r.rowMs[r.rowMs.length - 1] ?? Number.NaN)}; server 1: ${histogramLine(h0, h1)}`
    )
  }

  if (values.only === undefined || values.only === "throughput") {
    let best = 0
    for (const rate of String(values.rates)
      .split(",")
      .map(Number)
      .filter((n) => n > 0)) {
      const cpu0 = cpuNow()
      const h0 = yield* Effect.promise(() => histograms(urls[0]!))
      const r = yield* Effect.promise(() => step(urls, rate, windowSeconds, 0, rowSeen))
      const n = yield* stored(r.run)
      const projected = yield* caughtUp(r.run, r.sent, 10_000)
      const h1 = yield* Effect.promise(() => histograms(urls[0]!))
      const cpu = cpuLine(cpu0, r)
      const keptUp = r.lastAckAfterWindowMs <= 1000
      const sustained = r.ok === r.sent && n === r.sent && keptUp && projected
      console.log(
        `${rate}/s for ${windowSeconds} s: ${r.ok}/${r.sent} acknowledged (${JSON.stringify(r.statuses)}), ${n} stored, last answer ${fmt(r.lastAckAfterWindowMs)} after the window, projection ${projected ? "caught up" : "behind"} within 10 s; ${cpu}, load ${loadAverage()[0]}; ack p50 ${fmt(percentile(r.ackMs, 50))}, p99 ${fmt(percentile(r.ackMs, 99))}; server 1: ${histogramLine(h0, h1)} → ${sustained ? "sustained" : "NOT sustained"}`
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
