import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import Stripe from "stripe"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type EmulatorHandle, startEmulator } from "../src/Emulator.js"
import { client, eventually } from "./helpers.js"

interface Received {
  readonly body: string
  readonly signature: string
}

/** A webhook receiver that answers with the statuses it is given, in turn (then 200). */
const receiver = async (statuses: Array<number> = []) => {
  const received: Array<Received> = []
  const server: Server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      received.push({
        body: Buffer.concat(chunks).toString("utf8"),
        signature: String(req.headers["stripe-signature"])
      })
      res.writeHead(statuses.shift() ?? 200)
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) }
}

let emulator: EmulatorHandle
let stripe: Stripe
const verifier = new Stripe("sk_test_verify")

beforeAll(async () => {
  emulator = await startEmulator({
    seed: "webhooks",
    scale: 0.05,
    connectedAccounts: 1,
    connectedScale: 0.02,
    webhooks: { retry: { initialDelayMs: 5, factor: 2, maxAttempts: 4 } }
  })
  stripe = client(emulator)
})
afterAll(() => emulator.stop())

describe("webhook endpoints", () => {
  it("CRUD: the secret only at creation, enabled_events, metadata, deleted", async () => {
    const ep = await stripe.webhookEndpoints.create({
      url: "http://127.0.0.1:1/none",
      enabled_events: ["customer.created"],
      metadata: { team: "a" }
    })
    expect(ep.secret).toMatch(/^whsec_/)
    expect(ep.enabled_events).toEqual(["customer.created"])
    expect(ep.metadata).toEqual({ team: "a" })
    const got = await stripe.webhookEndpoints.retrieve(ep.id)
    expect(got.secret).toBeUndefined()
    const upd = await stripe.webhookEndpoints.update(ep.id, {
      enabled_events: ["*"],
      disabled: true,
      metadata: { team: "b" }
    })
    expect(upd.enabled_events).toEqual(["*"])
    expect(upd.status).toBe("disabled")
    expect(upd.metadata).toEqual({ team: "b" })
    expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).toContain(ep.id)
    expect(await stripe.webhookEndpoints.del(ep.id)).toEqual({
      id: ep.id,
      object: "webhook_endpoint",
      deleted: true
    })
    expect(await stripe.webhookEndpoints.retrieve(ep.id)).toEqual({
      id: ep.id,
      object: "webhook_endpoint",
      deleted: true
    })
  })

  it("delivers every matching event signed as Stripe signs; constructEvent accepts them and rejects a tampered body", async () => {
    const r = await receiver()
    const all = await stripe.webhookEndpoints.create({ url: r.url, enabled_events: ["*"] })
    const r2 = await receiver()
    const onlyUpdates = await stripe.webhookEndpoints.create({
      url: r2.url,
      enabled_events: ["customer.updated"]
    })
    try {
      const c = await stripe.customers.create({ name: "Hook" })
      await stripe.customers.update(c.id, { name: "Hook 2" })
      await stripe.customers.del(c.id)
      await eventually(
        () => (r.received.length >= 3 && r2.received.length >= 1 ? true : undefined),
        5000,
        "deliveries"
      )
      const events = r.received.map((d) => verifier.webhooks.constructEvent(d.body, d.signature, all.secret!))
      expect(events.map((e) => e.type).sort()).toEqual([
        "customer.created",
        "customer.deleted",
        "customer.updated"
      ])
      for (const e of events)
        expect(await stripe.events.retrieve(e.id)).toMatchObject({ id: e.id, type: e.type })
      expect(
        r2.received.map(
          (d) => verifier.webhooks.constructEvent(d.body, d.signature, onlyUpdates.secret!).type
        )
      ).toEqual(["customer.updated"])
      const d0 = r.received[0]!
      expect(() =>
        verifier.webhooks.constructEvent(d0.body.replace("Hook", "Hack"), d0.signature, all.secret!)
      ).toThrow(Stripe.errors.StripeSignatureVerificationError)
      expect(() => verifier.webhooks.constructEvent(d0.body, d0.signature, onlyUpdates.secret!)).toThrow(
        Stripe.errors.StripeSignatureVerificationError
      )
      expect(d0.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/)
      const deliveries = await eventually(
        () => {
          const ds = emulator.deliveries().filter((d) => d.endpointId === all.id)
          return ds.length === 3 ? ds : undefined
        },
        5000,
        "3 delivery records"
      )
      expect(deliveries.every((d) => d.ok && d.status === 200 && d.attempt === 1)).toBe(true)
    } finally {
      await stripe.webhookEndpoints.del(all.id)
      await stripe.webhookEndpoints.del(onlyUpdates.id)
      await r.close()
      await r2.close()
    }
  })

  it("retries non-2xx answers with backoff until delivered", async () => {
    const r = await receiver([500, 503])
    const ep = await stripe.webhookEndpoints.create({ url: r.url, enabled_events: ["product.created"] })
    try {
      const p = await stripe.products.create({ name: "Retry" })
      const attempts = await eventually(
        () => {
          const ds = emulator.deliveries().filter((d) => d.endpointId === ep.id)
          return ds.length >= 3 ? ds : undefined
        },
        5000,
        "third attempt recorded"
      )
      expect(attempts.map((d) => [d.attempt, d.status, d.ok])).toEqual([
        [1, 500, false],
        [2, 503, false],
        [3, 200, true]
      ])
      expect(attempts[2]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(15) // 5 ms then 10 ms
      const event = verifier.webhooks.constructEvent(
        r.received[2]!.body,
        r.received[2]!.signature,
        ep.secret!
      )
      expect((event.data.object as Stripe.Product).id).toBe(p.id)
      await eventually(
        () => emulator.account().collection("event").get(event.id)?.pending_webhooks === 0 || undefined,
        2000,
        "pending_webhooks 0"
      )
    } finally {
      await stripe.webhookEndpoints.del(ep.id)
      await r.close()
    }
  })

  it("connect endpoints receive connected accounts' events, which carry `account`", async () => {
    const r = await receiver()
    const ep = await stripe.webhookEndpoints.create({
      url: r.url,
      enabled_events: ["customer.created"],
      connect: true
    })
    try {
      const acct = emulator.connectedAccountIds[0]!
      await client(emulator, "sk_test_x", { stripeAccount: acct }).customers.create({ name: "C" })
      await stripe.customers.create({ name: "platform only" })
      await eventually(() => (r.received.length >= 1 ? true : undefined), 5000, "connect delivery")
      const e = verifier.webhooks.constructEvent(r.received[0]!.body, r.received[0]!.signature, ep.secret!)
      expect(e.account).toBe(acct)
      expect(r.received.length).toBe(1)
    } finally {
      await stripe.webhookEndpoints.del(ep.id)
      await r.close()
    }
  })

  it("duplicate and out-of-order delivery knobs", async () => {
    const noisy = await startEmulator({
      seed: "noisy",
      scale: 0,
      generate: false,
      webhooks: { duplicateRate: 1, reorderWindowMs: 40 }
    })
    const r = await receiver()
    try {
      const s = client(noisy)
      const ep = await s.webhookEndpoints.create({ url: r.url, enabled_events: ["*"] })
      const created: Array<string> = []
      for (let i = 0; i < 20; i++) created.push((await s.customers.create({ name: `n${i}` })).id)
      await eventually(() => (r.received.length >= 40 ? true : undefined), 5000, "40 deliveries")
      const ids = r.received.map(
        (d) =>
          (verifier.webhooks.constructEvent(d.body, d.signature, ep.secret!).data.object as { id: string }).id
      )
      // every event twice
      expect([...new Set(ids)].sort()).toEqual([...created].sort())
      for (const id of created) expect(ids.filter((x) => x === id).length).toBe(2)
      // not in creation order
      const firsts = ids.filter((id, i) => ids.indexOf(id) === i)
      expect(firsts).not.toEqual(created)
      const records = await eventually(
        () => (noisy.deliveries().length >= 40 ? noisy.deliveries() : undefined),
        5000,
        "40 delivery records"
      )
      expect(records.filter((d) => d.duplicate).length).toBe(20)
    } finally {
      await noisy.stop()
      await r.close()
    }
  })
})
