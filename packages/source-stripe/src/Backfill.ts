/**
 * The list backfill: every object of every selected resource, as snapshots, within `created`
 * bounds. Each resource's `created` span is a set of ranges, one cursor row each (`[gte, lt)` plus
 * the last `(created, id)` read). Workers lease ranges, read pages of 100 newest first, and split
 * the unfetched remainder of a range whenever a page says `has_more` and more parallelism is
 * wanted, so the rate budget stays in use. A range's cursor row is written in the same transaction
 * as the page's events, so a crash resumes exactly where it stopped; several processes share one
 * backfill through the leases.
 *
 * @since 0.1.0
 */
import * as CursorStore from "@stripe-sync/core/CursorStore"
import * as Event from "@stripe-sync/core/Event"
import type { CursorWrite } from "@stripe-sync/core/EventLog"
import { SourceError, type StoreError } from "@stripe-sync/core/PipelineError"
import * as Source from "@stripe-sync/core/Source"
import { Chunk, Clock, Data, Duration, Effect, Option, Ref, Schema, Sink, Stream } from "effect"
import type * as StripeClient from "./StripeClient.js"
import type * as StripeError from "./StripeError.js"

/** The name the backfill's cursors are stored under. */
export const sourceName = "backfill"

/**
 * The name of the plan rows: one per account (key: the account id) while its backfill is under way,
 * holding the resources it planned, so that a restart resumes the unfinished ranges without reading
 * again the resources that had completed. Removed once no range is left; the next backfill then
 * reads everything again.
 */
export const planSourceName = "backfill_plan"

const Plan = Schema.Struct({ objects: Schema.Array(Schema.String) })
const decodePlan = Schema.decodeUnknownOption(Plan)

/**
 * What the backfill needs of a resource (the generated catalog has it).
 *
 * @since 0.1.0
 * @category models
 */
export interface Resource {
  /** Stripe's object name, e.g. `customer`. */
  readonly object: string
  /** The list endpoint, e.g. `/v1/customers`. */
  readonly listPath: string
  /** Parameters that make the list complete, e.g. `{ status: "all" }` for subscriptions. */
  readonly listParams?: Readonly<Record<string, string>> | undefined
  /** Whether the endpoint takes `created` filters (then ranges are split in parallel). */
  readonly supportsCreated: boolean
  /** Truncated embedded lists to complete from their own endpoint (`{id}` is the parent's id). */
  readonly embeddedLists?: ReadonlyArray<{ readonly field: string; readonly path: string }> | undefined
  /**
   * A list that Stripe serves per parent only (payment methods per customer): the backfill pages
   * the parent list and, for each parent, the child list with `param=<parent id>`.
   */
  readonly perParent?:
    | {
        readonly listPath: string
        readonly param: string
        readonly supportsCreated: boolean
        /**
         * The parent's includable list of these objects (a customer's `tax_ids`): the parent list is
         * read with `expand[]=data.<field>`, and only a list that says `has_more` is paged further
         * from `path` (`{id}` is the parent's id), instead of one list request per parent.
         */
        readonly expand?: { readonly field: string; readonly path: string } | undefined
        /**
         * A list every child refers to (active entitlements each name a feature,
         * `/v1/entitlements/features`): when it is empty on an account, no parent has children there
         * and the request per parent is skipped. When it cannot be read, every parent is asked.
         */
        readonly requires?: string | undefined
      }
    | undefined
}

/**
 * A list page as the client returns it, with the `Date` header of Stripe's response as unix seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page {
  readonly data: ReadonlyArray<Record<string, unknown>>
  readonly hasMore: boolean
  readonly versionTs: number
}

/**
 * Why a list request failed, as far as the backfill cares.
 *
 * @since 0.1.0
 * @category models
 */
