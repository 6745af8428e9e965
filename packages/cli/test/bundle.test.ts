import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { cli, waitFor } from "../../../test/harness/e2e.js"
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

  it.scopedLive(
    "the emulator command, bundled, runs a Sigma query (its SQL engine reads its WebAssembly from its own package)",
    () =>
      Effect.gen(function* () {
        const child = yield* Effect.acquireRelease(
          Effect.sync(() => cli(["emulator", "--port", "0", "--seed", "bundle"])),
          (c) => Effect.sync(() => c.kill("SIGTERM"))
        )
        let output = ""
        const collect = (chunk: Buffer) => {
          output += chunk.toString()
        }
        child.stdout!.on("data", collect)
        child.stderr!.on("data", collect)
        let base: string | undefined
        yield* waitFor(
          "the emulator's URL",
          Effect.sync(() => {
            base = /listening on (http:\/\/\S+)/.exec(output)?.[1]
            return base !== undefined || child.exitCode !== null
          }),
          30
        )
        assert.isDefined(base, output)
        const request = (url: string, init: RequestInit = {}) =>
          Effect.promise(async () => {
            const response = await fetch(url, {
              ...init,
              headers: { authorization: "Bearer sk_test_bundle", ...init.headers }
            })
            assert.strictEqual(response.status, 200, `${url}: ${await response.clone().text()}`)
            return response
          })
        const json = <A>(url: string, init?: RequestInit) =>
          Effect.flatMap(request(url, init), (r) => Effect.promise(() => r.json() as Promise<A>))

        // the truth: every customer, page by page
        let customers = 0
        let after: string | undefined
        for (;;) {
          const page = yield* json<{ data: Array<{ id: string }>; has_more: boolean }>(
            `${base}/v1/customers?limit=100${after === undefined ? "" : `&starting_after=${after}`}`
          )
          customers += page.data.length
          if (!page.has_more) break
          after = page.data.at(-1)!.id
        }
        assert.isAbove(customers, 0)

        const started = yield* json<{ id: string }>(`${base}/v1/sigma/query_runs`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ sql: "select count(*) as n from customers" })
        })
        let file: string | undefined
        yield* waitFor(
          "the query run",
          Effect.map(
            json<{ status: string; error: unknown; result: { file: string } | null }>(
              `${base}/v1/sigma/query_runs/${started.id}`
            ),
            (run) => {
              assert.notStrictEqual(run.status, "failed", JSON.stringify(run.error))
              file = run.result?.file
              return run.status === "succeeded" || child.exitCode !== null
            }
          ),
          60
        )
        assert.isDefined(file, output)
        const { url } = yield* json<{ url: string }>(`${base}/v1/files/${file}`)
        const csv = yield* Effect.flatMap(request(url), (r) => Effect.promise(() => r.text()))
        assert.deepStrictEqual(csv.trim().split(/\r?\n/), ["n", String(customers)])
      }),
    { timeout: 120_000 }
  )

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
