import { describe, expect, it } from "vitest"
import { type CreatedRange, type ListParams, pageCollection } from "../src/internal/list.js"
import { Rng } from "../src/internal/prng.js"
import { Collection, type StripeObject } from "../src/Store.js"

const SEED = process.env.STORE_SEED ?? "store-index-1"
const customerOf = (o: StripeObject) => o.customer

const ids = (xs: ReadonlyArray<StripeObject>) => xs.map((x) => x.id)

/** Every group of the `customer` index equals a scan of `items`, in the same (ascending) order. */
const expectIndexRight = (c: Collection, customers: ReadonlyArray<string | null>) => {
  let total = 0
  for (const k of customers) {
    const g = c.group("customer", customerOf, k)
    expect(ids(g), `group ${k}`).toEqual(ids(c.items.filter((o) => o.customer === k)))
    total += g.length
  }
  expect(total).toBe(c.size)
}

describe("Collection secondary indexes", () => {
  it("stay equal to a scan across load, insert, replace and remove, and page like a filtered scan", () => {
    console.log(`store index seed: ${SEED} (STORE_SEED=… to replay)`)
    const rng = new Rng(SEED)
    const customers: Array<string | null> = [null, ...Array.from({ length: 12 }, (_, i) => `cus_${i}`)]
    let n = 0
    const fresh = (): StripeObject => ({
      id: `pm_${String(n++).padStart(5, "0")}${rng.chars(4)}`,
      object: "payment_method",
      // few distinct seconds, so that many objects share one and order by id
      created: 1_700_000_000 + rng.int(0, 40),
      customer: rng.pick(customers),
      type: rng.pick(["card", "sepa_debit"])
    })
    const c = new Collection("payment_method")
    c.load(Array.from({ length: 150 }, fresh))
    expectIndexRight(c, customers) // built from the loaded items
    c.load(Array.from({ length: 50 }, fresh)) // rebuilt by a second load
    expectIndexRight(c, customers)

    for (let round = 0; round < 40; round++) {
      for (let op = 0; op < 25; op++) {
        const r = rng.next()
        if (r < 0.4 || c.size === 0) c.insert(fresh())
        else if (r < 0.75) {
          const old = c.items[rng.int(0, c.size - 1)]!
          // half the updates move the object to another group, half keep it (a new value in place)
          c.replace({ ...old, customer: rng.chance(0.5) ? rng.pick(customers) : old.customer, n: op })
        } else c.remove(c.items[rng.int(0, c.size - 1)]!.id)
      }
      expectIndexRight(c, customers)
      const replaced = c.items.filter((o) => o.n !== undefined)
      for (const o of replaced) expect(c.group("customer", customerOf, o.customer)).toContain(o)

      // a page from the index is the page of the filtered scan: same objects, order and has_more
      for (let q = 0; q < 30; q++) {
        const key = rng.pick(customers)
        const cursor = c.size > 0 && rng.chance(0.6) ? c.items[rng.int(0, c.size - 1)]!.id : undefined
        const backwards = rng.chance(0.3)
        const t = 1_700_000_000 + rng.int(0, 40)
        const created: CreatedRange | undefined = rng.pick([
          undefined,
          { gte: t },
          { lt: t },
          { gt: t - 5, lte: t + 5 },
          { gte: t, lte: t }
        ])
        const p: ListParams = {
          limit: rng.int(1, 12),
          startingAfter: backwards ? undefined : cursor,
          endingBefore: backwards ? cursor : undefined,
          created,
          expand: []
        }
        const byType = rng.chance(0.3) ? (o: StripeObject) => o.type === "card" : undefined
        const scan = pageCollection(c, p, (o) => o.customer === key && (byType?.(o) ?? true))
        const indexed = pageCollection(c, p, byType, undefined, c.group("customer", customerOf, key))
        expect(ids(indexed.data), JSON.stringify({ key, p })).toEqual(ids(scan.data))
        expect(indexed.hasMore, JSON.stringify({ key, p })).toBe(scan.hasMore)
      }
    }
    // an unknown cursor is the same error either way
    const p: ListParams = {
      limit: 3,
      startingAfter: "pm_gone",
      endingBefore: undefined,
      created: undefined,
      expand: []
    }
    expect(() =>
      pageCollection(c, p, undefined, undefined, c.group("customer", customerOf, "cus_1"))
    ).toThrow(/No such payment method: 'pm_gone'/)
  })
})
