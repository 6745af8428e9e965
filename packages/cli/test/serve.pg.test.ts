/**
 * `stripe-sync serve` as a child process on a test database: signed webhooks are stored and
 * acknowledged, and SIGTERM in the middle of a load answers every request in flight (each 200 is
 * stored) before the process exits.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as Http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Webhook } from "@stripe-sync/source-stripe"
import { Effect } from "effect"
import { json, waitFor, withEmulator } from "../../../test/harness/e2e.js"
import { PgTest } from "../../../test/harness/index.js"
import { bundleFile } from "../scripts/bundle.mjs"
import * as EmbeddedDatabase from "../src/EmbeddedDatabase.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const secret = "whsec_cli_test"

/**
 * `serve` on `databaseUrl`, or on the embedded default in `cwd` when none is given. The child leads
 * a process group of its own, as a command started in a terminal does.
 */
const startServe = (
  databaseUrl: string | undefined,
  cwd = root,
  options: { readonly args?: ReadonlyArray<string>; readonly env?: Record<string, string> } = {}
) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: ChildProcess; readonly url: string }, Error>((resume) => {
      // the bundled command (built by the global setup) on node itself: signals and the exit code are its own
      const child = spawn(
        process.execPath,
        [
          "--enable-source-maps",
          bundleFile,
          "serve",
          "--port",
          "0",
          "--host",
          "127.0.0.1",
          ...(options.args ?? ["--platform-account", "acct_cli_test"]),
          "--webhook-secret",
          `whsec_old,${secret}`,
          "--log-level",
          "error"
        ],
        {
          cwd,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...withoutDatabaseUrl,
            ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
            ...options.env
          }
        }
      )
      let out = ""
      const onData = (chunk: Buffer) => {
        out += chunk.toString()
        const m = /listening on (http:\/\/[^\s/]+)/.exec(out)
        if (m) resume(Effect.succeed({ child, url: m[1]! }))
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
      })
      child.on("exit", (code) => resume(Effect.fail(new Error(`serve exited (${code}): ${out}`))))
    }),
    ({ child }) =>
      Effect.promise(async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = new Promise((resolve) => child.once("exit", resolve))
        child.kill("SIGKILL")
        await exited
      })
  )

const {
  DATABASE_URL: _ignored,
  STRIPE_API_KEY: _key,
  STRIPE_API_BASE: _base,
  ...withoutDatabaseUrl
} = process.env

/** Posts one signed event; resolves with the status. */
const postEvent = (agent: Http.Agent, url: URL, event: Record<string, unknown>) =>
  new Promise<number | string>((resolve) => {
    const body = JSON.stringify(event)
    const req = Http.request(
      {
        host: url.hostname,
        port: url.port,
        path: "/webhooks",
        method: "POST",
        agent,
        headers: {
          "content-length": Buffer.byteLength(body),
          "stripe-signature": Webhook.sign(body, secret, Math.floor(Date.now() / 1000))
        }
      },
      (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      }
    )
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    req.end(body)
  })

/** Posts a signed `customer.created` event with that id; resolves with the id and the status. */
const post = (agent: Http.Agent, url: URL, id: string) =>
  postEvent(agent, url, {
    id,
    object: "event",
    created: Math.floor(Date.now() / 1000),
    type: "customer.created",
    data: { object: { id: id.replace("evt_", "cus_"), object: "customer", email: `${id}@example.com` } }
  }).then((status) => ({ id, status }))

/**
 * 16 senders in a loop against `serve`; `signal` once 200 events have been answered. Every request
 * answered must have got 200; returns the acknowledged ids and the exit code.
 */
const loadThenSignal = (child: ChildProcess, url: string, signal: () => void) =>
  Effect.gen(function* () {
    const base = new URL(url)
    const agent = new Http.Agent({ keepAlive: true, maxSockets: 16 })
    yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
    const results: Array<{ readonly id: string; readonly status: number | string }> = []
    let exited: number | null | undefined
    const exit = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => {
        exited = code
        resolve(code)
      })
    )
    let n = 0
    const sender = async () => {
      while (exited === undefined && n < 5000) {
        const r = await post(agent, base, `evt_cli_${n++}`)
        results.push(r)
        if (typeof r.status !== "number") return
        if (results.length === 200) signal()
      }
    }
    yield* Effect.promise(() => Promise.all(Array.from({ length: 16 }, sender)))
    const code = yield* Effect.promise(() => exit)
    const answered = results.filter((r) => typeof r.status === "number")
    const acknowledged = answered.filter((r) => r.status === 200).map((r) => r.id)
    assert.isTrue(acknowledged.length >= 200, `${acknowledged.length} acknowledged`)
    assert.deepStrictEqual(
      [...new Set(answered.map((r) => r.status))],
      [200],
      "every request that was answered got 200 (none 503 while shutting down)"
    )
    // Requests that were not answered got a refused or reset connection: the sender retries them.
    return { code, acknowledged }
  })

