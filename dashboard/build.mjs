// @ts-check
/**
 * Builds the dashboard's front end (src/index.tsx: Preact + uPlot) into dist/dashboard/ with
 * esbuild: one minified ES module (app.js) and one stylesheet (app.css), nothing fetched at run
 * time. Run by `npm install` (the `prepare` script) and `npm run build:dashboard`; the daemon runs
 * it too when the bundle is missing or older than the sources.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
export const OUT_DIR = join(here, '..', 'dist', 'dashboard')

const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0d1520"/>' +
  '<path d="M6 18c4-7 12-9 20-4-5 1-8 4-9 8-3-3-7-4-11-4z" fill="#22d3ee"/><circle cx="21" cy="15" r="1.4" fill="#0d1520"/></svg>\n'

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
  // The page's icon (a link in the page, so that browsers do not ask for /favicon.ico).
  await writeFile(join(OUT_DIR, 'icon.svg'), ICON)
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
