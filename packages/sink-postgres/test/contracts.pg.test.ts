import { Layer } from "effect"
import { PgTest } from "../../../test/harness/index.js"
import { eventLogContract } from "../../core/test/contracts/eventLog.js"
import { storesContract } from "../../core/test/contracts/stores.js"
import { PgSink } from "../src/index.js"

const SinkLayer = PgSink.layer().pipe(Layer.provideMerge(PgTest.layer()))

eventLogContract("postgres", SinkLayer)
storesContract("postgres", SinkLayer)
