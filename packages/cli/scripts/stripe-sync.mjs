#!/usr/bin/env node
/**
 * `pnpm stripe-sync …` in a clone: runs the bundled command (`dist/stripe-sync.mjs`) in this
 * process, after rebuilding it when a source file changed since it was built (see bundle.mjs).
 * Running in this process keeps signals and the exit code the command's own.
 */
import { pathToFileURL } from "node:url"
import { ensureBundle } from "./bundle.mjs"

await import(pathToFileURL(await ensureBundle()).href)
