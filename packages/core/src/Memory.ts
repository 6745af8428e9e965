/**
 * The in-memory sink: every port of the pipeline over one shared in-process store. For tests,
 * examples and trying plugins out; nothing survives the process.
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import * as CheckpointStore from "./CheckpointStore.js"
import * as CursorStore from "./CursorStore.js"
import * as EventLog from "./EventLog.js"
import { MemoryStore, makeState } from "./internal/memoryStore.js"
import * as RevalidationQueue from "./RevalidationQueue.js"
import * as UnitOfWork from "./UnitOfWork.js"

export { MemoryStore } from "./internal/memoryStore.js"

/** The shared store alone (each port's `layerMemory` needs it). */
export const storeLayer: Layer.Layer<MemoryStore> = Layer.effect(MemoryStore, makeState)

/** Every port, in memory. Each `Layer.fresh` use gives a new, empty store. */
export const layer: Layer.Layer<
  | EventLog.EventLog
  | CursorStore.CursorStore
  | CheckpointStore.CheckpointStore
  | RevalidationQueue.RevalidationQueue
  | UnitOfWork.UnitOfWork
> = Layer.mergeAll(
  EventLog.layerMemory,
  CursorStore.layerMemory,
  CheckpointStore.layerMemory,
  RevalidationQueue.layerMemory,
  UnitOfWork.layerMemory
).pipe(Layer.provide(storeLayer))
