/**
 * A webhook pipeline composed from the public packages, with one projection of our own beside the
 * standard `stripe.*` tables: `customer_emails`, the current email of every customer.
 *
 *   DATABASE_URL=postgres://… STRIPE_WEBHOOK_SECRET=whsec_… STRIPE_ACCOUNT_ID=acct_… PORT=4242 \
 *     tsx examples/webhook-server.ts
 *
 * Stripe's webhooks are verified, appended to the event log, acknowledged once stored, and folded
 * by both projections (each with its own checkpoint; either can be rebuilt from the log).
 */
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { type CheckpointStore, type EventLog, Projection } from "@stripe-sync/core"
import { ProjectionError } from "@stripe-sync/core/PipelineError"
import { PgProjection, PgSink, ProjectionTarget, StripeTables } from "@stripe-sync/sink-postgres"
import { Catalog, Webhook } from "@stripe-sync/source-stripe"
import { Config, Effect, Layer, Redacted, Schedule } from "effect"

/**
 * Our own projection: one row per customer with its latest email. Order as the stripe tables do it:
 * a newer `versionTs` wins; within one second the higher event id (webhooks can arrive, and be
 * appended, in any order); a delete is final.
 */
export const customerEmails = Projection.make<SqlClient.SqlClient | ProjectionTarget.ProjectionTarget>({
  name: "customer_emails",
  version: 1,
  handles: ["customer.created", "customer.updated", "customer.deleted", "customer.snapshot"],
  migrations: [
    {
      id: 1,
      name: "create customer_emails",
      run: Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* ProjectionTarget.ProjectionTarget
        yield* sql`CREATE TABLE ${sql(schema)}.customer_emails (
          account_id text NOT NULL,
          customer_id text NOT NULL,
          email text,
          deleted boolean NOT NULL DEFAULT false,
          version_ts bigint NOT NULL,
          event_id text NOT NULL,
          PRIMARY KEY (account_id, customer_id)
        )`
      })
    }
  ],
  // Set-based: the batch's latest state per customer, then one upsert for all of them.
  apply: (events) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* ProjectionTarget.ProjectionTarget
      const latest = new Map<
        string,
        { a: string; c: string; e: string | null; d: boolean; v: number; i: string }
      >()
      for (const event of events) {
        const key = `${event.accountId}/${event.objectId}`
        const deleted = event.type === "customer.deleted" || event.data.deleted === true
        const previous = latest.get(key)
        if (
          previous !== undefined &&
          (previous.d ||
            (!deleted &&
              (previous.v > event.versionTs || (previous.v === event.versionTs && previous.i > event.id))))
        )
          continue
        latest.set(key, {
          a: event.accountId,
          c: event.objectId,
          e: typeof event.data.email === "string" ? event.data.email : null,
          d: deleted,
          v: event.versionTs,
          i: event.id
        })
      }
      if (latest.size === 0) return
      yield* sql`
        INSERT INTO ${sql(schema)}.customer_emails AS t (account_id, customer_id, email, deleted, version_ts, event_id)
        SELECT r.a, r.c, r.e, r.d, r.v, r.i
        FROM jsonb_to_recordset(${JSON.stringify([...latest.values()])}::jsonb)
          AS r(a text, c text, e text, d boolean, v bigint, i text)
        ON CONFLICT (account_id, customer_id) DO UPDATE
          SET email = CASE WHEN excluded.deleted THEN t.email ELSE excluded.email END,
              deleted = excluded.deleted,
              version_ts = excluded.version_ts,
              event_id = excluded.event_id
          WHERE NOT t.deleted
            AND (excluded.deleted OR (excluded.version_ts, excluded.event_id) > (t.version_ts, t.event_id))`
    }).pipe(
      Effect.mapError(
        (cause) => new ProjectionError({ projection: "customer_emails", message: String(cause), cause })
      )
    )
})

/** The standard `stripe.*` tables. */
export const stripeTables = StripeTables.projection({ tables: Catalog.tableSpecs(Catalog.all) })

export interface ServerConfig {
  readonly databaseUrl: Redacted.Redacted<string>
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** The account of events without `account` (GET /v1/account of your key). */
  readonly platformAccountId: string
  readonly port: number
  readonly host?: string
}

/** Both projections, running (each migrates its tables first) for the life of the layer. */
/** Runs a projection for the life of the scope, restarted if it fails (e.g. a long database outage). */
const runForever = <R>(projection: Projection.Projection<R>) =>
  PgProjection.run(projection).pipe(
    Effect.tapErrorCause((cause) => Effect.logError(`${projection.name} stopped; restarting`, cause)),
    Effect.retry(Schedule.spaced("5 seconds")),
    Effect.forkScoped
  )

const ProjectionsLive = Layer.scopedDiscard(
  Effect.all([runForever(stripeTables), runForever(customerEmails)])
)

/** The whole server: HTTP, webhook source, both projections, on the Postgres sink. */
export const WebhookServerLive = (config: ServerConfig) =>
  Layer.unwrapEffect(
    Effect.map(Effect.context<EventLog.EventLog | CheckpointStore.CheckpointStore>(), (ports) =>
      Webhook.layer({
        secrets: config.secrets,
        platformAccountId: config.platformAccountId,
        // `/metrics` reports how far each projection is behind the log.
        projectionLag: Webhook.checkpointLag.pipe(
          Effect.provide(ports),
          Effect.orElseSucceed(() => [])
        )
      })
    )
  ).pipe(
    Layer.provide(
      NodeHttpServer.layer(createServer, { port: config.port, ...(config.host ? { host: config.host } : {}) })
    ),
    Layer.provide(ProjectionsLive),
    Layer.provideMerge(PgSink.layerFromUrl({ url: config.databaseUrl }))
  )

const fromEnv = Config.all({
  databaseUrl: Config.redacted("DATABASE_URL"),
  secret: Config.string("STRIPE_WEBHOOK_SECRET"),
  platformAccountId: Config.string("STRIPE_ACCOUNT_ID"),
  port: Config.port("PORT").pipe(Config.withDefault(4242))
})

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Layer.unwrapEffect(
    Effect.map(fromEnv, (c) =>
      WebhookServerLive({
        databaseUrl: c.databaseUrl,
        secrets: c.secret.split(",").map((s) => Redacted.make(s.trim())),
        platformAccountId: c.platformAccountId,
        port: c.port
      })
    )
  ).pipe(Layer.launch, NodeRuntime.runMain)
}
