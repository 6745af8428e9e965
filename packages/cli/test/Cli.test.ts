import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, FiberId } from "effect"
import { root, run } from "../src/Cli.js"
import { exitCode } from "../src/ExitCode.js"
import * as Sync from "../src/Sync.js"

/** Every leaf command of the tree, as argv paths. */
const commandPaths = (): ReadonlyArray<ReadonlyArray<string>> => {
  const paths: Array<Array<string>> = []
  const walk = (descriptor: unknown, prefix: Array<string>) => {
    const d = descriptor as {
      _tag: string
      command?: unknown
      parent?: unknown
      children?: ReadonlyArray<unknown>
      name?: string
    }
    if (d._tag === "Subcommands") {
      walk(d.parent, prefix)
      for (const child of d.children ?? []) walk(child, prefix)
    } else if (d._tag === "Standard" || d._tag === "GetUserInput") {
      paths.push([...prefix, d.name!])
    } else if (d._tag === "Map") {
      walk(d.command, prefix)
    }
  }
  walk((root as unknown as { descriptor: unknown }).descriptor, [])
  return paths
}

describe("stripe-sync", () => {
  it("has --help on every command", () => {
    const paths = commandPaths()
    // the root and at least the commands of the brief
    const names = new Set(paths.map((p) => p[p.length - 1]))
    for (const name of [
      "stripe-sync",
      "sync",
      "backfill",
      "status",
      "entity",
      "replay",
      "migrate",
      "emulator"
    ]) {
      assert.isTrue(names.has(name), `${name} in ${[...names].join(", ")}`)
    }
  })

  it.effect("--help succeeds for each command", () =>
    Effect.gen(function* () {
      for (const name of ["sync", "backfill", "status", "entity", "replay", "migrate", "emulator"]) {
        const exit = yield* Effect.exit(run(["node", "stripe-sync", name, "--help"]))
        assert.isTrue(
          Exit.isSuccess(exit),
          `${name} --help: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`
        )
      }
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it("exit codes mean something", () => {
    assert.strictEqual(exitCode(Exit.void), 0)
    assert.strictEqual(
      exitCode(Exit.fail(new Sync.IncompleteSync({ message: "x", failed: ["customers"] }))),
      3
    )
    assert.strictEqual(
      exitCode(Exit.fail(new Sync.UnknownResource({ setting: "resources", message: "x" }))),
      2
    )
    assert.strictEqual(exitCode(Exit.fail({ _tag: "StripeAuthenticationError" })), 2)
    assert.strictEqual(exitCode(Exit.fail(new Error("boom"))), 1)
    assert.strictEqual(exitCode(Exit.interrupt(FiberId.none)), 130)
  })
})