describe("stripe-sync serve", () => {
  layer(PgTest.layer(), { excludeTestServices: true, timeout: 120_000 })((it) => {
    it.scoped(
      "stores and acknowledges webhooks, and on SIGTERM answers what is in flight before exiting",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* SqlClient.SqlClient
          const { child, url } = yield* startServe(db.url)
          const ready = yield* Effect.promise(() => fetch(`${url}/readyz`).then((r) => r.json()))
          assert.deepStrictEqual(ready, {
            ready: true,
            checks: { database: { ok: true }, projections: { ok: true } },
            horizonHolders: []
          })
          const agent = new Http.Agent({ keepAlive: true })
          yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
          const first = yield* Effect.promise(() => post(agent, new URL(url), "evt_cli_first"))
          assert.deepStrictEqual(first, { id: "evt_cli_first", status: 200 })

          const { code, acknowledged } = yield* loadThenSignal(child, url, () => child.kill("SIGTERM"))
          assert.strictEqual(code, 130, "interrupted")
          const stored = new Set(
            (yield* sql<{ event_id: string }>`SELECT event_id FROM stripe._events`).map((r) => r.event_id)
          )
          assert.deepStrictEqual(
            acknowledged.filter((id) => !stored.has(id)),
            [],
            "every acknowledged event is stored"
          )
          assert.isTrue(stored.has("evt_cli_first"))
        }),
      90_000
    )

    it.scoped(
      "on the embedded database, Ctrl-C (SIGINT to the process group) answers what is in flight, then stops Postgres",
      () =>
        Effect.gen(function* () {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stripe-sync-serve-"))
          fs.chmodSync(dir, 0o755)
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
          )
          const { child, url } = yield* startServe(undefined, dir)
          // what a terminal's Ctrl-C does: SIGINT to every process of the foreground group
          const { code, acknowledged } = yield* loadThenSignal(child, url, () =>
            process.kill(-child.pid!, "SIGINT")
          )
          assert.strictEqual(code, 130, "interrupted")
          const dataDir = EmbeddedDatabase.resolveDataDir(path.join(dir, ".stripe-sync", "postgres"))
          assert.isFalse(fs.existsSync(path.join(dataDir, "postmaster.pid")), "Postgres was stopped")
          // start the same embedded database again and read what it holds
          const stored = yield* Effect.scoped(
            Effect.gen(function* () {
              const db = yield* EmbeddedDatabase.start({ dataDir })
              const rows = yield* Effect.flatMap(
                SqlClient.SqlClient,
                (sql) => sql<{ event_id: string }>`SELECT event_id FROM stripe._events`
              ).pipe(Effect.provide(PgClient.layer({ url: db.url })))
              return new Set(rows.map((r) => r.event_id))
            })
          )
          assert.deepStrictEqual(
            acknowledged.filter((id) => !stored.has(id)),
            [],
            "every acknowledged event is stored"
          )
        }),
      90_000
    )

    it.scoped(
      "with a Stripe key and --revalidate: the table holds the API's object, not a stale payload",
      () =>
        Effect.gen(function* () {
          const db = yield* PgTest.TestDatabase
          const sql = yield* SqlClient.SqlClient
          const emulator = yield* withEmulator({ seed: "serve-revalidate", scale: 0.01 })
          const { url } = yield* startServe(db.url, root, {
            args: ["--revalidate", "customer"],
            env: { STRIPE_API_KEY: "sk_test_serve", STRIPE_API_BASE: emulator.url }
          })
          const truth = emulator.truth("customer")[0]!
          const agent = new Http.Agent({ keepAlive: true })
          yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
          const status = yield* Effect.promise(() =>
            postEvent(agent, new URL(url), {
              id: "evt_serve_stale",
              object: "event",
              type: "customer.updated",
              created: Math.floor(Date.now() / 1000),
              data: { object: { ...truth, email: "stale@example.com", metadata: { stale: "yes" } } }
            })
          )
          assert.strictEqual(status, 200)
          const row = sql<{ raw: unknown }>`
            SELECT _raw_data AS raw FROM stripe.customers WHERE id = ${String(truth.id)}`
          yield* waitFor(
            "the API's customer in stripe.customers",
            Effect.map(
              row,
              (rows) => rows[0] !== undefined && (rows[0].raw as { email?: unknown }).email === truth.email
            ),
            30
          )
          assert.deepStrictEqual((yield* row)[0]?.raw, json(truth))
          const sources = yield* sql<{ source: string }>`
            SELECT DISTINCT source FROM stripe._events WHERE object_id = ${String(truth.id)} ORDER BY source`
          assert.deepStrictEqual(
            sources.map((r) => r.source),
            ["revalidate_queue", "webhook"],
            "the webhook is kept in the log, and the API's object appended after it"
          )
        }),
      90_000
    )
  })
})
