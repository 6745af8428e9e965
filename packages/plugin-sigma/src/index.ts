/**
 * @since 0.1.0
 */
export * as SigmaPlugin from "./SigmaPlugin.js"
export * as SigmaQuery from "./SigmaQuery.js"
export * as SigmaSchema from "./SigmaSchema.js"
export * as SigmaSource from "./SigmaSource.js"
export * as SigmaTables from "./SigmaTables.js"
