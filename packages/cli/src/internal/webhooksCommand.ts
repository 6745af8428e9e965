/**
 * `stripe-sync webhooks create <url> | list | get <id> | delete <id>`: webhook endpoints managed by
 * this tool (created with `metadata[managed_by]=stripe-sync`, their secrets kept in
 * `<schema>._managed_webhooks`). Only endpoints created from this database are ever listed or
 * deleted.
 */
import { Args, Command, Options } from "@effect/cli"
import { PgManagedWebhooks } from "@stripe-sync/sink-postgres"
import { ManagedWebhooks, StripeClient } from "@stripe-sync/source-stripe"
import { Console, Effect, Layer, Option, Redacted } from "effect"
import * as SharedOptions from "../SharedOptions.js"
import { sinkLayer, stripeLayer, withLogging } from "./runtime.js"

/** The Postgres store of managed endpoints as the source's port. */
const storeLayer = Layer.effect(ManagedWebhooks.Store, PgManagedWebhooks.make())

const provide =
  (options: SharedOptions.Shared) =>
  <A, E>(effect: Effect.Effect<A, E, StripeClient.StripeClient | ManagedWebhooks.Store>) =>
    effect.pipe(
      Effect.provide(
        Layer.merge(stripeLayer(options), storeLayer.pipe(Layer.provideMerge(sinkLayer(options))))
      ),
      withLogging(options)
    )

const describe = (e: ManagedWebhooks.Endpoint): string =>
  `${e.id}  ${e.url}${e.connect ? " (connect)" : ""}  events: ${e.enabledEvents.join(",")}  ${Option.match(
    e.stripe,
    {
      onNone: () => "GONE from Stripe",
      onSome: (s) => String(s.status ?? "enabled")
    }
  )}  created ${e.createdAt.toISOString()}`

const create = Command.make(
  "create",
  {
    ...SharedOptions.shared,
    url: Args.text({ name: "url" }).pipe(
      Args.withDescription("The public URL Stripe posts to, e.g. https://example.com/webhooks")
    ),
    events: Options.text("events").pipe(
      Options.withDescription("Event types, comma-separated (default: every event, *)."),
      Options.optional
    ),
    connect: Options.boolean("connect").pipe(
      Options.withDescription("A Connect endpoint: receives the connected accounts' events.")
    ),
    showSecret: Options.boolean("show-secret").pipe(Options.withDescription("Print the signing secret."))
  },
  ({ url, events, connect, showSecret, ...options }) =>
    Effect.gen(function* () {
      const client = yield* StripeClient.StripeClient
      const endpoint = yield* ManagedWebhooks.findOrCreate(client, {
        url,
        connect,
        enabledEvents: Option.getOrUndefined(
          Option.map(events, (e) =>
            e
              .split(",")
              .map((s) => s.trim())
              .filter((s) => s.length > 0)
          )
        )
      })
      yield* Console.log(
        `${endpoint.created ? "created" : "exists"}: ${endpoint.id} ${endpoint.url}${endpoint.connect ? " (connect)" : ""}` +
          (showSecret
            ? `\nsecret: ${Redacted.value(endpoint.secret)}`
            : " (secret kept in the database; --show-secret prints it)")
      )
    }).pipe(provide(options))
).pipe(
  Command.withDescription(
    "Create the webhook endpoint for a URL (or return the one this database already manages); its secret is kept in the database."
  )
)

const list = Command.make("list", SharedOptions.shared, (options) =>
  Effect.gen(function* () {
    const client = yield* StripeClient.StripeClient
    const endpoints = yield* ManagedWebhooks.list(client)
    if (endpoints.length === 0) yield* Console.log("no managed webhook endpoints")
    for (const e of endpoints) yield* Console.log(describe(e))
  }).pipe(provide(options))
).pipe(Command.withDescription("List the webhook endpoints managed from this database."))

const get = Command.make(
  "get",
  { ...SharedOptions.shared, id: Args.text({ name: "id" }).pipe(Args.withDescription("we_…")) },
  ({ id, ...options }) =>
    Effect.gen(function* () {
      const client = yield* StripeClient.StripeClient
      yield* Console.log(describe(yield* ManagedWebhooks.get(client, id)))
    }).pipe(provide(options))
).pipe(Command.withDescription("Show one managed webhook endpoint."))

const remove = Command.make(
  "delete",
  { ...SharedOptions.shared, id: Args.text({ name: "id" }).pipe(Args.withDescription("we_…")) },
  ({ id, ...options }) =>
    Effect.gen(function* () {
      const client = yield* StripeClient.StripeClient
      yield* ManagedWebhooks.remove(client, id)
      yield* Console.log(`deleted ${id}`)
    }).pipe(provide(options))
).pipe(Command.withDescription("Delete a managed webhook endpoint (never one this database did not create)."))

/**
 * `stripe-sync webhooks …`.
 *
 * @since 0.1.0
 */
export const webhooks = Command.make("webhooks").pipe(
  Command.withDescription(
    "Webhook endpoints managed by stripe-sync: create <url> | list | get <id> | delete <id>."
  ),
  Command.withSubcommands([create, list, get, remove])
)
