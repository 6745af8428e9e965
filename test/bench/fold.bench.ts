/**
 * `pnpm bench:fold [--scale 5] [--batch 1000] [--updates 1] [--url postgres://…]`
 *
 * The cost of folding the log into the `stripe.*` tables (the StripeTables projection run by
 * `PgProjection.catchUp`), apart from reading Stripe and appending:
 *
 * 1. builds an emulator account in memory (`--scale`, about 4,300 objects per unit, the emulator's
 *    usual mix of resources) and appends every object of the catalog's default resources as a
 *    snapshot, as the backfill does (embedded lists complete), with the projection off;
 * 2. catches the projection up: events/s, node CPU µs per event, and the Postgres server's CPU µs
 *    per event (all its processes, from /proc; embedded server only);
 * 3. appends `--updates` rounds of `<object>.updated` events one second later for every object, as
 *    webhooks bring them (embedded lists truncated at 10 with `has_more`), and times their fold
 *    (the update path: every row already exists).
 *
 * Starts an embedded PostgreSQL in a temporary directory unless `--url` (an admin URL: a database
 * of its own is created and dropped). Run it under the shared lock: `flock /tmp/bench.lock pnpm bench:fold`.
 * `--profile <dir>` writes a CPU profile of the node side of each fold (and of nothing else) into `<dir>`.
 */
import * as Fs from "node:fs"
import * as Inspector from "node:inspector/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { parseArgs } from "node:util"
import { PgClient } from "@effect/sql-pg"
import { Event, EventLog } from "@stripe-sync/core"
import { PgProjection, PgSink, StripeTables } from "@stripe-sync/sink-postgres"
import { Catalog } from "@stripe-sync/source-stripe"
import { makeState } from "@stripe-sync/stripe-emulator/Emulator"
import { Effect, Exit, Layer, Logger, LogLevel, Redacted, Scope } from "effect"
import * as EmbeddedDatabase from "../../packages/cli/src/EmbeddedDatabase.js"
import { serverCpu } from "./serverCpu.js"

const { values } = parseArgs({
  options: {
    scale: { type: "string", default: "5" },
    batch: { type: "string", default: "1000" },
    updates: { type: "string", default: "1" },
    url: { type: "string" },
    /** With `--url`: keep the database afterwards, to look at it. */
    keep: { type: "boolean", default: false },
    /** Log the plans of statements slower than this many ms (auto_explain, ANALYZE) to the server's log, copied to /tmp/fold-explain.log. */
    explain: { type: "string" },
    /** A server setting for the benchmark's database (`name=value`, repeatable), e.g. `--set default_toast_compression=lz4`. */
    set: { type: "string", multiple: true },
    /** Write a CPU profile of each fold (only the fold) into this directory. */
    profile: { type: "string" }
  }
})
const scale = Number(values.scale)
const batchSize = Number(values.batch)
const updateRounds = Number(values.updates)

const load = () =>
  Os.loadavg()
    .map((l) => l.toFixed(2))
    .join(", ")

type Json = Event.JsonObject

/** An embedded list as the backfill stores it (complete) or as a webhook brings it (at most 10 items). */
const lists = (object: Json, truncate: boolean): Json => {
  const out: Record<string, unknown> = { ...object }
  for (const [key, value] of Object.entries(object)) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) continue
    const list = value as { object?: unknown; data?: unknown }
    if (list.object !== "list" || !Array.isArray(list.data)) continue
    out[key] = truncate
      ? { ...list, data: list.data.slice(0, 10), has_more: list.data.length > 10 }
      : { ...list, has_more: false }
  }
  return out as Json
}

