/** Stripe's list semantics: limit, starting_after / ending_before, created ranges, has_more, expand. */
import { invalidRequest, RawReply, resourceMissing, type StripeApiError } from "../Router.js"
import {
  type Account,
  type Collection,
  compareAsc,
  lowerBoundIn,
  positionIn,
  type StripeObject,
  toJsonBuffer
} from "../Store.js"
import { embedded, embeddedList, includable } from "./objects.js"

export interface CreatedRange {
  readonly gt?: number
  readonly gte?: number
  readonly lt?: number
  readonly lte?: number
}

export interface ListParams {
  readonly limit: number
  readonly startingAfter: string | undefined
  readonly endingBefore: string | undefined
  readonly created: CreatedRange | undefined
  readonly expand: ReadonlyArray<string>
}

const INT = /^-?\d+$/

export const parseInteger = (v: unknown, param: string): number => {
  if (typeof v === "number" && Number.isInteger(v)) return v
  if (typeof v === "string" && INT.test(v)) return Number(v)
  throw invalidRequest(`Invalid integer: ${typeof v === "string" ? v : JSON.stringify(v)}`, param)
}

const optString = (v: unknown, param: string): string | undefined => {
  if (v === undefined || v === "") return undefined
  if (typeof v !== "string") throw invalidRequest(`Invalid string: ${JSON.stringify(v)}`, param)
  return v
}

export const parseExpand = (input: Record<string, unknown>): ReadonlyArray<string> => {
  const e = input.expand
  if (e === undefined) return []
  if (Array.isArray(e)) return e.filter((x): x is string => typeof x === "string")
  if (typeof e === "object" && e !== null)
    return Object.values(e).filter((x): x is string => typeof x === "string")
  if (typeof e === "string") return [e]
  return []
}

