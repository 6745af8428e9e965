#!/usr/bin/env node
// Published builds run the compiled CLI; in a source checkout, `pnpm stripe-sync` runs src/bin.ts with tsx.
import "../dist/bin.js"