const main = (dataDir: string | undefined) =>
  Effect.gen(function* () {
    const log = yield* EventLog.EventLog
    const emulator = makeState({ seed: "bench", scale, epoch: 1_780_000_000 })
    const accountId = emulator.platform.id
    const resources = Catalog.defaults
    const objects: Array<{ readonly objectType: string; readonly data: Json }> = []
    for (const r of resources) {
      for (const o of emulator.platform.truth(r.object)) {
        if (typeof o.id === "string") objects.push({ objectType: r.object, data: o as unknown as Json })
      }
    }
    const versionTs = 1_780_000_100
    const receivedAt = new Date()
    const projection = StripeTables.projection({ tables: Catalog.tableSpecs(Catalog.all) })
    yield* PgProjection.migrate(projection)

    const appendAll = (events: ReadonlyArray<Event.Event>) =>
      Effect.gen(function* () {
        for (let at = 0; at < events.length; at += 100) {
          yield* log.append({ events: events.slice(at, at + 100) })
        }
      })

    const fold = (label: string) =>
      Effect.gen(function* () {
        const session = values.profile === undefined ? undefined : new Inspector.Session()
        if (session !== undefined) {
          session.connect()
          yield* Effect.promise(() => session.post("Profiler.enable"))
          yield* Effect.promise(() => session.post("Profiler.start"))
        }
        const node0 = process.cpuUsage()
        const server0 = serverCpu(dataDir)
        const t0 = performance.now()
        const applied = yield* PgProjection.catchUp(projection, { batchSize })
        const seconds = (performance.now() - t0) / 1000
        const node = process.cpuUsage(node0)
        const server = serverCpu(dataDir) - server0
        if (session !== undefined && values.profile !== undefined) {
          const { profile } = yield* Effect.promise(() => session.post("Profiler.stop"))
          Fs.mkdirSync(values.profile, { recursive: true })
          const file = Path.join(values.profile, `fold-${label.replace(/[^a-z0-9]+/gi, "-")}.cpuprofile`)
          Fs.writeFileSync(file, JSON.stringify(profile))
          session.disconnect()
        }
        const us = (cpuSeconds: number) => ((cpuSeconds * 1e6) / Math.max(1, applied)).toFixed(0)
        console.log(
          `${label}: ${applied} events in ${seconds.toFixed(2)} s = ${(applied / seconds).toFixed(0)} events/s; ` +
            `cpu per event: node ${us((node.user + node.system) / 1e6)} µs, postgres ${
              Number.isNaN(server) ? "n/a" : `${us(server)} µs`
            } (load average ${load()})`
        )
      })

    const snapshots = objects.map((o) =>
      Event.snapshot({
        source: "backfill",
        accountId,
        objectType: o.objectType,
        objectId: o.data.id as string,
        versionTs,
        apiVersion: "2026-10-28.endive",
        data: lists(o.data, false),
        receivedAt
      })
    )
    const counts = new Map<string, number>()
    for (const o of objects) counts.set(o.objectType, (counts.get(o.objectType) ?? 0) + 1)
    const size = snapshots.reduce((n, e) => n + JSON.stringify(e.data).length, 0) / snapshots.length
    console.log(
      `scale ${scale}: ${objects.length} objects of ${counts.size} types, ${size.toFixed(0)} bytes of JSON each on average; batch ${batchSize}`
    )
    yield* appendAll(snapshots)
    yield* fold("fold snapshots (inserts)")

    for (let round = 1; round <= updateRounds; round++) {
      const updates = objects.map(
        (o, i) =>
          new Event.Event(
            {
              id: Event.EventId.make(`evt_bench${round}_${i.toString(36).padStart(8, "0")}`),
              type: `${o.objectType}.updated`,
              source: "webhook",
              accountId,
              objectType: o.objectType,
              objectId: o.data.id as string,
              versionTs: versionTs + round,
              apiVersion: "2026-10-28.endive",
              data: lists({ ...o.data, metadata: { bench_round: String(round) } }, true),
              receivedAt
            },
            true
          )
      )
      yield* appendAll(updates)
      yield* fold(`fold updates, round ${round} (webhook-like, truncated lists)`)
    }
    const sql = yield* PgClient.PgClient
    const [disk] = yield* sql<{ tables: string; log: string }>`
      SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)) FILTER (WHERE left(c.relname, 1) <> '_')) AS tables,
        pg_size_pretty(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname = '_events')) AS log
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'stripe' AND c.relkind = 'r'`
    console.log(`disk: stripe tables ${disk?.tables} (with indexes and TOAST), log ${disk?.log}`)
  })