export type ListFailure =
  /** `starting_after` names an object that no longer exists. */
  | { readonly _tag: "CursorObjectMissing" }
  /** The account cannot list this resource (not enabled, restricted key): skip it with a warning. */
  | { readonly _tag: "NotAvailable"; readonly message: string }
  /** Anything else, after the client's own retries: fails the backfill. */
  | { readonly _tag: "Failed"; readonly message: string; readonly retryable: boolean }

/**
 * The list call the backfill makes; `source-stripe`'s client provides one.
 *
 * @since 0.1.0
 * @category models
 */
export type ListFn = (
  path: string,
  params: Readonly<Record<string, unknown>>,
  options: { readonly account: string | undefined }
) => Effect.Effect<Page, ListFailure>

/**
 * An account to backfill: the platform (`connected: false`) or a connected account, whose
 * requests carry `Stripe-Account`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Account {
  readonly id: string
  readonly connected: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly list: ListFn
  readonly resources: ReadonlyArray<Resource>
  readonly accounts: ReadonlyArray<Account>
  /** The API version recorded on every event. */
  readonly apiVersion: string | null
  /** `created` bounds (unix seconds, inclusive). */
  readonly createdGte?: number | undefined
  readonly createdLte?: number | undefined
  /** Pages fetched at once (default 8). Ranges are split until about this many are open per process. */
  readonly concurrency?: number
  /** Page size (default 100, Stripe's maximum). */
  readonly pageSize?: number
  /**
   * This worker's lease owner name (default: random). A lease expires `leaseTtl` (default 30 s) after
   * it was taken or last renewed, so ranges of a killed process are taken over then; it is renewed
   * after a page once a third of that time has passed (not after every page: a commit each).
   */
  readonly owner?: string
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** Called for each resource the account cannot list. */
  readonly onSkipped?: (account: Account, resource: Resource, message: string) => Effect.Effect<void>
  /** Called after each page with the objects it held. */
  readonly onProgress?: (account: Account, resource: Resource, objects: number) => Effect.Effect<void>
}

/**
 * One unfinished range of one resource of one account, as stored in its cursor row.
 *
 * @since 0.1.0
 * @category models
 */
export const RangeCursor = Schema.Struct({
  account: Schema.String,
  connected: Schema.Boolean,
  object: Schema.String,
  gte: Schema.Number,
  lt: Schema.Number,
  after: Schema.NullOr(Schema.Struct({ created: Schema.Number, id: Schema.String }))
})
export type RangeCursor = typeof RangeCursor.Type

const decodeRange = Schema.decodeUnknownOption(RangeCursor)

/**
 * The most events of pages merged into one append. While an append runs, the pages read meanwhile
 * are merged into the next one (their events, and their cursor writes in order): one transaction and
 * one commit for several pages instead of one each, and nothing waits when the log keeps up.
 */
const mergedEvents = 1000

const mergePages = Sink.foldWeighted({
  initial: [] as ReadonlyArray<Source.Batch>,
  maxCost: mergedEvents,
  cost: (_, batch: Source.Batch) => Math.max(1, batch.events.length),
  body: (pages, batch) => [...pages, batch]
})

/** One batch of several pages: their events, and their cursor writes in order (the last write of a key wins). */
const merged = (pages: ReadonlyArray<Source.Batch>): Source.Batch =>
  pages.length === 1
    ? pages[0]!
    : { events: pages.flatMap((p) => p.events), cursors: pages.flatMap((p) => p.cursors) }

const rangeKey = (r: Pick<RangeCursor, "account" | "object" | "gte">) =>
  `${r.account}/${r.object}/${String(r.gte).padStart(11, "0")}`

const write = (r: RangeCursor): CursorWrite => ({ source: sourceName, key: rangeKey(r), value: r })

const remove = (r: RangeCursor): CursorWrite => ({ source: sourceName, key: rangeKey(r), value: null })

const createdOf = (o: Record<string, unknown>): number => (typeof o.created === "number" ? o.created : 0)

type EmbeddedList = { object?: string; data?: Array<Record<string, unknown>>; has_more?: boolean }

