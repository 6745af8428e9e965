/**
 * @since 0.1.0
 */
export * as Backfill from "./Backfill.js"
export * as Catalog from "./Catalog.js"
export * as EventsPoller from "./EventsPoller.js"
export * as ManagedWebhooks from "./ManagedWebhooks.js"
export * as Revalidate from "./Revalidate.js"
export * as StripeClient from "./StripeClient.js"
export * as StripeError from "./StripeError.js"
export * as StripeEvent from "./StripeEvent.js"
export * as Webhook from "./Webhook.js"
