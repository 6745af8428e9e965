/**
 * `pnpm bench:log [--events 200000] [--batch 500] [--url postgres://… [--keep]]`
 *
 * Starts the CLI's embedded PostgreSQL (`EmbeddedDatabase.start`: the shipped server settings) in a
 * temporary directory (or uses `--url`, an admin URL, creating and dropping a database of its own;
 * `--keep` keeps it), then prints events/s appended through the public `append` (batches of ~1 KB
 * events; one appender, then two; for one appender also the rate inside `append`, without the time
 * the benchmark spends building events), events/s folded by a simple set-based projection through
 * core's `Pipeline.catchUp`, the CPU per 1,000 events of this process and of the server's processes
 * (from /proc; not with `--url`), the load average, and the process's RSS along the way and at peak.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { PgClient } from "@effect/sql-pg"
import { Event, EventLog } from "@stripe-sync/core"
import { Effect, Exit, Layer, Redacted, Scope, Stream } from "effect"
import { serverCpu } from "../../../test/bench/serverCpu.js"
import * as EmbeddedDatabase from "../../cli/src/EmbeddedDatabase.js"
import { PgProjection, PgSink } from "../src/index.js"
import { customerNames } from "../test/fixtures/customerNames.js"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const total = Number(arg("events") ?? 200_000)
const batchSize = Number(arg("batch") ?? 500)
const givenUrl = arg("url")
/** Keep the database afterwards (with `--url`), to look at it. */
const keep = process.argv.includes("--keep")

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
let peakRss = 0
const sampleRss = () => {
  const rss = process.memoryUsage.rss()
  if (rss > peakRss) peakRss = rss
  return rss
}

interface Server {
  readonly adminUrl: string
  readonly dataDir: string | undefined
  readonly stop: () => Promise<void>
}

/** The shipped embedded default (same server settings as the CLI), in a temporary directory. */
const startServer = async (): Promise<Server> => {
  if (givenUrl !== undefined) return { adminUrl: givenUrl, dataDir: undefined, stop: async () => {} }
  const base = Fs.mkdtempSync(Path.join(Os.tmpdir(), "stripe-sync-bench-"))
  Fs.chmodSync(base, 0o755)
  const remove = () => Fs.rmSync(base, { recursive: true, force: true })
  process.once("exit", remove)
  const scope = Effect.runSync(Scope.make())
  const db = await Effect.runPromise(
    Scope.extend(EmbeddedDatabase.start({ dataDir: Path.join(base, "pg", "data") }), scope)
  )
  return {
    adminUrl: Redacted.value(db.url),
    dataDir: db.dataDir,
    stop: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      remove()
    }
  }
}

/** A deterministic customer object of about 1 KB. */
const customer = (i: number, objectId: string) => ({
  id: objectId,
  object: "customer",
  address: {
    city: "San Francisco",
    country: "US",
    line1: `${i} Market Street`,
    line2: null,
    postal_code: "94103",
    state: "CA"
  },
  balance: i % 1000,
  created: 1_700_000_000 + (i % 100_000),
  currency: "usd",
  default_source: null,
  delinquent: i % 17 === 0,
  description: `Customer number ${i}, created by the benchmark to weigh about one kilobyte in total.`,
  discount: null,
  email: `customer${i}@example.com`,
  invoice_prefix: `INV${(i % 100000).toString(36).toUpperCase()}`,
  invoice_settings: {
    custom_fields: null,
    default_payment_method: null,
    footer: null,
    rendering_options: null
  },
  livemode: false,
  metadata: {
    plan: i % 3 === 0 ? "pro" : "basic",
    region: "us-west",
    team: `team-${i % 50}`,
    seq: String(i)
  },
  name: `Customer ${i}`,
  next_invoice_sequence: 1 + (i % 40),
  phone: "+14155550100",
  preferred_locales: ["en"],
  shipping: {
    address: { city: "Oakland", country: "US", line1: "1 Broadway", postal_code: "94607", state: "CA" },
    name: `Customer ${i}`
  },
  tax_exempt: "none",
  test_clock: null
})

const receivedAt = new Date("2026-01-01T00:00:00.000Z")
const objects = Math.max(1, Math.floor(total / 2))
// Built without re-validation (`true`): the benchmark weighs the log, not the Schema constructor.
const makeBatch = (from: number, n: number): Array<Event.Event> =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k
    const objectId = `cus_${(i % objects).toString(36).padStart(8, "0")}`
    return new Event.Event(
      {
        id: Event.EventId.make(`evt_${i.toString(36).padStart(10, "0")}`),
        type: "customer.updated",
        source: "bench",
        accountId: "acct_bench",
        objectType: "customer",
        objectId,
        versionTs: 1_700_000_000 + i,
        apiVersion: "2025-01-27.acacia",
        data: customer(i, objectId),
        receivedAt
      },
      true
    )
  })

/** Milliseconds spent inside `append` calls. */
let insideAppend = 0

/**
 * One appender: `append` called for one batch after the other, as a source's runner does. The
 * batches are built by a producer of their own that stays two batches ahead (as a source reads its
 * next page while the last one is appended), so the figure weighs the log, not this script's event
 * generator.
 */
