export * as ChangeDriver from "./ChangeDriver.js"
export * as Emulator from "./Emulator.js"
export * as Router from "./Router.js"
export * as Store from "./Store.js"
