import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// One project per package (plus the end-to-end suite and the examples). Every project inherits the
// root `test` options below, so they all share the global setups of test/harness (Postgres, the CLI bundle).
const project = (dir: string, name: string) => ({
  extends: true as const,
  test: { name, root: dir, include: ["**/*.test.ts"], exclude: ["**/node_modules/**", "**/dist/**"] }
})

export default defineConfig({
  test: {
    globalSetup: [
      fileURLToPath(new URL("./test/harness/globalSetup.ts", import.meta.url)),
      fileURLToPath(new URL("./test/harness/bundleSetup.ts", import.meta.url))
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      project("packages/core", "core"),
      project("packages/source-stripe", "source-stripe"),
      project("packages/sink-postgres", "sink-postgres"),
      project("packages/plugin-sigma", "plugin-sigma"),
      project("packages/stripe-emulator", "stripe-emulator"),
      project("packages/cli", "cli"),
      project("examples", "examples"),
      project("test", "e2e")
    ]
  }
})
