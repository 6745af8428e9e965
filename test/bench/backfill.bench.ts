/**
 * `pnpm bench:backfill [--scale 23.3] [--small 2.33] [--only fast|command|budget|source] [--resources a,b]
 * [--trace] [--pg-processes]` (`--small 0` skips the small run; `--trace` prints the requests of each
 * second; `--pg-processes` prints the fast run's PostgreSQL CPU by process kind: backends,
 * autovacuum, checkpointer, WAL writer…, and, when the server preloads `pg_stat_statements`, its
 * statements by execution time).
 *
 * Every run executes this script bundled into one JavaScript file (`test/dist/backfill.bench.mjs`,
 * rebuilt when a source changed), in a process of its own: the sync runs as the `stripe-sync`
 * command runs, from its bundle (see packages/cli/scripts/bundle.mjs), not through tsx, whose
 * loader thread and kept sources would add about 100 MB to every figure of memory. To profile a
 * run, start the bundle with node flags, e.g. `node --cpu-prof --cpu-prof-dir=/tmp/prof
 * test/dist/backfill.bench.mjs --only fast --small 0 --scale 2.33` (`--in-process` runs the
 * TypeScript as started instead, e.g. under `node --import tsx`).
 *
 * 1. fast: the emulator (its own process) with no latency and no rate limit, an account of about
 *    100,000 objects in the emulator's usual mix: objects/s end to end (first request to the last
 *    row in the tables; start-up reported apart), requests/s, peak RSS of the sync process — at a
 *    small size and the full size, to show memory stays flat.
 * 2. budget: Stripe's test-mode limit (25 req/s) and 200 ms latency per request, about 100,000
 *    objects over large resources: the share of the request budget used (requests/s ÷ 25) and
 *    objects/s.
 *
 * 3. command: the `stripe-sync backfill` command itself, as users run it (bundled, its embedded
 *    PostgreSQL), on the fast emulator at both sizes: objects/s as the command reports them and its
 *    peak RSS.
 *
 * 4. source (only with `--only source`): the backfill source alone at `--scale`, its cursors in
 *    memory and its events dropped: the CPU the reading side costs per object and per request.
 *
 * Each scenario and size runs in a process of its own (peak RSS is that run's: the kernel's high
 * water mark, VmHWM) and starts its own embedded PostgreSQL in a temporary directory, removed
 * afterwards.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { SqlClient } from "@effect/sql"
import { CursorStore, Memory } from "@stripe-sync/core"
import { PgSink } from "@stripe-sync/sink-postgres"
import { Backfill, Catalog, StripeClient } from "@stripe-sync/source-stripe"
import { Effect, Layer, Logger, LogLevel, Redacted, Stream } from "effect"
import { ensureBundle } from "../../packages/cli/scripts/bundle.mjs"
import * as EmbeddedDatabase from "../../packages/cli/src/EmbeddedDatabase.js"
import { tuneHeap } from "../../packages/cli/src/internal/heap.js"
import * as Sync from "../../packages/cli/src/Sync.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const { values } = parseArgs({
  options: {
    scale: { type: "string", default: "23.3" },
    small: { type: "string", default: "2.33" },
    only: { type: "string" },
    seconds: { type: "string", default: "0" },
    /** Tables to backfill instead of the default set (comma-separated), e.g. for a profile. */
    resources: { type: "string" },
    /** Print the requests the emulator answered in each second of the run (to see the tail). */
    trace: { type: "boolean", default: false },
    /** Print the fast run's PostgreSQL CPU by process kind (and its statements, with pg_stat_statements). */
    "pg-processes": { type: "boolean", default: false },
    /** With `--only` and `--small 0`: run in this process as it was started (e.g. through tsx, to profile it). */
    "in-process": { type: "boolean", default: false }
  }
})

interface EmulatorProcess {
  readonly url: string
  readonly child: ChildProcess
  readonly startupMs: number
  readonly objects: number
}

