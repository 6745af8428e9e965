/**
 * The shape of the generated catalog (`src/generated/catalog.ts`). The public types live in
 * `Catalog.ts`; this file only lets the generated data type-check without importing it back.
 */

/** How a typed column is read from `_raw_data`. */
export type ColumnKind = "bigint" | "boolean" | "text" | "numeric" | "jsonb" | "ref"

export interface ColumnData {
  readonly name: string
  readonly kind: ColumnKind
  readonly pgType: "bigint" | "boolean" | "text" | "numeric" | "jsonb"
}

export interface EmbeddedListData {
  readonly field: string
  readonly path: string
  readonly table: string
  readonly object: string
}

export interface ResourceData {
  readonly object: string
  readonly table: string
  readonly listPath: string
  readonly listParams?: Readonly<Record<string, string>>
  readonly perParent?: {
    readonly listPath: string
    readonly param: string
    readonly supportsCreated: boolean
    /** The parent's includable list of these objects (`expand[]=data.<field>`), paged further by `path`. */
    readonly expand?: { readonly field: string; readonly path: string }
    /** A list every child refers to: when it is empty on an account, the per-parent requests are skipped. */
    readonly requires?: string
  }
  readonly supportsCreated: boolean
  readonly retrievePath: string | null
  readonly idPrefix: string | null
  readonly deletable: boolean
  readonly defaultEnabled: boolean
  readonly featureGate: string | null
  readonly embeddedLists: ReadonlyArray<EmbeddedListData>
  readonly eventTypes: ReadonlyArray<string>
  readonly columns: ReadonlyArray<ColumnData>
  readonly sdk: string
}

export interface ChildData {
  readonly object: string
  readonly table: string
  readonly parent: string
  readonly field: string
  readonly retrievePath: string | null
  readonly idPrefix: string | null
  readonly deletable: boolean
  readonly columns: ReadonlyArray<ColumnData>
}
