import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as StripeEvent from "../src/StripeEvent.js"

const event = (overrides: Record<string, unknown> = {}) => ({
  id: "evt_1",
  object: "event",
  api_version: "2026-10-28.endive",
  created: 1_700_000_000,
  type: "customer.updated",
  data: {
    object: { id: "cus_1", object: "customer", email: "a@example.com" },
    previous_attributes: { email: null }
  },
  ...overrides
})

describe("StripeEvent.toEnvelope", () => {
  it("maps a platform event field by field", () => {
    const receivedAt = new Date(1_700_000_005_000)
    const result = StripeEvent.toEnvelope(event(), {
      source: "webhook",
      platformAccountId: "acct_platform",
      receivedAt
    })
    const e = Either.getOrThrow(result)
    assert.deepStrictEqual(
      { ...e },
      {
        id: "evt_1",
        type: "customer.updated",
        source: "webhook",
        accountId: "acct_platform",
        objectType: "customer",
        objectId: "cus_1",
        versionTs: 1_700_000_000,
        apiVersion: "2026-10-28.endive",
        data: { id: "cus_1", object: "customer", email: "a@example.com" },
        receivedAt
      }
    )
  })

  it("takes a Connect event's account, and keys an object without id by its type", () => {
    const e = Either.getOrThrow(
      StripeEvent.toEnvelope(
        event({
          account: "acct_connected",
          type: "balance.available",
          data: { object: { object: "balance" } }
        }),
        { source: "events_api", platformAccountId: "acct_platform" }
      )
    )
    assert.strictEqual(e.accountId, "acct_connected")
    assert.strictEqual(e.objectId, "balance")
    assert.strictEqual(e.source, "events_api")
  })

  it("refuses what is not a Stripe event, saying which field is wrong", () => {
    const cases: ReadonlyArray<[unknown, RegExp]> = [
      [[], /not a JSON object/],
      [event({ object: "customer" }), /not "event"/],
      [event({ id: "" }), /"id"/],
      [event({ id: "evt_1 " }), /"id"/],
      [event({ type: " customer.updated" }), /"type"/],
      [event({ account: "acct 1\n" }), /"account"/],
      [event({ data: { object: { id: " cus_1", object: "customer" } } }), /data\.object\.id/],
      [event({ data: { object: { id: "cus_1", object: "customer\t" } } }), /data\.object\.object/],
      [event({ created: "yesterday" }), /"created"/],
      [event({ data: {} }), /data\.object/],
      [event({ data: { object: { id: "x" } } }), /data\.object\.object/]
    ]
    for (const [raw, message] of cases) {
      const result = StripeEvent.toEnvelope(raw, { source: "webhook", platformAccountId: "acct_p" })
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.match(result.left.message, message)
    }
  })
})
