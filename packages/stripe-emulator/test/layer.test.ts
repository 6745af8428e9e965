import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Emulator, Router } from "../src/index.js"
import { client } from "./helpers.js"

describe("Effect layer, extensions and main", () => {
  it("Emulator.layer serves while the scope is open and stops with it", async () => {
    const url = await Effect.runPromise(
      Effect.gen(function* () {
        const emulator = yield* Emulator.Emulator
        const customers = yield* Effect.promise(() => client(emulator).customers.list({ limit: 3 }))
        expect(customers.data.length).toBe(3)
        return emulator.url
      }).pipe(Effect.provide(Emulator.layer({ seed: "layer", scale: 0.02 })))
    )
    const after = await fetch(`${url}/_emulator/health`).then(
      () => "up",
      () => "down"
    )
    expect(after).toBe("down")
  })

  it("extensions add routes and read every object of an account", async () => {
    const emulator = await Emulator.startEmulator({
      seed: "ext",
      scale: 0.02,
      extensions: [
        (router, state) => {
          router.get("/v1/sigma/scheduled_query_runs", (ctx) => ({
            object: "list",
            data: [],
            count: ctx.account.collection("customer").size,
            platform: state.platform.id
          }))
          router.get(
            "/v1/custom/:type",
            (ctx) =>
              new Router.RawReply(`${ctx.account.truth(ctx.params.type!).length}`, {
                contentType: "text/plain"
              })
          )
        }
      ]
    })
    try {
      const res = await fetch(`${emulator.url}/v1/sigma/scheduled_query_runs`, {
        headers: { authorization: "Bearer sk_test_x" }
      })
      expect(await res.json()).toEqual({
        object: "list",
        data: [],
        count: emulator.truth("customer").length,
        platform: emulator.accountId
      })
      const n = await fetch(`${emulator.url}/v1/custom/invoice`, {
        headers: { authorization: "Bearer sk_test_x" }
      })
      expect(await n.text()).toBe(String(emulator.truth("invoice").length))
    } finally {
      await emulator.stop()
    }
  })

  it("main.ts prints its base URL, serves, and exits on SIGTERM", async () => {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))
    const child = spawn(
      process.execPath,
      ["--import", "tsx", main, "--port", "0", "--scale", "0.02", "--seed", "main"],
      {
        stdio: ["ignore", "pipe", "inherit"]
      }
    )
    const url = await new Promise<string>((resolve, reject) => {
      let out = ""
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString()
        const m = /listening on (http:\/\/\S+)/.exec(out)
        if (m) resolve(m[1]!)
      })
      child.once("exit", (code) => reject(new Error(`exited ${code}`)))
    })
    const res = await fetch(`${url}/v1/customers?limit=2`, { headers: { authorization: "Bearer sk_test_x" } })
    expect(((await res.json()) as { data: Array<unknown> }).data.length).toBe(2)
    const code = await new Promise<number | null>((resolve) => {
      child.once("exit", (c) => resolve(c))
      child.kill("SIGTERM")
    })
    expect(code).toBe(0)
  })
})