const isList = (list: unknown): list is EmbeddedList =>
  typeof list === "object" && list !== null && (list as EmbeddedList).object === "list"

const isTruncated = (list: unknown): list is EmbeddedList => isList(list) && list.has_more === true

/** Whether any embedded list of the object still has items to page (checked without an effect). */
const hasTruncatedList = (resource: Pick<Resource, "embeddedLists">, object: Record<string, unknown>) => {
  const lists = resource.embeddedLists
  if (lists === undefined) return false
  for (const embedded of lists) if (isTruncated(object[embedded.field])) return true
  return false
}

/**
 * Completes the truncated embedded lists of an object by paging their own endpoints, so the event's
 * `data` holds every item and says `has_more: false`.
 *
 * @since 0.1.0
 */
export const completeLists = (
  listFn: ListFn,
  resource: Pick<Resource, "embeddedLists">,
  account: Account,
  object: Record<string, unknown>
): Effect.Effect<Record<string, unknown>, ListFailure> =>
  Effect.gen(function* () {
    let out = object
    for (const embedded of resource.embeddedLists ?? []) {
      const list = object[embedded.field]
      if (!isTruncated(list)) continue
      const items = [...(list.data ?? [])]
      const path = embedded.path.replace("{id}", encodeURIComponent(String(object.id)))
      let hasMore = true
      while (hasMore) {
        const last = items[items.length - 1]
        const page = yield* listFn(
          path,
          { limit: 100, ...(last ? { starting_after: last.id } : {}) },
          { account: account.connected ? account.id : undefined }
        )
        items.push(...page.data)
        hasMore = page.hasMore && page.data.length > 0
      }
      out = { ...out, [embedded.field]: { ...list, data: items, has_more: false } }
    }
    return out
  })

/** Every item of a per-parent list for one parent. */
const childItems = (options: Options, resource: Resource, account: Account, parentId: string) =>
  Effect.gen(function* () {
    const items: Array<Record<string, unknown>> = []
    let versionTs = 0
    let hasMore = true
    while (hasMore) {
      const last = items[items.length - 1]
      const page = yield* options.list(
        resource.listPath,
        {
          ...resource.listParams,
          [resource.perParent!.param]: parentId,
          limit: 100,
          ...(last ? { starting_after: last.id } : {})
        },
        { account: account.connected ? account.id : undefined }
      )
      items.push(...page.data)
      versionTs = Math.max(versionTs, page.versionTs)
      hasMore = page.hasMore && page.data.length > 0
    }
    return { items, versionTs }
  })

