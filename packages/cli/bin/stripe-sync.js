#!/usr/bin/env node
// The bundled command (`pnpm build` writes it; in a clone, `pnpm stripe-sync` rebuilds it when a source changed).
import "../dist/stripe-sync.mjs"