const appendRange = (log: EventLog.Service, from: number, to: number, report: (done: number) => void) =>
  Stream.iterate(from, (at) => at + batchSize).pipe(
    Stream.takeWhile((at) => at < to),
    Stream.map((at) => ({ at, events: makeBatch(at, Math.min(batchSize, to - at)) })),
    Stream.buffer({ capacity: 2 }),
    Stream.runForEach(({ at, events }) =>
      Effect.gen(function* () {
        const start = performance.now()
        yield* log.append({ events, cursors: [{ source: "bench", key: `r${from}`, value: { at } }] })
        insideAppend += performance.now() - start
        report(at + events.length - from)
      })
    )
  )

/** CPU spent in this process and in the server between `start()` and `stop(events)`, per 1,000 events. */
const cpuMeter = (dataDir: string | undefined) => () => {
  const node0 = process.cpuUsage()
  const server0 = dataDir === undefined ? Number.NaN : serverCpu(dataDir)
  return (events: number) => {
    const node = process.cpuUsage(node0)
    const serverSeconds = dataDir === undefined ? Number.NaN : serverCpu(dataDir) - server0
    const per = (seconds: number) => ((seconds * 1000 * 1000) / Math.max(1, events)).toFixed(1)
    return `cpu per 1000 events: node ${per((node.user + node.system) / 1e6)} ms, server ${
      Number.isNaN(serverSeconds) ? "n/a" : `${per(serverSeconds)} ms`
    }`
  }
}

const main = (dataDir: string | undefined) =>
  Effect.gen(function* () {
    const meter = cpuMeter(dataDir)
    const log = yield* EventLog.EventLog
    const size = Buffer.byteLength(JSON.stringify(makeBatch(0, 1)[0]!.data))
    console.log(`events: ${total}, batch: ${batchSize}, event data: ${size} bytes`)

    const half = Math.floor(total / 2)
    const every = Math.max(batchSize, Math.floor(total / 10))
    let next = every
    const progress = (label: string, base: number) => (done: number) => {
      if (base + done >= next) {
        next += every
        console.log(`  ${label}: ${base + done} events, rss ${mb(sampleRss())}`)
      }
    }

    let t = performance.now()
    let cpu = meter()
    insideAppend = 0
    yield* appendRange(log, 0, half, progress("append x1", 0))
    const one = half / ((performance.now() - t) / 1000)
    const oneInside = half / (insideAppend / 1000)
    console.log(`append, one appender:  ${one.toFixed(0)} events/s (${cpu(half)})`)
    console.log(`  time inside append calls: ${oneInside.toFixed(0)} events/s`)

    t = performance.now()
    cpu = meter()
    const quarter = Math.floor((total - half) / 2)
    let doneA = 0
    let doneB = 0
    const both = () => progress("append x2", half)(doneA + doneB)
    yield* Effect.all(
      [
        appendRange(log, half, half + quarter, (d) => {
          doneA = d
          both()
        }),
        appendRange(log, half + quarter, total, (d) => {
          doneB = d
          both()
        })
      ],
      { concurrency: 2, discard: true }
    )
    const two = (total - half) / ((performance.now() - t) / 1000)
    console.log(`append, two appenders: ${two.toFixed(0)} events/s (${cpu(total - half)})`)

    t = performance.now()
    cpu = meter()
    const rssTimer = setInterval(() => console.log(`  fold: rss ${mb(sampleRss())}`), 2000)
    const applied = yield* PgProjection.catchUp(
      customerNames({ name: "bench_names", countApplications: false }),
      { batchSize: 1000 }
    )
    clearInterval(rssTimer)
    const fold = applied / ((performance.now() - t) / 1000)
    console.log(
      `fold (set-based projection, batches of 1000): ${fold.toFixed(0)} events/s (${applied} events; ${cpu(applied)})`
    )
    sampleRss()
    console.log(
      `load average: ${Os.loadavg()
        .map((l) => l.toFixed(2))
        .join(", ")}`
    )
    console.log(`peak rss: ${mb(Math.max(peakRss, process.resourceUsage().maxRSS * 1024))}`)
  })

const server = await startServer()
try {
  const database = `bench_${Date.now().toString(36)}`
  const admin = PgClient.layer({ url: Redacted.make(server.adminUrl), maxConnections: 1 })
  await Effect.runPromise(
    Effect.flatMap(PgClient.PgClient, (sql) => sql`CREATE DATABASE ${sql(database)}`).pipe(
      Effect.provide(admin)
    )
  )
  const url = new URL(server.adminUrl)
  url.pathname = `/${database}`
  const sink = PgSink.layerFromUrl({ url: Redacted.make(url.toString()), schema: "stripe" })
  await Effect.runPromise(main(server.dataDir).pipe(Effect.provide(Layer.orDie(sink))))
  if (keep) console.log(`kept database ${database}`)
  else
    await Effect.runPromise(
      Effect.flatMap(PgClient.PgClient, (sql) => sql`DROP DATABASE ${sql(database)} WITH (FORCE)`).pipe(
        Effect.provide(admin)
      )
    )
} finally {
  await server.stop()
}