/**
 * The backfill as a Source. It plans each (account, resource) that has no unfinished range into one
 * range over the whole `created` span, then works the ranges until none is left.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Source.Source => {
  const concurrency = Math.max(1, options.concurrency ?? 8)
  const pageSize = options.pageSize ?? 100
  const owner = options.owner ?? `backfill-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
  const ttl = options.leaseTtl ?? Duration.seconds(30)
  const renewAfter = Duration.toMillis(Duration.decode(ttl)) / 3
  const resources = new Map(options.resources.map((r) => [r.object, r]))
  const accounts = new Map(options.accounts.map((a) => [a.id, a]))
  const lt = (options.createdLte === undefined ? Math.floor(Date.now() / 1000) + 60 : options.createdLte) + 1
  // Stripe began in 2010: nothing was created before, and starting there saves empty range splits
  const gte = options.createdGte ?? 1_262_304_000

  const sourceError = (message: string, retryable: boolean) =>
    new SourceError({ source: sourceName, message, retryable })

  return Source.makeRaw<never, never>({
    name: sourceName,
    read: Stream.unwrap(
      Effect.gen(function* () {
        const store = yield* CursorStore.CursorStore
        const existing = yield* store.list(sourceName)
        const planned = new Set(existing.map((c) => c.key.split("/").slice(0, 2).join("/")))
        const plans = new Map(
          (yield* store.list(planSourceName)).flatMap((c) =>
            Option.match(decodePlan(c.value), {
              onNone: () => [],
              onSome: (p) => [[c.key, p.objects] as const]
            })
          )
        )
        const plan: Array<CursorWrite> = []
        for (const account of options.accounts) {
          // resources of an interrupted backfill with no range left had completed: not read again
          const done = new Set(plans.get(account.id) ?? [])
          plan.push({
            source: planSourceName,
            key: account.id,
            value: { objects: [...new Set([...done, ...options.resources.map((r) => r.object)])] }
          })
          for (const resource of options.resources) {
            if (planned.has(`${account.id}/${resource.object}`) || done.has(resource.object)) continue
            plan.push(
              write({
                account: account.id,
                connected: account.connected,
                object: resource.object,
                gte,
                lt,
                after: null
              })
            )
          }
        }
        if (plan.length > 0) yield* store.put(plan)
        // ranges per resource currently open, to decide whether a page should split its range
        const open = yield* Ref.make(new Map<string, number>())
        const ranges = plan.filter((p) => p.source === sourceName)
        for (const c of [...existing.map((e) => e.key), ...ranges.map((p) => p.key)]) {
          const prefix = c.split("/").slice(0, 2).join("/")
          yield* Ref.update(open, (m) => new Map(m).set(prefix, (m.get(prefix) ?? 0) + 1))
        }
        const totalOpen = Effect.map(Ref.get(open), (m) => [...m.values()].reduce((a, b) => a + b, 0))
        /** A range read to its end: one fewer open range of its resource. */
        const closed = (range: RangeCursor) =>
          Ref.update(open, (m) => {
            const key = `${range.account}/${range.object}`
            return new Map(m).set(key, Math.max(0, (m.get(key) ?? 1) - 1))
          })
        /** Whether a list holds anything on an account (asked once per account and list). */
        const anyListed = yield* Effect.cachedFunction(
          (key: { readonly account: Account; readonly path: string }) =>
            options
              .list(key.path, { limit: 1 }, { account: key.account.connected ? key.account.id : undefined })
              .pipe(
                Effect.map((page) => page.data.length > 0),
                // unknown: every parent is asked, as without the check
                Effect.orElseSucceed(() => true)
              )
        )

        /** Reads one page of a range; returns the batch and the range to continue with (if any). */
        const pageOf = (
          range: RangeCursor
        ): Effect.Effect<
          { readonly batch: Source.Batch; readonly next: RangeCursor | undefined },
          SourceError
        > =>
          Effect.gen(function* () {
            const account = accounts.get(range.account) ?? { id: range.account, connected: range.connected }
            const resource = resources.get(range.object)
            if (resource === undefined) {
              // a resource no longer selected: drop its range
              return { batch: { events: [], cursors: [remove(range)] }, next: undefined }
            }
            const requires = resource.perParent?.requires
            if (
              requires !== undefined &&
              !(yield* anyListed(Data.struct({ account: Data.struct(account), path: requires })))
            ) {
              yield* Effect.logInfo(
                `${resource.object} of ${account.id}: nothing to read (${requires} is empty, so no parent has any)`
              )
              yield* closed(range)
              return { batch: { events: [], cursors: [remove(range)] }, next: undefined }
            }
            const listPath = resource.perParent?.listPath ?? resource.listPath
            const supportsCreated = resource.perParent?.supportsCreated ?? resource.supportsCreated
            const expand = resource.perParent?.expand
            const params: Record<string, unknown> = {
              ...(resource.perParent ? {} : resource.listParams),
              limit: pageSize,
              ...(supportsCreated ? { created: { gte: range.gte, lt: range.lt } } : {}),
              ...(expand ? { expand: [`data.${expand.field}`] } : {})
            }
            if (range.after) params.starting_after = range.after.id
            const request = (p: Record<string, unknown>) =>
              options.list(listPath, p, { account: account.connected ? account.id : undefined })
            const page = yield* request(params).pipe(
              Effect.catchIf(
                (f): f is Extract<ListFailure, { _tag: "CursorObjectMissing" }> =>
                  f._tag === "CursorObjectMissing" && range.after !== null,
                // the object we continued after was deleted: re-read its second by `created` alone
                () => {
                  const { starting_after: _, ...rest } = params
                  return request(
                    supportsCreated
                      ? { ...rest, created: { gte: range.gte, lt: range.after!.created + 1 } }
                      : rest
                  )
                }
              )
            )
            const events: Array<Event.Event> = []
            const snapshot = (object: Record<string, unknown>, versionTs: number) =>
              Event.snapshot({
                source: sourceName,
                accountId: account.id,
                objectType: typeof object.object === "string" ? object.object : resource.object,
                objectId: String(object.id),
                versionTs,
                apiVersion: options.apiVersion,
                data: object
              })
            if (resource.perParent) {
              const included = (parent: Record<string, unknown>) =>
                expand !== undefined ? parent[expand.field] : undefined
              const byRequest = (parent: Record<string, unknown>) => {
                const list = included(parent)
                return !isList(list) || list.has_more === true
              }
              const children = yield* Effect.forEach(
                page.data,
                (parent) => {
                  const list = included(parent)
                  if (!isList(list)) return childItems(options, resource, account, String(parent.id))
                  if (list.has_more !== true)
                    return Effect.succeed({ items: list.data ?? [], versionTs: page.versionTs })
                  // more than the parent carries: page the rest from the list's own endpoint
                  return Effect.map(
                    completeLists(
                      options.list,
                      { embeddedLists: [{ field: expand!.field, path: expand!.path }] },
                      account,
                      parent
                    ),
                    (complete) => ({
                      items: (complete[expand!.field] as EmbeddedList).data ?? [],
                      versionTs: page.versionTs
                    })
                  )
                },
                // every list included and complete: no effect (fiber) per parent
                { concurrency: page.data.some(byRequest) ? 16 : undefined }
              )
              for (const { items, versionTs } of children) {
                for (const item of items) events.push(snapshot(item, versionTs || page.versionTs))
              }
            } else {
              // most objects carry complete lists: only the others take an effect (and requests) each
              const objects = page.data.some((o) => hasTruncatedList(resource, o))
                ? yield* Effect.forEach(
                    page.data,
                    (o) =>
                      hasTruncatedList(resource, o)
                        ? completeLists(options.list, resource, account, o)
                        : Effect.succeed(o),
                    { concurrency: 4 }
                  )
                : page.data
              for (const o of objects) events.push(snapshot(o, page.versionTs))
            }
            if (options.onProgress) yield* options.onProgress(account, resource, events.length)
            const last = page.data[page.data.length - 1]
            if (!page.hasMore || last === undefined) {
              yield* closed(range)
              return { batch: { events, cursors: [remove(range)] }, next: undefined }
            }
            const after = { created: createdOf(last), id: String(last.id) }
            const remainderSpan = after.created - range.gte
            const wantSplit = supportsCreated && remainderSpan >= 2 && (yield* totalOpen) < concurrency * 2
            if (!wantSplit) {
              const next = { ...range, after }
              return { batch: { events, cursors: [write(next)] }, next }
            }
            // split the unfetched remainder [gte, after.created] in two: the newer half continues
            // after the last object read (a new row, for any worker); this worker takes the older half
            const mid = range.gte + Math.floor((remainderSpan + 1) / 2)
            const newer: RangeCursor = { ...range, gte: mid, lt: after.created + 1, after }
            const older: RangeCursor = { ...range, lt: mid, after: null }
            yield* Ref.update(open, (m) =>
              new Map(m).set(
                `${range.account}/${range.object}`,
                (m.get(`${range.account}/${range.object}`) ?? 1) + 1
              )
            )
            return { batch: { events, cursors: [write(older), write(newer)] }, next: older }
          }).pipe(
            Effect.catchAll((failure) => {
              if ("_tag" in failure && failure._tag === "NotAvailable") {
                const account = accounts.get(range.account) ?? {
                  id: range.account,
                  connected: range.connected
                }
                const resource = resources.get(range.object)
                return Effect.zipRight(
                  resource && options.onSkipped
                    ? options.onSkipped(account, resource, failure.message)
                    : Effect.void,
                  // drop every range of the resource: it cannot be listed on this account
                  Effect.succeed({
                    batch: { events: [], cursors: [remove(range)] },
                    next: undefined
                  })
                )
              }
              if (failure instanceof SourceError) return Effect.fail(failure)
              return Effect.fail(
                sourceError(
                  `listing ${range.object} of ${range.account} failed: ${"message" in failure ? failure.message : failure._tag}`,
                  "retryable" in failure ? failure.retryable : false
                )
              )
            })
          )

        /**
         * The next free range, waiting while others hold the last ones; none when all are done. The
         * leased key is recorded in `held` without a gap an interruption could fall into, so that the
         * worker's finalizer gives it back.
         */
        const nextRange = (
          held: Ref.Ref<ReadonlySet<string>>
        ): Effect.Effect<Option.Option<RangeCursor>, StoreError> =>
          Effect.gen(function* () {
            for (;;) {
              const leased = yield* Effect.uninterruptible(
                Effect.tap(store.lease(sourceName, { owner, ttl }), (l) =>
                  Option.isSome(l) ? Ref.update(held, (keys) => new Set(keys).add(l.value.key)) : Effect.void
                )
              )
              if (Option.isSome(leased)) {
                const decoded = decodeRange(leased.value.value)
                if (Option.isSome(decoded)) return decoded
                yield* Effect.logWarning(`dropping an unreadable backfill cursor ${leased.value.key}`)
                yield* store.put([{ source: sourceName, key: leased.value.key, value: null }])
                continue
              }
              const left = yield* store.list(sourceName)
              if (left.length === 0) return Option.none()
              yield* Effect.sleep("100 millis")
            }
          })

        /**
         * One worker: lease a range, page it to the end (renewing the lease after each page), lease
         * the next, until none is left. A lease it still holds is given back when the stream ends.
         */
        const worker = Stream.unwrapScoped(
          Effect.gen(function* () {
            // every key this worker leased: a row whose last batch is not yet stored must be given back too
            const held = yield* Ref.make<ReadonlySet<string>>(new Set())
            yield* Effect.addFinalizer(() =>
              Effect.flatMap(Ref.get(held), (keys) =>
                Effect.forEach(keys, (key) => Effect.ignore(store.release(sourceName, key, owner)), {
                  discard: true
                })
              )
            )
            // when this worker's lease was last taken or renewed
            let leasedAt = 0
            return Stream.paginateChunkEffect(Option.none<RangeCursor>(), (current) =>
              Effect.gen(function* () {
                if (Option.isNone(current)) leasedAt = yield* Clock.currentTimeMillis
                const range = Option.isSome(current) ? current : yield* nextRange(held)
                if (Option.isNone(range)) return [Chunk.empty<Source.Batch>(), Option.none()] as const
                const key = rangeKey(range.value)
                const { batch, next } = yield* pageOf(range.value)
                if (next === undefined)
                  return [Chunk.of(batch), Option.some(Option.none<RangeCursor>())] as const
                // renewed once a third of its time has passed, not after every page (a commit each)
                const now = yield* Clock.currentTimeMillis
                if (now - leasedAt < renewAfter) {
                  return [Chunk.of(batch), Option.some(Option.some(next))] as const
                }
                const kept = yield* store.renew(sourceName, key, { owner, ttl })
                leasedAt = now
                return [
                  Chunk.of(batch),
                  Option.some(kept ? Option.some(next) : Option.none<RangeCursor>())
                ] as const
              })
            )
          })
        )

        // once every range is done (and stored), the plans go: the next backfill reads everything.
        // Pages are merged only before this step, so it runs once every page has been appended.
        const finished = Stream.fromEffect(
          Effect.map(
            store.list(sourceName),
            (left): Source.Batch => ({
              events: [],
              cursors:
                left.length > 0
                  ? []
                  : options.accounts.map((a) => ({ source: planSourceName, key: a.id, value: null }))
            })
          )
        )
        return Stream.mergeAll(
          Array.from({ length: concurrency }, () => worker),
          {
            concurrency: "unbounded",
            // pages waiting for the merge besides the one each worker holds: while an append runs the
            // merge fills up to 1,000 events from them, and every page waiting beyond that is memory
            // that outlives young collections (each event holds its object and canonical text)
            bufferSize: 2
          }
        ).pipe(
          Stream.aggregate(mergePages),
          Stream.map(merged),
          Stream.concat(finished),
          Stream.filter((b) => b.events.length > 0 || b.cursors.length > 0)
        )
      })
    )
  })
}

