#!/usr/bin/env node
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./Cli.js"
import { exitCode } from "./ExitCode.js"

run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disablePrettyLogger: true, teardown: (exit, onExit) => onExit(exitCode(exit)) })
)
