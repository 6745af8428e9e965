/**
 * Per-account state of the emulator: one {@link Collection} per object type, each kept sorted the
 * way Stripe lists it (newest first: `created` desc, then `id` desc), plus tombstones of deleted
 * objects and the full embedded lists (invoice lines, subscription items, …) by parent id.
 *
 * Objects are immutable values: a change replaces the object (`{ ...old, ...changes }`), it never
 * mutates one in place. Events and responses can therefore hold references to them, and the JSON of
 * an object is cached by identity.
 */

/** A Stripe API object as JSON. */
export interface StripeObject {
  readonly id: string
  readonly object: string
  readonly created?: number
  readonly [key: string]: unknown
}

const createdOf = (o: StripeObject): number => (typeof o.created === "number" ? o.created : 0)

/** `(created, id)` ascending: negative when `a` is older than `b`. */
export const compareAsc = (a: StripeObject, b: StripeObject): number => {
  const ca = createdOf(a)
  const cb = createdOf(b)
  if (ca !== cb) return ca - cb
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

const jsonCache = new WeakMap<object, Buffer>()
/** The UTF-8 JSON of `o`, cached by object identity (objects are never mutated). */
export const toJsonBuffer = (o: object): Buffer => {
  let b = jsonCache.get(o)
  if (b === undefined) {
    b = Buffer.from(JSON.stringify(o), "utf8")
    jsonCache.set(o, b)
  }
  return b
}

/** `JSON.stringify(o)` (through the cache). */
export const toJson = (o: object): string => toJsonBuffer(o).toString("utf8")

/** Index in `items` (ascending by `(created, id)`) of `o`, or where it would be inserted. */
export const positionIn = (items: ReadonlyArray<StripeObject>, o: StripeObject): number => {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareAsc(items[mid]!, o) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** First index in `items` (ascending by `(created, id)`) whose `created` is ≥ `t`. */
export const lowerBoundIn = (items: ReadonlyArray<StripeObject>, t: number): number => {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (createdOf(items[mid]!) < t) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Inserts `o` into `items`, kept ascending by `(created, id)`. */
const insertSorted = (items: Array<StripeObject>, o: StripeObject): void => {
  const n = items.length
  if (n === 0 || compareAsc(items[n - 1]!, o) < 0) items.push(o)
  else items.splice(positionIn(items, o), 0, o)
}

/**
 * A secondary index of a collection: the live objects grouped by `keyOf(o)` (compared as `Map`
 * keys, i.e. like `===`), each group ascending by `(created, id)` like `items`.
 */
interface SecondaryIndex {
  readonly keyOf: (o: StripeObject) => unknown
  readonly groups: Map<unknown, Array<StripeObject>>
}

const NONE: ReadonlyArray<StripeObject> = []

/**
 * The live objects of one type. `items` is ascending by `(created, id)`; Stripe's list order is the
 * reverse, so lists walk it from the end. Secondary indexes (by a field's value, for lists filtered
 * by a parent) are built at their first use and kept up to date by every change after it.
 */
export class Collection {
  readonly type: string
  readonly items: Array<StripeObject> = []
  private readonly byId = new Map<string, StripeObject>()
  private readonly indexes = new Map<string, SecondaryIndex>()
  constructor(type: string) {
    this.type = type
  }
  get size(): number {
    return this.items.length
  }
  get(id: string): StripeObject | undefined {
    return this.byId.get(id)
  }
  has(id: string): boolean {
    return this.byId.has(id)
  }
  /** Every live object, newest first. */
  all(): Array<StripeObject> {
    return this.items.slice().reverse()
  }
  /** Index of `o` (by its `(created, id)`) in `items`, or where it would be inserted. */
  position(o: StripeObject): number {
    return positionIn(this.items, o)
  }
  /** First index whose `created` is ≥ `t`. */
  lowerBound(t: number): number {
    return lowerBoundIn(this.items, t)
  }
  /**
   * The live objects `o` with `keyOf(o) === key`, ascending by `(created, id)` like `items` (do not
   * mutate). `name` identifies the index: every call with one name must pass the same `keyOf`.
   */
  group(name: string, keyOf: (o: StripeObject) => unknown, key: unknown): ReadonlyArray<StripeObject> {
    let index = this.indexes.get(name)
    if (index === undefined) {
      index = { keyOf, groups: new Map() }
      for (const o of this.items) addTo(index, o, true)
      this.indexes.set(name, index)
    }
    return index.groups.get(key) ?? NONE
  }
  insert(o: StripeObject): void {
    if (this.byId.has(o.id)) throw new Error(`duplicate id ${o.id}`)
    this.byId.set(o.id, o)
    insertSorted(this.items, o)
    for (const index of this.indexes.values()) addTo(index, o, false)
  }
  /** Adds many objects at once (start-up): one sort instead of one insertion each. */
  load(objects: ReadonlyArray<StripeObject>): void {
    for (const o of objects) {
      if (this.byId.has(o.id)) throw new Error(`duplicate id ${o.id}`)
      this.byId.set(o.id, o)
      this.items.push(o)
    }
    this.items.sort(compareAsc)
    for (const index of this.indexes.values()) {
      index.groups.clear()
      for (const o of this.items) addTo(index, o, true)
    }
  }
  /** Replaces the object with the same id (its `created` must not change). */
  replace(o: StripeObject): void {
    const old = this.byId.get(o.id)
    if (old === undefined) throw new Error(`no ${this.type} ${o.id}`)
    const i = this.position(old)
    this.items[i] = o
    this.byId.set(o.id, o)
    for (const index of this.indexes.values()) {
      const before = index.keyOf(old)
      const after = index.keyOf(o)
      // SameValueZero, as Map keys compare
      if (before === after || (isNaNValue(before) && isNaNValue(after))) {
        const g = index.groups.get(before)!
        g[positionIn(g, old)] = o
      } else {
        removeFrom(index, old)
        addTo(index, o, false)
      }
    }
  }
  remove(id: string): StripeObject | undefined {
    const old = this.byId.get(id)
    if (old === undefined) return undefined
    this.items.splice(this.position(old), 1)
    this.byId.delete(id)
    for (const index of this.indexes.values()) removeFrom(index, old)
    return old
  }
}

const isNaNValue = (v: unknown): boolean => typeof v === "number" && Number.isNaN(v)

/** Adds `o` to its group; `last` when `o` is known to sort after every object already indexed. */
const addTo = (index: SecondaryIndex, o: StripeObject, last: boolean): void => {
  const key = index.keyOf(o)
  const g = index.groups.get(key)
  if (g === undefined) index.groups.set(key, [o])
  else if (last) g.push(o)
  else insertSorted(g, o)
}

const removeFrom = (index: SecondaryIndex, o: StripeObject): void => {
  const key = index.keyOf(o)
  const g = index.groups.get(key)
  if (g === undefined) return
  const i = positionIn(g, o)
  if (g[i]?.id !== o.id) return
  if (g.length === 1) index.groups.delete(key)
  else g.splice(i, 1)
}

/** Id prefix → object type, for `expand[]` and lookups by id. */
export const typeOfPrefix: Readonly<Record<string, string>> = {
  acct: "account",
  txn: "balance_transaction",
  ch: "charge",
  py: "charge",
  cs: "checkout.session",
  cn: "credit_note",
  cus: "customer",
  dp: "dispute",
  du: "dispute",
  evt: "event",
  in: "invoice",
  ii: "invoiceitem",
  pi: "payment_intent",
  pm: "payment_method",
  po: "payout",
  prod: "product",
  price: "price",
  plan: "plan",
  promo: "promotion_code",
  issfr: "radar.early_fraud_warning",
  re: "refund",
  prv: "review",
  seti: "setup_intent",
  sub: "subscription",
  sub_sched: "subscription_schedule",
  txi: "tax_id",
  txr: "tax_rate",
  tr: "transfer",
  we: "webhook_endpoint"
}

export const prefixOf = (id: string): string => {
  if (id.startsWith("sub_sched_")) return "sub_sched"
  const i = id.indexOf("_")
  return i < 0 ? id : id.slice(0, i)
}

/** The state of one Stripe account (the platform or a connected account). */
export class Account {
  readonly id: string
  /** Undefined for the platform account. */
  readonly connected: boolean
  private readonly collections = new Map<string, Collection>()
  /** Last state of every deleted object, by id. */
  readonly deleted = new Map<string, StripeObject>()
  /** The complete embedded lists (invoice lines, subscription items, …), by parent id. */
  readonly children = new Map<string, Array<StripeObject>>()
  constructor(id: string, connected: boolean) {
    this.id = id
    this.connected = connected
  }
  collection(type: string): Collection {
    let c = this.collections.get(type)
    if (c === undefined) {
      c = new Collection(type)
      this.collections.set(type, c)
    }
    return c
  }
  types(): Array<string> {
    return [...this.collections.keys()].sort()
  }
  /** A live object by id, of any type whose prefix is known (coupons and plans need `type`). */
  find(id: string, type?: string): StripeObject | undefined {
    const t = type ?? typeOfPrefix[prefixOf(id)]
    if (t === undefined) return undefined
    return this.collections.get(t)?.get(id)
  }
  /** Number of live objects across types (events and webhook endpoints excluded). */
  objectCount(): number {
    let n = 0
    for (const [type, c] of this.collections) if (type !== "event" && type !== "webhook_endpoint") n += c.size
    return n
  }
  /** Every object of a type as it is now: live ones newest first, then the deleted ones marked. */
  truth(type: string): Array<StripeObject> {
    const live = this.collections.get(type)?.all() ?? []
    const gone: Array<StripeObject> = []
    for (const o of this.deleted.values()) if (o.object === type) gone.push({ ...o, deleted: true })
    return [...live, ...gone]
  }
}