const startEmulator = (args: ReadonlyArray<string>): Promise<EmulatorProcess> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(
      path.join(root, "node_modules/.bin/tsx"),
      [path.join(root, "packages/stripe-emulator/src/main.ts"), "--port", "0", "--seed", "bench", ...args],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const m = /listening on (http:\/\/[^\s]+) \(account [^,]+, (\d+) objects/.exec(out)
      if (m) resolve({ url: m[1]!, child, startupMs: Date.now() - started, objects: Number(m[2]) })
    })
    child.on("exit", (code) => reject(new Error(`emulator exited (${code}): ${out}`)))
  })

const stats = async (
  url: string
): Promise<{ requests: number; limited: number; byPath: Map<string, number> }> => {
  const r = await fetch(`${url}/_emulator/stats`)
  const body = (await r.json()) as { requests: number; byPath: Record<string, Record<string, number>> }
  let limited = 0
  const byPath = new Map<string, number>()
  for (const [p, statuses] of Object.entries(body.byPath)) {
    limited += statuses["429"] ?? 0
    byPath.set(
      p,
      Object.values(statuses).reduce((a, b) => a + b, 0)
    )
  }
  return { requests: body.requests, limited, byPath }
}

/**
 * The CPU seconds (user + system) of each process on the machine, with its parent and the CPU of
 * its children that have ended, from /proc (Linux; none elsewhere).
 */
const processes = (): Array<{ pid: number; ppid: number; cpu: number; reaped: number }> => {
  if (!fs.existsSync("/proc")) return []
  const out: Array<{ pid: number; ppid: number; cpu: number; reaped: number }> = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      // fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      out.push({
        pid: Number(entry),
        ppid: Number(f[1]),
        cpu: (Number(f[11]) + Number(f[12])) / 100,
        reaped: (Number(f[13]) + Number(f[14])) / 100
      })
    } catch {
      // the process ended meanwhile
    }
  }
  return out
}

/** CPU seconds of a process, its live children and its ended children (0 without /proc). */
const treeCpu = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  let total = 0
  for (const p of processes()) {
    // the root also counts its children that have ended (PostgreSQL backends that exited)
    if (p.pid === pid) total += p.cpu + p.reaped
    else if (p.ppid === pid) total += p.cpu
  }
  return total
}

const postmasterPid = (dataDir: string): number | undefined => {
  try {
    return Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0])
  } catch {
    return undefined
  }
}

/**
 * CPU seconds of a PostgreSQL server's processes by kind (the process title: `autovacuum worker`,
 * `checkpointer`, `walwriter`…; client backends as `backend`), sampled from /proc: a process that
 * ends between two samples loses its last interval, so sample often (autovacuum workers are short).
 */
const processKinds = (postmaster: number) => {
  const seen = new Map<number, { kind: string; first: number; last: number }>()
  const sample = () => {
    for (const p of processes()) {
      if (p.ppid !== postmaster) continue
      const known = seen.get(p.pid)
      if (known !== undefined) {
        known.last = p.cpu
        continue
      }
      let title = ""
      try {
        title = fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replace(/\0/g, " ").trim()
      } catch {
        continue // the process ended meanwhile
      }
      const m = /^postgres: (.*)$/.exec(title)
      const kind =
        m === null
          ? "other"
          : (/^(autovacuum|checkpointer|walwriter|background writer|io worker|logical replication|walsummarizer|startup|archiver)/.exec(
              m[1]!
            )?.[1] ?? "backend")
      seen.set(p.pid, { kind, first: p.cpu, last: p.cpu })
    }
  }
  sample()
  const timer = setInterval(sample, 100)
  return () => {
    clearInterval(timer)
    sample()
    const byKind = new Map<string, number>()
    for (const p of seen.values()) byKind.set(p.kind, (byKind.get(p.kind) ?? 0) + p.last - p.first)
    return [...byKind].sort((a, b) => b[1] - a[1])
  }
}

