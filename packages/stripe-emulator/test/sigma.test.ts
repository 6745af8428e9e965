import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type EmulatorHandle, startEmulator } from "../src/Emulator.js"
import { client } from "./helpers.js"

const EPOCH = 1_790_000_000
let now = EPOCH * 1000
let emulator: EmulatorHandle
const headers = { Authorization: "Bearer sk_test_sigma", "Content-Type": "application/json" }

beforeAll(async () => {
  emulator = await startEmulator({
    seed: "sigma",
    scale: 0.05,
    epoch: EPOCH,
    clock: () => now,
    sigma: { lagSeconds: 3600 }
  })
})
afterAll(() => emulator.stop())

interface V2Run {
  readonly status: string
  readonly refreshed_at: string
  readonly id: string
  readonly result: {
    readonly inline: { readonly rows: ReadonlyArray<Record<string, unknown>> }
    readonly file: {
      readonly download_url: { readonly url: string }
      readonly columns: ReadonlyArray<{ readonly name: string; readonly type: string }>
    }
  }
  readonly status_details: { readonly failed: { readonly error: { readonly message: string } } }
}

const v2 = async (sql: string): Promise<V2Run> => {
  const created = await fetch(`${emulator.url}/v2/data/query_runs`, {
    method: "POST",
    headers,
    body: JSON.stringify({ query: { sql } })
  })
  expect(created.status).toBe(200)
  const run = (await created.json()) as { id: string; status: string }
  expect(run.status).toBe("running")
  const deadline = Date.now() + 20_000
  for (;;) {
    const r = await fetch(`${emulator.url}/v2/data/query_runs/${run.id}?include[]=result.inline`, { headers })
    const body = (await r.json()) as V2Run
    if (body.status !== "running") return body
    if (Date.now() > deadline) throw new Error("query run did not finish")
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe("Sigma", () => {
  it("runs SQL on the account's data as of refreshed_at, inline and as CSV", async () => {
    const run = await v2("SELECT id, amount, created FROM balance_transactions ORDER BY created, id")
    expect(run.status).toBe("succeeded")
    expect(run.refreshed_at).toBe(new Date((EPOCH - 3600) * 1000).toISOString())
    const truth = emulator
      .truth("balance_transaction")
      .filter((t) => t.created! <= EPOCH - 3600)
      .sort((a, b) => a.created! - b.created! || (a.id < b.id ? -1 : 1))
    expect(truth.length).toBeGreaterThan(10)
    expect(run.result.inline.rows).toEqual(
      truth.map((t) => ({ id: t.id, amount: t.amount, created: new Date(t.created! * 1000).toISOString() }))
    )
    expect(run.id).toMatch(/^qrun_/)
    expect(run.result.file.columns).toEqual([
      { name: "id", type: "varchar" },
      { name: "amount", type: "bigint" },
      { name: "created", type: "timestamp" }
    ])
    // the truth of the Sigma table, as tests read it
    const sigmaTruth = emulator
      .sigmaTruth("balance_transactions")
      .map((r) => ({ id: r.id, amount: r.amount, created: `${String(r.created)}.000Z` }))
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id! < b.id! ? -1 : 1))
    expect(sigmaTruth).toEqual(run.result.inline.rows)
    const csv = await (await fetch(run.result.file.download_url.url)).text()
    const lines = csv.trim().split("\n")
    expect(lines[0]).toBe("id,amount,created")
    expect(lines.length).toBe(truth.length + 1)
    expect(lines[1]).toBe(
      `${truth[0]!.id},${truth[0]!.amount},${new Date(truth[0]!.created! * 1000).toISOString().slice(0, 19).replace("T", " ")}`
    )
  })

  it("hides what was created after refreshed_at until a later run", async () => {
    const stripe = client(emulator, "sk_test_sigma")
    const customer = await stripe.customers.create({ email: "late@example.com" })
    const first = await v2(`SELECT id FROM customers WHERE id = '${customer.id}'`)
    expect(first.result.inline.rows).toEqual([])
    now += 3601 * 1000
    const later = await v2(`SELECT id, email FROM customers WHERE id = '${customer.id}'`)
    expect(later.result.inline.rows).toEqual([{ id: customer.id, email: "late@example.com" }])
  })

  it("has the Trino functions Sigma queries use", async () => {
    const run = await v2(
      "SELECT to_unixtime(from_unixtime(1700000000)) AS t, approx_distinct(customer_id) AS customers, date_diff('day', from_unixtime(0), from_unixtime(86400 * 3)) AS days FROM charges"
    )
    const distinct = new Set(emulator.truth("charge").map((c) => c.customer)).size
    expect(run.result.inline.rows).toEqual([{ t: 1700000000, customers: distinct, days: 3 }])
    const formats = await v2(
      "SELECT date_format(from_unixtime(1700000000), '%Y-%m-%d %H:%i:%s') AS a, format_datetime(from_unixtime(1700000000), 'yyyy-MM-dd') AS b, date_trunc('day', from_unixtime(1700000000)) AS c"
    )
    expect(formats.result.inline.rows).toEqual([
      { a: "2023-11-14 22:13:20", b: "2023-11-14", c: "2023-11-14T00:00:00.000Z" }
    ])
  })

  it("fails a bad query with the engine's message, and answers the older query runs API with a CSV file", async () => {
    const failed = await v2("SELECT nope FROM charges")
    expect(failed.status).toBe("failed")
    expect(failed.status_details.failed.error.message).toMatch(/nope/)

    const stripe = client(emulator, "sk_test_sigma")
    const run = (await stripe.rawRequest("POST", "/v1/sigma/query_runs", {
      sql: "SELECT count(*) AS n FROM coupons"
    })) as unknown as { id: string }
    const deadline = Date.now() + 20_000
    let done: { status: string; result: { file: string } | null }
    for (;;) {
      done = (await stripe.rawRequest("GET", `/v1/sigma/query_runs/${run.id}`, {})) as unknown as typeof done
      if (done.status !== "running" || Date.now() > deadline) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(done.status).toBe("succeeded")
    const csv = await fetch(`${emulator.url}/v1/files/${done.result!.file}/contents`, { headers })
    expect(await csv.text()).toBe(`n\n${emulator.truth("coupon").length}\n`)
  })

  it("answers Stripe's error when Sigma is not enabled", async () => {
    const off = await startEmulator({
      seed: "sigma-off",
      scale: 0.01,
      generate: false,
      sigma: { enabled: false }
    })
    try {
      const r = await fetch(`${off.url}/v2/data/query_runs`, {
        method: "POST",
        headers,
        body: JSON.stringify({ query: { sql: "SELECT 1" } })
      })
      expect(r.status).toBe(400)
      const body = (await r.json()) as { error: { message: string } }
      expect(body.error.message).toMatch(/Sigma is not enabled/)
    } finally {
      await off.stop()
    }
  })
})
