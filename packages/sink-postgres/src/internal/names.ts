import { createHash } from "node:crypto"

const identifier = /^[a-z_][a-z0-9_]*$/

/** Is this a plain lower-case SQL identifier of at most `max` bytes? */
export const isIdentifier = (name: string, max = 63): boolean => identifier.test(name) && name.length <= max

/** `"name"`: the caller has checked that the name is a plain identifier. */
export const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`

/** The sync schema's internal tables, quoted and schema-qualified. */
export interface Tables {
  readonly schema: string
  readonly events: string
  readonly readPage: string
  readonly cursors: string
  readonly checkpoints: string
  readonly revalidate: string
  readonly migrations: string
  readonly projectionMigrations: string
  /** The NOTIFY channel of appends. */
  readonly channel: string
}

export const tables = (schema: string): Tables => {
  const q = (t: string) => `${quote(schema)}.${quote(t)}`
  return {
    schema,
    events: q("_events"),
    readPage: q("_read_page"),
    cursors: q("_cursors"),
    checkpoints: q("_checkpoints"),
    revalidate: q("_revalidate"),
    migrations: q("_migrations"),
    projectionMigrations: q("_projection_migrations"),
    channel: `stripe_sync_${schema}`
  }
}

/**
 * The shadow schema a rebuild of `projection` fills while `live` serves reads:
 * `<live>_shadow_<projection>`, shortened with a hash when that is not a short identifier.
 */
export const shadowSchema = (live: string, projection: string): string => {
  const plain = `${live}_shadow_${projection.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`
  if (plain.length <= 63 && projection.toLowerCase() === projection) return plain
  const hash = createHash("sha256").update(projection).digest("hex").slice(0, 12)
  return `${live.slice(0, 40)}_shadow_${hash}`
}