export const parseCreated = (v: unknown, name = "created"): CreatedRange | undefined => {
  if (v === undefined || v === "") return undefined
  if (typeof v === "string") {
    const t = parseInteger(v, name)
    return { gte: t, lte: t }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidRequest(`Invalid ${name}`, name)
  const r: { gt?: number; gte?: number; lt?: number; lte?: number } = {}
  for (const [k, x] of Object.entries(v)) {
    if (k !== "gt" && k !== "gte" && k !== "lt" && k !== "lte")
      throw invalidRequest(`Received unknown parameter: ${name}[${k}]`, `${name}[${k}]`)
    r[k] = parseInteger(x, `${name}[${k}]`)
  }
  return r
}

export const parseListParams = (input: Record<string, unknown>): ListParams => {
  let limit = 10
  if (input.limit !== undefined && input.limit !== "") {
    limit = parseInteger(input.limit, "limit")
    if (limit < 1) throw invalidRequest("This value must be greater than or equal to 1.", "limit")
    if (limit > 100) throw invalidRequest("This value must be less than or equal to 100.", "limit")
  }
  const startingAfter = optString(input.starting_after, "starting_after")
  const endingBefore = optString(input.ending_before, "ending_before")
  if (startingAfter !== undefined && endingBefore !== undefined)
    throw invalidRequest(
      "You may only specify one of these parameters: ending_before, starting_after.",
      "ending_before"
    )
  return {
    limit,
    startingAfter,
    endingBefore,
    created: parseCreated(input.created),
    expand: parseExpand(input)
  }
}

export interface Page {
  readonly data: ReadonlyArray<StripeObject>
  readonly hasMore: boolean
}

/** `[lo, hi)` of the ascending `items` whose `created` is in the range. */
const rangeOf = (items: ReadonlyArray<StripeObject>, r: CreatedRange | undefined): [number, number] => {
  if (r === undefined) return [0, items.length]
  let lo = 0
  let hi = items.length
  if (r.gte !== undefined) lo = Math.max(lo, lowerBoundIn(items, r.gte))
  if (r.gt !== undefined) lo = Math.max(lo, lowerBoundIn(items, r.gt + 1))
  if (r.lte !== undefined) hi = Math.min(hi, lowerBoundIn(items, r.lte + 1))
  if (r.lt !== undefined) hi = Math.min(hi, lowerBoundIn(items, r.lt))
  return [lo, hi]
}

/**
 * One page of a collection in Stripe's order (newest first), with an optional filter. A cursor that
 * is not a live object of the collection is Stripe's `resource_missing` on that parameter.
 *
 * `subset` (ascending by `(created, id)`, e.g. a group of {@link Collection.group}) holds every object
 * of the collection that can pass `filter`: the page is read from it alone, so that a list filtered
 * by a parent costs O(page + log n) instead of a scan of the collection. Created ranges and cursors
 * are binary searches in either case.
 */
export const pageCollection = (
  c: Collection,
  p: ListParams,
  filter?: (o: StripeObject) => boolean,
  cursorMissing?: (id: string, param: string) => StripeApiError,
  subset?: ReadonlyArray<StripeObject>
): Page => {
  const items = subset ?? c.items
  let [lo, hi] = rangeOf(items, p.created)
  const missing = cursorMissing ?? ((id: string, param: string) => resourceMissing(c.type, id, param, 400))
  if (p.endingBefore !== undefined) {
    const cur = c.get(p.endingBefore)
    if (cur === undefined) throw missing(p.endingBefore, "ending_before")
    // the objects after the cursor (it need not be in `subset`: its place there is the same)
    const at = positionIn(items, cur)
    lo = Math.max(lo, items[at]?.id === cur.id ? at + 1 : at)
    const out: Array<StripeObject> = []
    let i = lo
    for (; i < hi && out.length < p.limit; i++)
      if (filter === undefined || filter(items[i]!)) out.push(items[i]!)
    let hasMore = false
    for (; i < hi; i++)
      if (filter === undefined || filter(items[i]!)) {
        hasMore = true
        break
      }
    return { data: out.reverse(), hasMore }
  }
  if (p.startingAfter !== undefined) {
    const cur = c.get(p.startingAfter)
    if (cur === undefined) throw missing(p.startingAfter, "starting_after")
    hi = Math.min(hi, positionIn(items, cur))
  }
  if (filter === undefined) {
    const from = Math.max(lo, hi - p.limit)
    const out: Array<StripeObject> = []
    for (let i = hi - 1; i >= from; i--) out.push(items[i]!)
    return { data: out, hasMore: from > lo }
  }
  const out: Array<StripeObject> = []
  let i = hi - 1
  for (; i >= lo && out.length < p.limit; i--) if (filter(items[i]!)) out.push(items[i]!)
  let hasMore = false
  for (; i >= lo; i--)
    if (filter(items[i]!)) {
      hasMore = true
      break
    }
  return { data: out, hasMore }
}

/** One page of an array already in list order (embedded lists: invoice lines, subscription items, …). */
export const pageArray = (all: ReadonlyArray<StripeObject>, p: ListParams, object: string): Page => {
  let from = 0
  let to = all.length
  if (p.startingAfter !== undefined) {
    const i = all.findIndex((o) => o.id === p.startingAfter)
    if (i < 0) throw resourceMissing(object, p.startingAfter, "starting_after", 400)
    from = i + 1
  }
  if (p.endingBefore !== undefined) {
    const i = all.findIndex((o) => o.id === p.endingBefore)
    if (i < 0) throw resourceMissing(object, p.endingBefore, "ending_before", 400)
    to = i
    from = Math.max(0, to - p.limit)
    return { data: all.slice(from, to), hasMore: from > 0 }
  }
  return { data: all.slice(from, from + p.limit), hasMore: from + p.limit < to }
}

/** The list response, serialised once (objects' JSON is cached by identity). */
export const listReply = (
  page: Page,
  url: string,
  account: Account,
  expand: ReadonlyArray<string>
): RawReply => {
  const paths = expand.filter((e) => e.startsWith("data.")).map((e) => e.slice(5).split("."))
  const parts: Array<Buffer> = [LIST_HEAD]
  for (let i = 0; i < page.data.length; i++) {
    if (i > 0) parts.push(COMMA)
    const o = page.data[i]!
    parts.push(
      paths.length === 0 ? toJsonBuffer(o) : Buffer.from(JSON.stringify(expandAll(o, paths, account)))
    )
  }
  parts.push(Buffer.from(`],"has_more":${page.hasMore},"url":${JSON.stringify(url)}}`))
  return new RawReply(Buffer.concat(parts))
}

const LIST_HEAD = Buffer.from('{"object":"list","data":[')
const COMMA = Buffer.from(",")

export const expandAll = (
  o: StripeObject,
  paths: ReadonlyArray<ReadonlyArray<string>>,
  account: Account
): StripeObject => {
  let r: unknown = o
  for (const p of paths) r = expandPath(r, p, 0, account)
  return r as StripeObject
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

/** Replaces the id at `path` by the object it names (Stripe's `expand[]`), through lists and arrays. */
const expandPath = (v: unknown, path: ReadonlyArray<string>, depth: number, account: Account): unknown => {
  if (depth >= path.length) return v
  if (Array.isArray(v)) return v.map((x) => expandPath(x, path, depth, account))
  if (!isRecord(v)) return v
  const key = path[depth]!
  let child = v[key]
  if (child === undefined) {
    // Lists that Stripe includes only when expanded (checkout line items, a customer's tax ids)
    const spec = typeof v.object === "string" ? embedded[v.object] : undefined
    const drawn = typeof v.object === "string" ? includable[v.object]?.[key] : undefined
    if (spec?.expandOnly === true && spec.field === key && typeof v.id === "string") {
      child = embeddedList(account.children.get(v.id) ?? [], spec.url(v.id))
    } else if (drawn !== undefined && typeof v.id === "string") {
      // newest first, as Stripe lists them
      const owned = account
        .collection(drawn.type)
        .group(drawn.owner, (o) => o[drawn.owner], v.id)
        .slice()
        .reverse()
      child = embeddedList(owned, drawn.url(v.id))
    } else return v
  }
  if (typeof child === "string") {
    const found = account.find(child) ?? account.deleted.get(child)
    if (found === undefined) return v
    child = account.find(child) === undefined ? { id: found.id, object: found.object, deleted: true } : found
  }
  return { ...v, [key]: expandPath(child, path, depth + 1, account) }
}

export { compareAsc }
