import { Memory } from "../src/index.js"
import { eventLogContract } from "./contracts/eventLog.js"
import { storesContract } from "./contracts/stores.js"

eventLogContract("memory", Memory.layer)
storesContract("memory", Memory.layer)
