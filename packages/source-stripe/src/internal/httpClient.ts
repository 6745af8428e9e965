/**
 * The Stripe SDK's Node HTTP client with one change: a response body is read as the Buffers the
 * socket delivers and decoded and parsed once at its end, instead of being decoded chunk by chunk
 * into a string that grows by concatenation.
 *
 * Why: a list page is 50–500 kB. With many requests in flight, a body takes long enough to arrive
 * that its string chunks survive young-generation collections and are copied into the old
 * generation, only to die as soon as the page is parsed: the SDK's body strings were about a
 * quarter of everything a backfill promoted. Buffers live outside the JavaScript heap, and the one
 * string decoded at the end dies young.
 */
import Stripe from "stripe"

type Headers = Parameters<Stripe.HttpClient["makeRequest"]>[4]

interface Readable {
  on(event: "data", listener: (chunk: Buffer) => void): unknown
  once(event: "error", listener: (error: unknown) => void): unknown
  once(event: "close" | "end", listener: () => void): unknown
  readonly complete?: boolean
}

const isReadable = (u: unknown): u is Readable =>
  typeof u === "object" && u !== null && typeof (u as { on?: unknown }).on === "function"

class BufferedResponse extends Stripe.HttpClientResponse {
  constructor(
    private readonly inner: Stripe.HttpClientResponse,
    private readonly timedOut: () => boolean
  ) {
    super(inner.getStatusCode(), inner.getHeaders())
  }

  override getRawResponse(): unknown {
    return this.inner.getRawResponse()
  }

  override toStream(streamCompleteCallback: () => void): unknown {
    return this.inner.toStream(streamCompleteCallback)
  }

  dispose(): void {
    this.inner.dispose?.()
  }

  override toJSON(): Promise<unknown> {
    const res = this.inner.getRawResponse()
    // not a Node response (cannot happen with the Node client): the SDK's own reading
    if (!isReadable(res)) return this.inner.toJSON()
    return new Promise((resolve, reject) => {
      const chunks: Array<Buffer> = []
      const bodyError = (error: unknown) =>
        Stripe.HttpClient.makeResponseBodyError(
          this.timedOut() ? Stripe.HttpClient.makeTimeoutError() : error
        )
      res.on("data", (chunk) => {
        chunks.push(chunk)
      })
      // as the SDK does: a body that stalls or is cut short is a failure, not a hang
      res.once("error", (error) => reject(bodyError(error)))
      res.once("close", () => {
        if (res.complete === false) reject(bodyError(null))
      })
      res.once("end", () => {
        try {
          const body =
            chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
          chunks.length = 0
          resolve(this._parseResponseBody(body))
        } catch (e) {
          reject(e)
        }
      })
    })
  }
}

/**
 * The SDK's Node client (keep-alive agents, its timeout handling), its responses read as Buffers.
 *
 * @internal
 */
export class BufferedHttpClient extends Stripe.HttpClient {
  private readonly inner = Stripe.createNodeHttpClient()

  override getClientName(): string {
    return this.inner.getClientName()
  }

  override makeRequest(
    host: string,
    port: string,
    path: string,
    method: string,
    headers: Headers,
    requestData: string,
    protocol: string,
    timeout: number
  ): Promise<Stripe.HttpClientResponse> {
    const started = Date.now()
    // the SDK's client destroys the request when `timeout` has passed: a body that fails after that
    // is reported as the timeout, as the SDK's own reading does
    const timedOut = () => Date.now() - started >= timeout
    return this.inner
      .makeRequest(host, port, path, method, headers, requestData, protocol, timeout)
      .then((res) => new BufferedResponse(res, timedOut))
  }
}