const scope = Effect.runSync(Scope.make())
let adminUrl = values.url
let dataDir: string | undefined
let base: string | undefined
try {
  if (adminUrl === undefined) {
    base = Fs.mkdtempSync(Path.join(Os.tmpdir(), "stripe-sync-fold-"))
    Fs.chmodSync(base, 0o755)
    const db = await Effect.runPromise(
      Scope.extend(EmbeddedDatabase.start({ dataDir: Path.join(base, "pg", "data") }), scope)
    )
    adminUrl = Redacted.value(db.url)
    dataDir = db.dataDir
  }
  const database = `bench_fold_${Date.now().toString(36)}`
  const admin = PgClient.layer({ url: Redacted.make(adminUrl), maxConnections: 1 })
  await Effect.runPromise(
    Effect.flatMap(PgClient.PgClient, (sql) => sql`CREATE DATABASE ${sql(database)}`).pipe(
      Effect.provide(admin)
    )
  )
  const settings = (values.set ?? []).map((s) => {
    const [name, ...rest] = s.split("=")
    return `${name} = '${rest.join("=").replace(/'/g, "''")}'`
  })
  if (values.explain !== undefined) {
    settings.push(
      "session_preload_libraries = 'auto_explain'",
      `auto_explain.log_min_duration = '${Number(values.explain)}ms'`,
      "auto_explain.log_analyze = on",
      "auto_explain.log_buffers = on",
      "auto_explain.log_nested_statements = on"
    )
  }
  for (const setting of settings) {
    await Effect.runPromise(
      Effect.flatMap(PgClient.PgClient, (sql) =>
        sql.unsafe(`ALTER DATABASE ${database} SET ${setting}`)
      ).pipe(Effect.provide(admin))
    )
  }
  const url = new URL(adminUrl)
  url.pathname = `/${database}`
  const sink = PgSink.layerFromUrl({ url: Redacted.make(url.toString()), schema: "stripe" })
  if (dataDir === undefined) {
    // a server on this machine: its CPU is read from /proc when its data directory is readable
    dataDir = await Effect.runPromise(
      Effect.flatMap(
        PgClient.PgClient,
        (sql) => sql<{ dir: string }>`SELECT current_setting('data_directory') AS dir`
      ).pipe(
        Effect.map((rows) => rows[0]?.dir),
        Effect.orElseSucceed(() => undefined),
        Effect.provide(admin)
      )
    )
  }
  await Effect.runPromise(
    main(dataDir).pipe(Effect.provide(Layer.orDie(sink)), Logger.withMinimumLogLevel(LogLevel.Warning))
  )
  if (values.keep) console.log(`kept database ${database}`)
  else
    await Effect.runPromise(
      Effect.flatMap(PgClient.PgClient, (sql) => sql`DROP DATABASE ${sql(database)} WITH (FORCE)`).pipe(
        Effect.provide(admin)
      )
    )
} finally {
  const serverLog = base === undefined ? undefined : Path.join(base, "pg", "postgres.log")
  if (
    (values.explain !== undefined || values.set !== undefined) &&
    serverLog !== undefined &&
    Fs.existsSync(serverLog)
  ) {
    Fs.copyFileSync(serverLog, "/tmp/fold-explain.log")
    console.log("server log: /tmp/fold-explain.log")
  }
  await Effect.runPromise(Scope.close(scope, Exit.void))
  if (base !== undefined) Fs.rmSync(base, { recursive: true, force: true })
}
