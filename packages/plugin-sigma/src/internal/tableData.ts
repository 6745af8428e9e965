/** One Sigma table as the generator writes it. */
export interface TableData {
  readonly name: string
  /** Primary key columns (empty: the table has none). */
  readonly primaryKey: ReadonlyArray<string>
  /** The timestamp column rows are ordered by in an incremental read. */
  readonly cursor: string | null
  /** Rows are only ever added: read incrementally by `(cursor, primary key)`; else refreshed in full. */
  readonly appendOnly: boolean
  /** `[name, Sigma type]`: varchar, bigint, timestamp, boolean, double, decimal(p,s). */
  readonly columns: ReadonlyArray<readonly [string, string]>
}
