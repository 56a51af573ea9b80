/**
 * The dashboard's bundled front end (dashboard/, built by esbuild into dist/dashboard/ at
 * `npm install` — the `prepare` script — or by `npm run build:dashboard`). Served from memory;
 * in a checkout whose bundle is missing or older than its sources, the daemon builds it once
 * (esbuild is a dev dependency there).
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Asset } from './gate.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
/** Where the front end's sources are. */
export const DASHBOARD_SOURCE_DIR = join(ROOT, 'dashboard')
/** Where `npm run build:dashboard` writes the bundle. */
export const DASHBOARD_BUNDLE_DIR = join(ROOT, 'dist', 'dashboard')

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png'
}

async function newest(dir: string): Promise<number> {
  let t = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? await newest(p) : (await stat(p)).mtimeMs)
  }
  return t
}

/** True when the bundle is missing, or older than a source file (a checkout that changed). */
export async function bundleStale(
  bundle = DASHBOARD_BUNDLE_DIR,
  sources = join(DASHBOARD_SOURCE_DIR, 'src')
): Promise<boolean> {
  const built = await stat(join(bundle, 'app.js')).then(
    (s) => s.mtimeMs,
    () => undefined
  )
  if (built === undefined) return true
  const src = await newest(sources).catch(() => 0)
  return src > built
}

/** Builds the bundle with dashboard/build.mjs (needs esbuild, a dev dependency). */
export async function buildDashboard(): Promise<void> {
  const mod = (await import(pathToFileURL(join(DASHBOARD_SOURCE_DIR, 'build.mjs')).href)) as {
    build: (opts?: { quiet?: boolean }) => Promise<void>
  }
  await mod.build({ quiet: true })
}

/** Reads the bundle into memory. */
export async function readBundle(dir = DASHBOARD_BUNDLE_DIR): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>()
  for (const name of await readdir(dir)) {
    const type = TYPES[extname(name)]
    if (type !== undefined) out.set(name, { body: await readFile(join(dir, name)), type })
  }
  if (!out.has('app.js')) throw new Error(`no app.js in ${dir}`)
  return out
}

/**
 * The bundle, built first when missing or stale (and esbuild is there); a string says why there
 * is none. Memoised: the first call decides.
 */
export function dashboardAssets(): () => Promise<Map<string, Asset> | string> {
  let loading: Promise<Map<string, Asset> | string> | undefined
  return async () => {
    loading ??= (async () => {
      if (await bundleStale()) {
        try {
          await buildDashboard()
        } catch (err) {
          const have = await readBundle().catch(() => undefined)
          if (have !== undefined) return have
          return `The dashboard's bundle is missing and could not be built (${(err as Error).message}). Run npm run build:dashboard.`
        }
      }
      return readBundle().catch(
        (err: unknown) => `The dashboard's bundle cannot be read: ${(err as Error).message}`
      )
    })()
    return loading
  }
}
