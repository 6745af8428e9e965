import { spawnSync } from "node:child_process"
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
