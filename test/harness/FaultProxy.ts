/**
 * A TCP fault proxy for outage tests: put it between the code under test and a server (usually the
 * shared test Postgres), then cut, delay or reset the traffic. The shared server itself is never stopped.
 *
 * - `cut()`: drops every current connection and refuses new ones (accept + immediate RST) until `restore()`.
 * - `delay(ms)`: holds every chunk, in both directions, for `ms` before forwarding it (order preserved).
 *   `delay(0)` releases whatever is held at once.
 * - `reset()`: RSTs every current connection; new connections are accepted as usual.
 * - `stop()`: closes the listener and every connection.
 */
import * as Net from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect/Scope"

export interface Target {
  readonly host: string
  readonly port: number
}

export interface StartOptions {
  /** The server to forward to. */
  readonly target: Target
  /** Interface to listen on (default `127.0.0.1`); the port is chosen by the OS. */
  readonly host?: string
}

export interface Stats {
  /** Client connections currently open through the proxy. */
  readonly open: number
  /** Client connections accepted since start (including refused ones while cut). */
  readonly accepted: number
  /** Connections refused while cut. */
  readonly refused: number
  /** Chunks held by `delay` and not yet forwarded. */
  readonly held: number
}

export interface FaultProxy {
  readonly host: string
  readonly port: number
  readonly target: Target
  /** `url` with its host and port replaced by the proxy's (e.g. a `postgres://` URL). */
  readonly rewriteUrl: (url: string) => string
  /** Drop all current connections and refuse new ones until `restore()`. */
  readonly cut: () => void
  /** Accept and forward connections again (does not change the delay). */
  readonly restore: () => void
  /** Hold each chunk for `ms` before forwarding it; `0` forwards immediately and flushes what is held. */
  readonly delay: (ms: number) => void
  /** Send RST on every current connection (both sides). */
  readonly reset: () => void
  readonly stats: () => Stats
  /** Close the listener and every connection. Idempotent. */
  readonly stop: () => Promise<void>
}

interface Held {
  readonly due: number
  readonly chunk: Buffer
  readonly to: Net.Socket
}

/** Pauses reading from a side while this many bytes are held for the other side. */
const highWaterMark = 1 << 20

/** Starts a proxy listening on an OS-chosen port. */
export const start = async (options: StartOptions): Promise<FaultProxy> => {
  const { target } = options
  const listenHost = options.host ?? "127.0.0.1"
  const pairs = new Set<{ readonly client: Net.Socket; readonly upstream: Net.Socket }>()
  let cutOff = false
  let delayMs = 0
  let accepted = 0
  let refused = 0
  let stopped = false
  // One queue for both directions keeps the implementation small; per-socket order is preserved.
  let held: Array<Held> = []
  const heldBytes = new Map<Net.Socket, number>()
  let timer: NodeJS.Timeout | undefined

  const sourceOf = new Map<Net.Socket, Net.Socket>()

  const flush = (upTo: number) => {
    const ready = held.filter((h) => h.due <= upTo)
    held = held.filter((h) => h.due > upTo)
    for (const h of ready) {
      if (!h.to.destroyed) h.to.write(h.chunk)
      const bytes = (heldBytes.get(h.to) ?? 0) - h.chunk.length
      heldBytes.set(h.to, bytes)
      const source = sourceOf.get(h.to)
      if (source !== undefined && bytes < highWaterMark && source.isPaused() && !source.destroyed)
        source.resume()
    }
    schedule()
  }

  const schedule = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    const next = held[0]
    if (next === undefined) return
    timer = setTimeout(() => flush(Date.now()), Math.max(0, next.due - Date.now()))
  }

  const forward = (from: Net.Socket, to: Net.Socket) => {
    sourceOf.set(to, from)
    from.on("data", (chunk: Buffer) => {
      if (to.destroyed) return
      if (delayMs === 0 && held.every((h) => h.to !== to)) {
        if (!to.write(chunk)) {
          from.pause()
          to.once("drain", () => {
            if (!from.destroyed) from.resume()
          })
        }
        return
      }
      const due = Math.max(Date.now() + delayMs, held.at(-1)?.due ?? 0)
      held.push({ due, chunk, to })
      const bytes = (heldBytes.get(to) ?? 0) + chunk.length
      heldBytes.set(to, bytes)
      if (bytes >= highWaterMark) from.pause()
      if (held.length === 1) schedule()
    })
  }

  const forget = (pair: { readonly client: Net.Socket; readonly upstream: Net.Socket }) => {
    pairs.delete(pair)
    sourceOf.delete(pair.client)
    sourceOf.delete(pair.upstream)
    heldBytes.delete(pair.client)
    heldBytes.delete(pair.upstream)
    held = held.filter((h) => h.to !== pair.client && h.to !== pair.upstream)
  }

  const server = Net.createServer((client) => {
    accepted += 1
    client.on("error", () => {})
    if (cutOff || stopped) {
      refused += 1
      client.resetAndDestroy()
      return
    }
    client.setNoDelay(true)
    client.pause()
    const upstream = Net.connect({ host: target.host, port: target.port })
    upstream.setNoDelay(true)
    upstream.on("error", () => {})
    const pair = { client, upstream }
    pairs.add(pair)
    const closeBoth = (graceful: boolean) => {
      forget(pair)
      for (const socket of [client, upstream]) {
        if (socket.destroyed) continue
        if (graceful) socket.end()
        else socket.resetAndDestroy()
      }
    }
    upstream.once("connect", () => client.resume())
    forward(client, upstream)
    forward(upstream, client)
    // A clean FIN on one side is passed on as a FIN; an error (RST) as an RST.
    client.once("end", () => closeBoth(true))
    upstream.once("end", () => closeBoth(true))
    client.once("error", () => closeBoth(false))
    upstream.once("error", () => closeBoth(false))
    client.once("close", () => closeBoth(false))
    upstream.once("close", () => closeBoth(false))
  })

  const killAll = () => {
    for (const pair of [...pairs]) {
      forget(pair)
      if (!pair.client.destroyed) pair.client.resetAndDestroy()
      if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy()
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, listenHost, () => {
      server.removeListener("error", reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("FaultProxy: no TCP address")
  const port = address.port

  return {
    host: listenHost,
    port,
    target,
    rewriteUrl: (url) => {
      const parsed = new URL(url)
      parsed.hostname = listenHost
      parsed.port = String(port)
      return parsed.toString()
    },
    cut: () => {
      cutOff = true
      killAll()
    },
    restore: () => {
      cutOff = false
    },
    delay: (ms) => {
      delayMs = Math.max(0, ms)
      if (delayMs === 0) flush(Number.POSITIVE_INFINITY)
    },
    reset: killAll,
    stats: () => ({ open: pairs.size, accepted, refused, held: held.length }),
    stop: () => {
      if (stopped) return Promise.resolve()
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      killAll()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** The host and port of a `postgres://` (or any) URL, as a proxy target. */
export const targetOf = (url: string): Target => {
  const parsed = new URL(url)
  return { host: parsed.hostname, port: Number(parsed.port || 5432) }
}

/** A proxy for the lifetime of the current scope. */
export const make = (options: StartOptions): Effect.Effect<FaultProxy, never, Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (proxy) => Effect.promise(() => proxy.stop())
  )
