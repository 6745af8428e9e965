/** Effect metrics in the Prometheus text exposition format (version 0.0.4). */
import { MetricState, Option } from "effect"
import type * as MetricPair from "effect/MetricPair"

const escapeLabel = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const escapeHelp = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const metricName = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_")

const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra?: string) => {
  const parts = tags.map((t) => `${metricName(t.key)}="${escapeLabel(t.value)}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const num = (value: number | bigint): string =>
  typeof value === "bigint"
    ? value.toString()
    : Number.isFinite(value)
      ? String(value)
      : value > 0
        ? "+Inf"
        : value < 0
          ? "-Inf"
          : "NaN"

interface Family {
  type: string
  help: string
  lines: Array<string>
}

/** Renders a metrics snapshot; metrics sharing a name (different tags) form one family. */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const family = (name: string, type: string, help: Option.Option<string>): Family => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrElse(help, () => ""), lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = metricName(key.name)
    const state: unknown = pair.metricState
    const tags = key.tags
    if (MetricState.isCounterState(state)) {
      family(name, "counter", key.description).lines.push(`${name}${labels(tags)} ${num(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).lines.push(`${name}${labels(tags)} ${num(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", key.description)
      for (const [bound, count] of state.buckets) {
        if (!Number.isFinite(bound)) continue
        f.lines.push(`${name}_bucket${labels(tags, `le="${num(bound)}"`)} ${count}`)
      }
      f.lines.push(`${name}_bucket${labels(tags, 'le="+Inf"')} ${state.count}`)
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", key.description)
      for (const [q, value] of state.quantiles) {
        if (Option.isSome(value))
          f.lines.push(`${name}${labels(tags, `quantile="${q}"`)} ${num(value.value)}`)
      }
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", key.description)
      for (const [value, count] of state.occurrences) {
        f.lines.push(`${name}${labels(tags, `value="${escapeLabel(value)}"`)} ${count}`)
      }
    }
  }
  const out: Array<string> = []
  for (const [name, f] of [...families.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (f.help.length > 0) out.push(`# HELP ${name} ${escapeHelp(f.help)}`)
    out.push(`# TYPE ${name} ${f.type}`)
    for (const line of f.lines) out.push(line)
  }
  return `${out.join("\n")}\n`
}