const notEnabled =
  /not (been )?(set up|enabled|activated|available)|does not have access|only available|must (first )?be enabled|has not been activated|not supported for this account/i

/**
 * How a client error reads to the backfill: a `starting_after` object that is gone, a resource the
 * account cannot list (skipped), or a failure.
 *
 * @since 0.1.0
 * @category constructors
 */
export const classify = (error: StripeError.StripeError): ListFailure => {
  if (
    (error._tag === "StripeNotFound" || error._tag === "StripeInvalidRequest") &&
    error.param === "starting_after"
  ) {
    return { _tag: "CursorObjectMissing" }
  }
  if (error._tag === "StripePermissionError") return { _tag: "NotAvailable", message: error.message }
  if (error._tag === "StripeInvalidRequest" && notEnabled.test(error.message)) {
    return { _tag: "NotAvailable", message: error.message }
  }
  if (error._tag === "StripeNotFound" && error.param === undefined && error.code !== "resource_missing") {
    // an endpoint this account's API does not serve at all
    return { _tag: "NotAvailable", message: error.message }
  }
  return {
    _tag: "Failed",
    message: `${error._tag}: ${error.message}`,
    retryable:
      error._tag === "StripeRateLimited" ||
      error._tag === "StripeServerError" ||
      error._tag === "StripeNetworkError"
  }
}

