#!/usr/bin/env node
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect } from "effect"
import { run } from "./Cli.js"
import { exitCode } from "./ExitCode.js"
import { describeFailure } from "./internal/failure.js"
import { tuneHeap } from "./internal/heap.js"

tuneHeap()

const argv = process.argv
const format = argv.indexOf("--log-format")
const json = (format >= 0 ? argv[format + 1] : process.env.LOG_FORMAT) === "json"

run(argv).pipe(
  // a failure is one readable message (the command's own errors say what to do); a defect keeps its trace
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.sync(() => {
          const text = describeFailure(cause)
          if (text === undefined) return
          process.stderr.write(
            json
              ? `${JSON.stringify({ timestamp: new Date().toISOString(), level: "ERROR", message: text.replace(/^error: /, "") })}\n`
              : `${text}\n`
          )
        })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disablePrettyLogger: true,
    disableErrorReporting: true,
    // The command is done and every scope is closed: exit now, once stdout and stderr are flushed,
    // rather than wait for the event loop to empty (a handle a library leaves open, such as an idle
    // database socket, kept a finished command alive now and then).
    teardown: (exit) => {
      const code = exitCode(exit)
      process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
    }
  })
)
