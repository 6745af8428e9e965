/**
 * Stripe's form encoding of query parameters: `a=1`, `a[b]=1`, `a[0]=x` for arrays. Keys that are
 * already bracketed (`owner[customer]`, `expand[]`) are kept as they are.
 */
const encodeKey = (key: string) => encodeURIComponent(key).replace(/%5B/g, "[").replace(/%5D/g, "]")

const pairs = (prefix: string, value: unknown, out: Array<string>): void => {
  if (value === undefined) return
  if (value === null) {
    out.push(`${encodeKey(prefix)}=`)
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) pairs(`${prefix}[${i}]`, v, out)
  } else if (typeof value === "object") {
    for (const [k, v] of Object.entries(value)) pairs(`${prefix}[${k}]`, v, out)
  } else {
    out.push(`${encodeKey(prefix)}=${encodeURIComponent(String(value))}`)
  }
}

/** `path` with `params` appended to its query string (a path may already carry one). */
export const withQuery = (path: string, params: Readonly<Record<string, unknown>> | undefined): string => {
  const out: Array<string> = []
  for (const [k, v] of Object.entries(params ?? {})) pairs(k, v, out)
  if (out.length === 0) return path
  return `${path}${path.includes("?") ? "&" : "?"}${out.join("&")}`
}

/** The endpoint a request counts against: method and path, ids replaced (`GET /v1/invoices/{id}/lines`). */
export const endpointOf = (method: string, path: string): string => {
  const bare = path.split("?")[0]
  const segments = bare.split("/").map((s, i) => (i > 2 && /[0-9]/.test(s) ? "{id}" : s))
  return `${method.toUpperCase()} ${segments.join("/")}`
}
