/**
 * Typed failures of Stripe requests. Each carries Stripe's message, error code, HTTP status and
 * request id (`req_…`) when Stripe sent them, and never the API key.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface Details {
  readonly message: string
  /** HTTP status, when a response arrived. */
  readonly status?: number | undefined
  /** Stripe's `error.code` (`resource_missing`, `rate_limit`, …). */
  readonly code?: string | undefined
  /** Stripe's `error.type` (`invalid_request_error`, …). */
  readonly type?: string | undefined
  /** The `Request-Id` header, for Stripe support. */
  readonly requestId?: string | undefined
  /** Method and path of the request (no query string). */
  readonly endpoint?: string | undefined
}

/**
 * 429 after the retries ran out.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripeRateLimited extends Data.TaggedError("StripeRateLimited")<Details> {}

/**
 * 5xx after the retries ran out.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripeServerError extends Data.TaggedError("StripeServerError")<Details> {}

/**
 * No response (connection refused or reset, timeout) after the retries ran out.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripeNetworkError extends Data.TaggedError("StripeNetworkError")<Details> {}

/**
 * 401: the API key is wrong, revoked or of another mode. Never retried: fail fast.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripeAuthenticationError extends Data.TaggedError("StripeAuthenticationError")<Details> {}

/**
 * 403: a restricted key without this permission, or a product the account has not enabled. Callers
 * skip the resource with a warning.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripePermissionError extends Data.TaggedError("StripePermissionError")<Details> {}

/**
 * 404 / `resource_missing`: the object (or, for a list, a `starting_after` object) does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripeNotFound extends Data.TaggedError("StripeNotFound")<
  Details & { readonly param?: string | undefined }
> {}

/**
 * Any other 4xx (400, 402, 409, …): the request itself is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class StripeInvalidRequest extends Data.TaggedError("StripeInvalidRequest")<
  Details & { readonly param?: string | undefined }
> {}

/**
 * Every failure of a Stripe request.
 *
 * @since 0.1.0
 * @category models
 */
export type StripeError =
  | StripeRateLimited
  | StripeServerError
  | StripeNetworkError
  | StripeAuthenticationError
  | StripePermissionError
  | StripeNotFound
  | StripeInvalidRequest
