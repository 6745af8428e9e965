/**
 * pnpm bench:emulator
 *
 * 1. Start-up time of a ~100,000-object account (in process, generation + indexes).
 * 2. List requests per second from one client process (this one), 100 objects a page, keep-alive,
 *    against the emulator running in its own process (`src/main.ts`): customers and invoices, each
 *    request the next page of a lane paging with starting_after (the response is parsed as a client would).
 * 3. Lists filtered by a parent, as a backfill issues them (server CPU per request): a customer's
 *    payment methods (`/v1/payment_methods?customer=`), a customer's tax ids, and customer pages
 *    with `expand[]=data.tax_ids`, for every customer in turn.
 */
import { spawn } from "node:child_process"
import { Agent, request } from "node:http"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { makeState } from "../src/Emulator.js"

const here = dirname(fileURLToPath(import.meta.url))
const SCALE = Number(process.env.BENCH_SCALE ?? 23.5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const LANES = Number(process.env.BENCH_LANES ?? 8)

// 1. Start-up
{
  const t = performance.now()
  const cpu = process.cpuUsage()
  const state = makeState({ seed: "bench", scale: SCALE })
  const ms = performance.now() - t
  const used = process.cpuUsage(cpu)
  const cpuMs = (used.user + used.system) / 1000
  process.stdout.write(
    `start-up: ${state.platform.objectCount()} objects (scale ${SCALE}) in ${ms.toFixed(0)} ms (${cpuMs.toFixed(0)} ms CPU)\n`
  )
}

// 2. Throughput against a separate server process
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    join(here, "../src/main.ts"),
    "--port",
    "0",
    "--seed",
    "bench",
    "--scale",
    String(SCALE)
  ],
  { stdio: ["ignore", "pipe", "inherit"] }
)
const url = await new Promise<string>((resolve, reject) => {
  let out = ""
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString()
    const m = /listening on (http:\/\/\S+)/.exec(out)
    if (m) {
      process.stdout.write(out)
      resolve(m[1]!)
    }
  })
  child.once("exit", (code) => reject(new Error(`emulator exited ${code}`)))
})
const { hostname, port } = new URL(url)
const agent = new Agent({ keepAlive: true, maxSockets: LANES })

const get = (path: string): Promise<{ status: number; body: string }> =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: hostname, port, path, agent, headers: { authorization: "Bearer sk_test_bench" } },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") })
        )
      }
    )
    req.on("error", reject)
    req.end()
  })

const serverCpuMs = async (): Promise<number> =>
  (JSON.parse((await get("/_emulator/stats")).body) as { processCpuMs: number }).processCpuMs

/** Every page's `starting_after` cursor, found by one walk through the list. */
const cursors = async (resource: string): Promise<Array<string | undefined>> => {
  const out: Array<string | undefined> = [undefined]
  for (;;) {
    const r = await get(`/v1/${resource}?limit=100${out.at(-1) ? `&starting_after=${out.at(-1)}` : ""}`)
    const page = JSON.parse(r.body) as { data: Array<{ id: string }>; has_more: boolean }
    if (!page.has_more) return out
    out.push(page.data.at(-1)!.id)
  }
}

/**
 * `parse`: each lane pages with starting_after taken from the parsed response (what a client does).
 * `raw`: lanes fetch the pages of precomputed cursors and read the body without parsing it (what the
 * emulator serves when the client's JSON parsing is not the bottleneck).
 */
const run = async (resource: string, mode: "parse" | "raw") => {
  const pages = mode === "raw" ? await cursors(resource) : []
  let requests = 0
  let bytes = 0
  const deadline = performance.now() + SECONDS * 1000
  const lane = async (n: number) => {
    let after: string | undefined
    let i = n
    while (performance.now() < deadline) {
      if (mode === "raw") after = pages[i++ % pages.length]
      const r = await get(`/v1/${resource}?limit=100${after ? `&starting_after=${after}` : ""}`)
      if (r.status !== 200) throw new Error(`${r.status} ${r.body}`)
      requests++
      bytes += r.body.length
      if (mode === "parse") {
        const page = JSON.parse(r.body) as { data: Array<{ id: string }>; has_more: boolean }
        after = page.has_more ? page.data[page.data.length - 1]!.id : undefined
      }
    }
  }
  const cpu0 = await serverCpuMs()
  const t = performance.now()
  await Promise.all(Array.from({ length: LANES }, (_, n) => lane(n)))
  const s = (performance.now() - t) / 1000
  const serverMsPerRequest = ((await serverCpuMs()) - cpu0) / requests
  process.stdout.write(
    `${resource} (${mode}): ${(requests / s).toFixed(0)} list requests/s, 100 a page, ${LANES} keep-alive connections, ${(bytes / requests / 1024).toFixed(0)} KiB a page; server CPU ${(serverMsPerRequest * 1000).toFixed(0)} µs a request (≈ ${(1000 / serverMsPerRequest).toFixed(0)} requests/s per core)\n`
  )
}

/** Lanes fetch `paths` in turn (raw); the server's CPU per request. */
const runPaths = async (label: string, paths: ReadonlyArray<string>) => {
  let requests = 0
  let next = 0
  const deadline = performance.now() + SECONDS * 1000
  const lane = async () => {
    while (performance.now() < deadline) {
      const r = await get(paths[next++ % paths.length]!)
      if (r.status !== 200) throw new Error(`${r.status} ${r.body}`)
      requests++
    }
  }
  const cpu0 = await serverCpuMs()
  const t = performance.now()
  await Promise.all(Array.from({ length: LANES }, () => lane()))
  const s = (performance.now() - t) / 1000
  const serverMsPerRequest = ((await serverCpuMs()) - cpu0) / requests
  process.stdout.write(
    `${label}: ${(requests / s).toFixed(0)} requests/s; server CPU ${(serverMsPerRequest * 1000).toFixed(0)} µs a request\n`
  )
}

try {
  await get("/v1/customers?limit=100") // warm-up
  for (const resource of ["customers", "invoices"]) {
    await run(resource, "raw")
    await run(resource, "parse")
  }
  const customerPages = await cursors("customers")
  const customers: Array<string> = []
  for (const after of customerPages) {
    const r = await get(`/v1/customers?limit=100${after ? `&starting_after=${after}` : ""}`)
    for (const c of (JSON.parse(r.body) as { data: Array<{ id: string }> }).data) customers.push(c.id)
  }
  await runPaths(
    `payment methods of each of ${customers.length} customers`,
    customers.map((id) => `/v1/payment_methods?customer=${id}&limit=100`)
  )
  await runPaths(
    "tax ids of each customer",
    customers.map((id) => `/v1/customers/${id}/tax_ids?limit=100`)
  )
  await runPaths(
    "customer pages with expand[]=data.tax_ids",
    customerPages.map(
      (after) => `/v1/customers?limit=100&expand[]=data.tax_ids${after ? `&starting_after=${after}` : ""}`
    )
  )
} finally {
  agent.destroy()
  child.kill("SIGTERM")
}