/**
 * The backfill's list call over the Stripe client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const listWith =
  (client: StripeClient.Service): ListFn =>
  (path, params, options) =>
    client.list(path, params, { account: options.account }).pipe(
      Effect.map((page) => ({ data: page.data, hasMore: page.has_more, versionTs: page.versionTs })),
      Effect.mapError(classify)
    )

/**
 * The platform account of the key (`GET /v1/account`) and, when asked, its connected accounts
 * (`GET /v1/accounts`): `"all"`, or a list of ids.
 *
 * @since 0.1.0
 * @category constructors
 */
export const accounts = (
  client: StripeClient.Service,
  connected: "none" | "all" | ReadonlyArray<string> = "none"
): Effect.Effect<ReadonlyArray<Account>, StripeError.StripeError> =>
  Effect.gen(function* () {
    const out: Array<Account> = [{ id: yield* client.platformAccountId, connected: false }]
    if (connected === "none") return out
    if (connected !== "all") return [...out, ...connected.map((id) => ({ id, connected: true }))]
    let after: string | undefined
    for (;;) {
      const page = yield* client.list("/v1/accounts", {
        limit: 100,
        ...(after ? { starting_after: after } : {})
      })
      for (const a of page.data) out.push({ id: String(a.id), connected: true })
      const last = page.data[page.data.length - 1]
      if (!page.has_more || last === undefined) return out
      after = String(last.id)
    }
  })