/** A process's peak RSS as the kernel counts it (VmHWM: every page, not a sample); undefined without /proc. */
const highWaterMark = (pid: number | "self"): number | undefined => {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return kb === null ? undefined : Number(kb[1]) * 1024
  } catch {
    return undefined // not Linux, or the process has ended
  }
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`

interface Figures {
  readonly objects: number
  readonly seconds: number
  readonly requests: number
  /** Requests the emulator refused with 429 (counted in `requests`). */
  readonly limited: number
  /** The endpoints asked most, with their request counts. */
  readonly topPaths: ReadonlyArray<readonly [string, number]>
  readonly peakRss: number
  /** RSS of the sync process when the backfill started. */
  readonly startRss: number
  /** The sync process's memory when the backfill ended: V8's heap, and what lives outside it. */
  readonly endMemory: NodeJS.MemoryUsage
  /** CPU seconds of the sync process (user + system) over the run. */
  readonly cpuSeconds: number
  /** CPU seconds of the emulator process and of PostgreSQL (postmaster and its backends) over the run. */
  readonly emulatorCpuSeconds: number
  readonly postgresCpuSeconds: number
  /** Bytes of WAL PostgreSQL wrote over the run (0 without PostgreSQL). */
  readonly walBytes: number
  readonly emulatorStartupMs: number
  readonly emulatorObjects: number
}

type Stats = Awaited<ReturnType<typeof stats>>

const figures = (
  emulator: EmulatorProcess,
  before: Stats,
  after: Stats,
  f: {
    objects: number
    seconds: number
    peakRss: number
    startRss: number
    cpu: NodeJS.CpuUsage
    emulatorCpu: number
    postgresCpu: number
    walBytes: number
  }
): Figures => ({
  objects: f.objects,
  seconds: f.seconds,
  requests: after.requests - before.requests,
  limited: after.limited - before.limited,
  topPaths: [...after.byPath]
    .map(([p, n]) => [p, n - (before.byPath.get(p) ?? 0)] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6),
  peakRss: f.peakRss,
  startRss: f.startRss,
  endMemory: process.memoryUsage(),
  cpuSeconds: (f.cpu.user + f.cpu.system) / 1e6,
  emulatorCpuSeconds: f.emulatorCpu,
  postgresCpuSeconds: f.postgresCpu,
  walBytes: f.walBytes,
  emulatorStartupMs: emulator.startupMs,
  emulatorObjects: emulator.objects
})

const run = async (options: {
  readonly emulatorArgs: ReadonlyArray<string>
  readonly resources: ReadonlyArray<Catalog.Resource>
  readonly rateLimit: number
  readonly endpointRateLimit: number
  readonly concurrency: number
  /** `source`: the backfill source alone, its cursors in memory, its events dropped (no Postgres). */
  readonly sourceOnly?: boolean
}): Promise<Figures> => {
  const tmp = fs.mkdtempSync(path.join("/tmp", "stripe-sync-bench-"))
  fs.chmodSync(tmp, 0o755)
  const emulator = await startEmulator(options.emulatorArgs)
  const perSecond: Array<string> = []
  let last: number | undefined
  const tracer = values.trace
    ? setInterval(() => {
        void stats(emulator.url).then((s) => {
          if (last !== undefined) perSecond.push(String(s.requests - last - 1))
          last = s.requests
        })
      }, 1000)
    : undefined
  let peakRss = 0
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
  }, 100)
  /** This process's peak RSS: the kernel's, else the sampled one (no /proc). */
  const peak = () => Math.max(peakRss, highWaterMark("self") ?? 0)
  try {
    return await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const client = StripeClient.layer({
            apiKey: Redacted.make("sk_test_bench"),
            apiBase: emulator.url,
            rateLimit: options.rateLimit,
            endpointRateLimit: options.endpointRateLimit,
            maxInFlight: 64
          })
          if (options.sourceOnly === true) {
            return yield* Effect.gen(function* () {
              const stripe = yield* StripeClient.StripeClient
              const accounts = yield* Backfill.accounts(stripe)
              const before = yield* Effect.promise(() => stats(emulator.url))
              const startRss = process.memoryUsage().rss
              peakRss = startRss
              const cpuBefore = process.cpuUsage()
              const emulatorBefore = treeCpu(emulator.child.pid)
              const started = Date.now()
              const store = yield* CursorStore.CursorStore
              let objects = 0
              yield* Backfill.make({
                list: Backfill.listWith(stripe),
                resources: options.resources,
                accounts,
                apiVersion: stripe.apiVersion,
                concurrency: options.concurrency
              }).read.pipe(
                Stream.runForEach((batch) => {
                  objects += batch.events.length
                  return store.put(batch.cursors)
                })
              )
              const seconds = (Date.now() - started) / 1000
              const after = yield* Effect.promise(() => stats(emulator.url))
              const cpu = process.cpuUsage(cpuBefore)
              return figures(emulator, before, after, {
                objects,
                seconds,
                peakRss: peak(),
                startRss,
                cpu,
                emulatorCpu: treeCpu(emulator.child.pid) - emulatorBefore,
                postgresCpu: 0,
                walBytes: 0
              })
            }).pipe(Effect.provide(Layer.mergeAll(client, Memory.layer)))
          }
          const db = yield* EmbeddedDatabase.start({ dataDir: path.join(tmp, "pg", "data") })
          const layer = Layer.mergeAll(client, PgSink.layerFromUrl({ url: db.url, maxConnections: 20 }))
          return yield* Effect.gen(function* () {
            const before = yield* Effect.promise(() => stats(emulator.url))
            const startRss = process.memoryUsage().rss
            peakRss = startRss
            const cpuBefore = process.cpuUsage()
            const emulatorBefore = treeCpu(emulator.child.pid)
            const postgresBefore = treeCpu(postmasterPid(db.dataDir))
            const sql = yield* SqlClient.SqlClient
            const statements =
              values["pg-processes"] &&
              (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_settings
                WHERE name = 'shared_preload_libraries' AND setting LIKE '%pg_stat_statements%'`)[0]!.n > 0
            if (statements) {
              yield* sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`
              yield* sql`SELECT pg_stat_statements_reset()`
            }
            const postmaster = postmasterPid(db.dataDir)
            const kinds =
              values["pg-processes"] && postmaster !== undefined ? processKinds(postmaster) : undefined
            const walBefore = (yield* sql<{ lsn: string }>`SELECT pg_current_wal_lsn()::text AS lsn`)[0]!.lsn
            const result = yield* Sync.backfill({
              resources: options.resources,
              concurrency: options.concurrency,
              progressInterval: "10 seconds",
              triggeredBy: "bench"
            })
            const after = yield* Effect.promise(() => stats(emulator.url))
            const cpu = process.cpuUsage(cpuBefore)
            const postgresCpu = treeCpu(postmasterPid(db.dataDir)) - postgresBefore
            const walBytes = Number(
              (yield* sql<{
                n: string
              }>`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ${walBefore}::pg_lsn)::text AS n`)[0]!.n
            )
            if (kinds !== undefined) {
              console.log(
                `  PostgreSQL CPU by process (${postgresCpu.toFixed(1)} s in all): ${kinds()
                  .map(([k, s]) => `${k} ${s.toFixed(2)} s`)
                  .join(", ")}`
              )
            }
            if (statements) {
              const rows = yield* sql<{
                ms: number
                calls: number
                rows: number
                wal: string
                query: string
              }>`
                SELECT round(total_exec_time)::int AS ms, calls::int, rows::int, wal_bytes::text AS wal,
                  left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 100) AS query
                FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`
              for (const r of rows) {
                console.log(
                  `    ${r.ms} ms, ${r.calls} calls, ${r.rows} rows, ${mb(Number(r.wal))} WAL: ${r.query}`
                )
              }
            }
            return figures(emulator, before, after, {
              objects: result.objects,
              seconds: result.seconds,
              peakRss: peak(),
              startRss,
              cpu,
              emulatorCpu: treeCpu(emulator.child.pid) - emulatorBefore,
              postgresCpu,
              walBytes
            })
          }).pipe(Effect.provide(layer))
        })
      ).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
    )
  } finally {
    if (tracer !== undefined) {
      clearInterval(tracer)
      console.log(`  requests per second (without the stats request): ${perSecond.join(" ")}`)
    }
    clearInterval(sampler)
    emulator.child.kill("SIGTERM")
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

const print = (label: string, f: Figures) => {
  console.log(
    `${label}: ${f.objects.toLocaleString("en-US")} objects in ${f.seconds.toFixed(1)} s = ${Math.round(f.objects / f.seconds).toLocaleString("en-US")} objects/s; ${f.requests.toLocaleString("en-US")} requests = ${(f.requests / f.seconds).toFixed(1)} req/s (${f.limited.toLocaleString("en-US")} answered 429); sync process CPU ${f.cpuSeconds.toFixed(1)} s (${Math.round(f.objects / f.cpuSeconds).toLocaleString("en-US")} objects per CPU second); peak RSS ${mb(f.peakRss)} (${mb(f.startRss)} at the start; emulator: ${f.emulatorObjects.toLocaleString("en-US")} objects, started in ${(f.emulatorStartupMs / 1000).toFixed(1)} s, not counted)`
  )
  const perObject = (seconds: number) => Math.round((seconds * 1e6) / Math.max(1, f.objects))
  console.log(
    `  CPU per object: sync ${perObject(f.cpuSeconds)} µs, emulator ${perObject(f.emulatorCpuSeconds)} µs, PostgreSQL ${perObject(f.postgresCpuSeconds)} µs; WAL ${mb(f.walBytes)} (${(f.walBytes / Math.max(1, f.objects) / 1024).toFixed(1)} KB per object)`
  )
  const m = f.endMemory
  console.log(
    `  memory at the end: RSS ${mb(m.rss)}, V8 heap ${mb(m.heapTotal)} (${mb(m.heapUsed)} used), outside it ${mb(m.external)} (array buffers ${mb(m.arrayBuffers)})`
  )
  console.log(`  most asked: ${f.topPaths.map(([p, n]) => `${p} ${n.toLocaleString("en-US")}`).join(", ")}`)
}

const selected = (): ReadonlyArray<Catalog.Resource> =>
  values.resources === undefined
    ? Catalog.defaults
    : values.resources.split(",").map((t) => {
        const r = Catalog.all.find((c) => c.table === t.trim())
        if (r === undefined) throw new Error(`unknown table ${t}`)
        return r
      })

/**
 * Runs one scenario at one size in a process of its own (this script with `--only`), so that each
 * peak RSS is that run's alone and each run starts its embedded PostgreSQL in a fresh process.
 */
const runChild = (script: string, only: string, scale: string): void => {
  const args = [
    script,
    "--only",
    only,
    "--small",
    "0",
    "--scale",
    scale,
    ...(values.resources !== undefined ? ["--resources", values.resources] : []),
    ...(values.trace ? ["--trace"] : []),
    ...(values["pg-processes"] ? ["--pg-processes"] : [])
  ]
  const child = spawnSync(process.execPath, args, { stdio: "inherit" })
  if (child.status !== 0) throw new Error(`the ${only} run at scale ${scale} failed (${child.status})`)
}

/**
 * The `stripe-sync backfill` command itself (the bundle users run) against the emulator at `scale`,
 * with its default embedded PostgreSQL in a temporary working directory: its objects/s as it reports
 * them (from its backfill's first request to the last row in the tables) and its peak RSS, the
 * kernel's high water mark (VmHWM) read from /proc while it runs (Linux only).
 */
const runCommand = async (cli: string, scale: string): Promise<void> => {
  const tmp = fs.mkdtempSync(path.join("/tmp", "stripe-sync-bench-"))
  fs.chmodSync(tmp, 0o755)
  const emulator = await startEmulator(["--scale", scale])
  try {
    const before = await stats(emulator.url)
    const started = Date.now()
    const child = spawn(
      process.execPath,
      [
        cli,
        "backfill",
        "--stripe-api-key",
        "sk_test_bench",
        "--stripe-api-base",
        emulator.url,
        "--rate-limit",
        "100000",
        "--endpoint-rate-limit",
        "100000",
        // its warnings (resources the emulator's account cannot list) are not the bench's output
        "--log-level",
        "error"
      ],
      { cwd: tmp, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, FORCE_COLOR: "0" } }
    )
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
    })
    let peak = 0
    const sampler = setInterval(() => {
      peak = Math.max(peak, highWaterMark(child.pid!) ?? 0)
    }, 50)
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    clearInterval(sampler)
    const wall = (Date.now() - started) / 1000
    const after = await stats(emulator.url)
    const done = /done: ([\d,]+) objects in ([\d.]+) s/.exec(out)
    if (code !== 0 || done === null) throw new Error(`stripe-sync backfill exited with ${code}: ${out}`)
    const objects = Number(done[1]!.replace(/,/g, ""))
    const seconds = Number(done[2])
    const requests = after.requests - before.requests
    console.log(
      `command (stripe-sync backfill, bundled), scale ${scale}: ${objects.toLocaleString("en-US")} objects in ${seconds.toFixed(1)} s = ${Math.round(objects / seconds).toLocaleString("en-US")} objects/s; ${requests.toLocaleString("en-US")} requests = ${(requests / seconds).toFixed(1)} req/s (${(after.limited - before.limited).toLocaleString("en-US")} answered 429); peak RSS ${peak > 0 ? mb(peak) : "unknown (no /proc)"}; ${wall.toFixed(1)} s from start to exit (with its embedded PostgreSQL's start and stop)`
    )
  } finally {
    emulator.child.kill("SIGTERM")
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** True when this script runs as the bundle `runChild` starts (not through tsx). */
const bundled = import.meta.url.endsWith(".mjs")

/** One scenario at one size: run in this process when it is the bundle (or asked to); else dispatched. */
const single =
  values.only !== undefined &&
  values.only !== "command" &&
  (values.only !== "fast" || Number(values.small) === 0)

const main = async () => {
  if (!single || !(bundled || values["in-process"])) {
    // the runs execute this script bundled, as the stripe-sync command runs (see packages/cli/scripts/bundle.mjs)
    const script = await ensureBundle({
      entry: fileURLToPath(import.meta.url),
      outfile: path.join(root, "test/dist/backfill.bench.mjs")
    })
    if (values.only === undefined || values.only === "fast") {
      if (Number(values.small) > 0) runChild(script, "fast", values.small!)
      runChild(script, "fast", values.scale!)
    }
    if (values.only === undefined || values.only === "command") {
      const cli = await ensureBundle()
      if (Number(values.small) > 0) await runCommand(cli, values.small!)
      await runCommand(cli, values.scale!)
    }
    if (values.only === undefined || values.only === "budget") runChild(script, "budget", values.scale!)
    if (values.only === "source") runChild(script, "source", values.scale!)
    return
  }
  console.log(`node ${process.version}, ${(await import("node:os")).cpus().length} cores`)
  // the sync runs in this process: with the heap settings the stripe-sync command starts with
  tuneHeap()
  if (values.only === "fast") {
    const fast = {
      rateLimit: 100_000,
      endpointRateLimit: 100_000,
      // as the stripe-sync command reads
      concurrency: Sync.defaultConcurrency,
      resources: selected()
    }
    const full = await run({ ...fast, emulatorArgs: ["--scale", values.scale!] })
    print(`fast, scale ${values.scale}`, full)
  }
  if (values.only === "source") {
    // the source side alone (no Postgres): what reading Stripe costs the sync process per object
    const source = await run({
      rateLimit: 100_000,
      endpointRateLimit: 100_000,
      concurrency: Sync.defaultConcurrency,
      resources: selected(),
      sourceOnly: true,
      emulatorArgs: ["--scale", values.scale!]
    })
    print(`source only, scale ${values.scale}`, source)
    console.log(
      `  ${Math.round((source.cpuSeconds * 1e6) / source.objects)} µs CPU per object, ${Math.round((source.cpuSeconds * 1e6) / source.requests)} µs per request`
    )
  }
  if (values.only === "budget") {
    // large resources that list without a parent, so every request pages 100 objects
    const large = [
      "customers",
      "invoices",
      "charges",
      "payment_intents",
      "balance_transactions",
      "subscriptions"
    ]
    const resources = Catalog.all.filter((r) => large.includes(r.table))
    const budget = await run({
      resources,
      rateLimit: 25,
      endpointRateLimit: 25,
      concurrency: 12,
      emulatorArgs: ["--scale", values.scale!, "--latency", "200", "--rate-limit", "25"]
    })
    print(`budget (25 req/s, 200 ms), ${large.join(", ")}`, budget)
    console.log(
      `budget used: ${((budget.requests / budget.seconds / 25) * 100).toFixed(1)}% of 25 req/s (${(((budget.requests - budget.limited) / budget.seconds / 25) * 100).toFixed(1)}% by requests answered without 429)`
    )
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
