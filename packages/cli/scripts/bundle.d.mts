/** Types of bundle.mjs (plain JavaScript, so that it runs on node alone). */
export interface BundleOptions {
  /** The entry module (default: the CLI's `src/bin.ts`). */
  readonly entry?: string
  /** The bundle to write (default: `dist/stripe-sync.mjs`). */
  readonly outfile?: string
}

/** The bundled command, `dist/stripe-sync.mjs`. */
export declare const bundleFile: string
export declare const bundle: (options?: BundleOptions) => Promise<string>
export declare const isFresh: (outfile?: string) => boolean
export declare const ensureBundle: (options?: BundleOptions) => Promise<string>
