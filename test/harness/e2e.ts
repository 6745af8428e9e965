/**
 * Helpers of the end-to-end tests, shared by the test files and by `pnpm trials` (so this module
 * imports nothing of vitest): the emulator as a scoped resource, waiting for a condition with a
 * deadline, the CLI as a child process, and the emulator's truth as a complete read returns it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Catalog } from "@stripe-sync/source-stripe"
import {
  type EmulatorHandle,
  type EmulatorOptions,
  startEmulator
} from "@stripe-sync/stripe-emulator/Emulator"
import { Effect } from "effect"
import { bundleFile } from "../../packages/cli/scripts/bundle.mjs"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** An emulator for the life of the scope. */
export const withEmulator = (options: EmulatorOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => startEmulator(options)),
    (e) => Effect.promise(() => e.stop())
  )

/** Polls `condition` until it holds, failing after `seconds` (never a fixed sleep). */
export const waitFor = <E, R>(
  what: string,
  condition: Effect.Effect<boolean, E, R>,
  seconds = 60,
  interval: `${number} millis` = "50 millis"
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + seconds * 1000
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(interval)
    }
  })

/**
 * The CLI as a child process: the bundled command as it ships (built by the global setup), on node
 * itself, so that signals and the exit code are the CLI's own.
 */
export const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): ChildProcess =>
  spawn(process.execPath, ["--enable-source-maps", bundleFile, ...args], {
    cwd: root,
    env: { ...process.env, ...env, FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"]
  })

/** Waits for a child to exit: its code, the signal that ended it, and stdout + stderr. Interrupted: SIGKILL. */
export const finished = (child: ChildProcess) =>
  Effect.async<{ code: number | null; signal: string | null; output: string }>((resume) => {
    let output = ""
    child.stdout!.on("data", (c: Buffer) => {
      output += c.toString()
    })
    child.stderr!.on("data", (c: Buffer) => {
      output += c.toString()
    })
    child.on("exit", (code, signal) => resume(Effect.succeed({ code, signal, output })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** A value as JSON gives it back (what a `jsonb` column returns). */
export const json = (value: unknown): unknown => JSON.parse(JSON.stringify(value))

/**
 * An object of the emulator's truth as a complete read returns it: the lists Stripe truncates hold
 * every item (the emulator keeps them beside the object).
 */
export const completeLists = (
  emulator: EmulatorHandle,
  account: string,
  resource: Pick<Catalog.Resource, "embeddedLists">,
  object: Record<string, unknown>
): Record<string, unknown> => {
  let out = object
  for (const embedded of resource.embeddedLists ?? []) {
    const list = object[embedded.field] as { has_more?: boolean } | undefined
    if (list?.has_more !== true) continue
    const data = emulator.account(account).children.get(String(object.id)) ?? []
    out = { ...out, [embedded.field]: { ...list, data, has_more: false } }
  }
  return out
}
