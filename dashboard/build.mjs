// @ts-check
/**
 * Builds the dashboard's front end (src/index.tsx: Preact + uPlot) into dist/dashboard/ with
 * esbuild: one minified ES module (app.js) and one stylesheet (app.css), nothing fetched at run
 * time. Run by `npm install` (the `prepare` script) and `npm run build:dashboard`; the daemon runs
 * it too when the bundle is missing or older than the sources.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
export const OUT_DIR = join(here, '..', 'dist', 'dashboard')

/** @param {{ quiet?: boolean }} [opts] */
export async function build(opts = {}) {
  const esbuild = await import('esbuild')
  await mkdir(OUT_DIR, { recursive: true })
  const result = await esbuild.build({
    entryPoints: { app: join(here, 'src', 'index.tsx') },
    outdir: OUT_DIR,
    bundle: true,
    format: 'esm',
    minify: true,
    sourcemap: false,
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    metafile: true,
    logLevel: opts.quiet === true ? 'silent' : 'warning'
  })
  if (opts.quiet !== true) {
    const outputs = Object.entries(result.metafile.outputs).map(
      ([f, o]) => `${f} ${(o.bytes / 1024).toFixed(1)} KiB`
    )
    process.stdout.write(`dashboard built: ${outputs.join(', ')}\n`)
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await build()
}
