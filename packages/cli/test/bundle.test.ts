import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { bundleFile, ensureBundle, isFresh } from "../scripts/bundle.mjs"

const runs = (file: string, ...args: Array<string>) =>
  spawnSync(process.execPath, [file, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })

/** Writes a file dated two minutes ago (written well before any bundle of this test). */
const writeEarlier = (file: string, text: string) => {
  fs.writeFileSync(file, text)
  const earlier = new Date(Date.now() - 120_000)
  fs.utimesSync(file, earlier, earlier)
}

describe("the CLI bundle (scripts/bundle.mjs)", () => {
  it("is rebuilt when, and only when, a file it was built from changed since", async () => {
    // a program of two TypeScript modules, bundled into out.mjs beside them
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stripe-sync-bundle-test-"))
    const entry = path.join(dir, "main.ts")
    const imported = path.join(dir, "answer.ts")
    const outfile = path.join(dir, "out.mjs")
    writeEarlier(entry, 'import { answer } from "./answer.js"\nconsole.log(answer)\n')
    writeEarlier(imported, "export const answer: number = 41\n")
    try {
      assert.isFalse(isFresh(outfile), "no bundle yet")
      assert.strictEqual(await ensureBundle({ entry, outfile }), outfile)
      assert.strictEqual(runs(outfile).stdout.trim(), "41")
      assert.isTrue(isFresh(outfile))

      // an edit to an imported module makes it stale; ensureBundle rebuilds it with the edit
      fs.writeFileSync(imported, "export const answer: number = 42\n")
      assert.isFalse(isFresh(outfile))
      await ensureBundle({ entry, outfile })
      assert.strictEqual(runs(outfile).stdout.trim(), "42")
      assert.isTrue(isFresh(outfile))

      // a fresh bundle is left as it is
      const built = fs.statSync(outfile).mtimeMs
      await ensureBundle({ entry, outfile })
      assert.strictEqual(fs.statSync(outfile).mtimeMs, built)

      // a removed input makes it stale too
      fs.rmSync(imported)
      assert.isFalse(isFresh(outfile))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the emulator command, bundled, runs a Sigma query (its SQL engine reads its WebAssembly from its own package)", async () => {
    const child = spawn(process.execPath, [bundleFile, "emulator", "--port", "0", "--seed", "bundle"], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    /** Polls `check` every 50 ms until it answers a value, failing after `seconds`. */
    const waitFor = async <A>(what: string, seconds: number, check: () => Promise<A | undefined>) => {
      const deadline = Date.now() + seconds * 1000
      for (;;) {
        const value = await check()
        if (value !== undefined) return value
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`timed out waiting for ${what}; the emulator said: ${output}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    try {
      const base = await waitFor(
        "the emulator's URL",
        30,
        async () => /listening on (http:\/\/\S+)/.exec(output)?.[1]
      )
      const headers = { authorization: `Bearer sk_test_bundle` }
      const get = async (url: string) => {
        const response = await fetch(url, { headers })
        assert.strictEqual(response.status, 200, `${url}: ${response.status}`)
        return response
      }
      // the truth: every customer, page by page
      let customers = 0
      let after: string | undefined
      for (;;) {
        const page = (await (
          await get(`${base}/v1/customers?limit=100${after === undefined ? "" : `&starting_after=${after}`}`)
        ).json()) as { data: Array<{ id: string }>; has_more: boolean }
        customers += page.data.length
        if (!page.has_more) break
        after = page.data.at(-1)!.id
      }
      assert.isAbove(customers, 0)
      const started = (await (
        await fetch(`${base}/v1/sigma/query_runs`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ sql: "select count(*) as n from customers" })
        })
      ).json()) as { id: string }
      const file = await waitFor("the query run", 60, async () => {
        const run = (await (await get(`${base}/v1/sigma/query_runs/${started.id}`)).json()) as {
          status: string
          error: unknown
          result: { file: string } | null
        }
        assert.notStrictEqual(run.status, "failed", JSON.stringify(run.error))
        return run.status === "succeeded" ? run.result!.file : undefined
      })
      const { url } = (await (await get(`${base}/v1/files/${file}`)).json()) as { url: string }
      const csv = (await (await get(url)).text()).trim().split(/\r?\n/)
      assert.deepStrictEqual(csv, ["n", String(customers)])
    } finally {
      child.kill("SIGTERM")
    }
  })

  it("the stripe-sync bundle (built by the tests' global setup) runs on node alone", () => {
    const help = runs(bundleFile, "--help")
    assert.strictEqual(help.status, 0, help.stderr)
    for (const command of ["backfill", "sync", "status", "replay", "serve", "emulator"]) {
      assert.include(help.stdout, command)
    }
    const version = runs(bundleFile, "--version")
    assert.strictEqual(version.status, 0, version.stderr)
    assert.match(version.stdout, /\d+\.\d+\.\d+/)
  })
})
