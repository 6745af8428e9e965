export * as PgTest from "./database.js"
export * as FaultProxy from "./FaultProxy.js"
