/**
 * Layered configuration: config/default.json ← $SHOAL_HOME/config.json ← SHOAL_* environment
 * ← flags (`--set path=value`). Objects merge key by key; arrays and scalars replace.
 */
import { readFile } from 'node:fs/promises'
import { ShoalError, logger } from '../../common/index.js'
import { ConfigSchema, type ShoalConfig } from './schema.js'

/** Thrown when a configuration layer is unreadable or a value fails the schema. */
export class ConfigError extends ShoalError<
  'CONFIG_INVALID',
  { path: string; source: string; reason: string }
> {
  static override readonly category = 'usage'
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type JsonObject = { [k: string]: Json }

const log = logger('shoal:node:config')

export const DEFAULT_CONFIG_URL = new URL('../../../config/default.json', import.meta.url)

/** Environment variables of a config section that the node reads elsewhere (the logger, the CLI). */
const NON_CONFIG_ENV = new Set(['SHOAL_LOG', 'SHOAL_LOG_FORMAT'])

/**
 * The config sections (`rpc`, `p2p`, `storage`, `training`, `receipts`, `log`). Only
 * `SHOAL_<SECTION>_<KEY>` with one of these sections is node configuration; every other
 * `SHOAL_*` variable belongs to the CLI or a script (`SHOAL_HOME`, `SHOAL_PASSPHRASE`,
 * `SHOAL_API_TOKEN`, npm start's `SHOAL_NODES`, `SHOAL_DEMO_DIR`, …) and the loader ignores it.
 */
export const CONFIG_SECTIONS: ReadonlySet<string> = new Set(Object.keys(ConfigSchema.shape))

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function deepMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base }
  for (const [k, v] of Object.entries(over)) {
    // JSON.parse makes "__proto__" an own key; assigning it would swap out's prototype.
    if (k === '__proto__') continue
    const b = out[k]
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v
  }
  return out
}

/** Parse a flag/env value: JSON where it parses (numbers, booleans, arrays), else the raw string. */
function parseValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json
  } catch {
    return raw
  }
}

/** Keys that would reach `Object.prototype` (or a constructor) through plain assignment. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

function setPath(obj: JsonObject, path: string[], value: Json, source: string): void {
  const bad = path.find((key) => FORBIDDEN_KEYS.has(key))
  if (bad !== undefined) {
    throw new ConfigError('CONFIG_INVALID', `config path ${path.join('.')} names the reserved key "${bad}"`, {
      path: path.join('.'),
      source,
      reason: `reserved key ${bad}`
    })
  }
  let cur = obj
  for (const key of path.slice(0, -1)) {
    const next = cur[key]
    if (!isObject(next)) cur[key] = {}
    cur = cur[key] as JsonObject
  }
  cur[path[path.length - 1]!] = value
}

const camel = (s: string): string => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/**
 * `SHOAL_RPC_PORT=5001` → `{ rpc: { port: 5001 } }`; `SHOAL_RPC_MAX_BODY_BYTES` → rpc.maxBodyBytes.
 * Variables whose first word is not a config section are not configuration (see
 * {@link CONFIG_SECTIONS}) and are skipped with a debug line; an unknown key inside a known
 * section (`SHOAL_RPC_PROT`) is still refused by the schema, naming its path.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): JsonObject {
  const out: JsonObject = {}
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SHOAL_') || NON_CONFIG_ENV.has(name) || raw === undefined) continue
    const [section, ...rest] = name.slice(6).split('_')
    if (section === undefined || rest.length === 0 || !CONFIG_SECTIONS.has(section.toLowerCase())) {
      log.debug({ variable: name }, 'not a config variable (no such config section); ignored')
      continue
    }
    setPath(out, [section.toLowerCase(), camel(rest.join('_'))], parseValue(raw), 'environment')
  }
  return out
}

/** `['rpc.port=5001', 'p2p.mdns=true']` → nested object. */
export function configFromFlags(sets: string[]): JsonObject {
  const out: JsonObject = {}
  for (const s of sets) {
    const eq = s.indexOf('=')
    if (eq <= 0) {
      throw new ConfigError('CONFIG_INVALID', `--set expects path=value, got "${s}"`, {
        path: s,
        source: 'flags',
        reason: 'expected path=value'
      })
    }
    setPath(out, s.slice(0, eq).split('.'), parseValue(s.slice(eq + 1)), 'flags')
  }
  return out
}

async function readJsonFile(path: string, source: string, optional: boolean): Promise<JsonObject> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError('CONFIG_INVALID', `cannot read ${source} (${path}): ${(err as Error).message}`, {
      path: '',
      source,
      reason: 'unreadable'
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `${source} (${path}) is not valid JSON: ${(err as Error).message}`,
      {
        path: '',
        source,
        reason: 'invalid JSON'
      }
    )
  }
  if (!isObject(parsed)) {
    throw new ConfigError('CONFIG_INVALID', `${source} (${path}) must hold a JSON object`, {
      path: '',
      source,
      reason: 'not an object'
    })
  }
  return parsed
}

export interface LoadConfigOptions {
  /** Path of the data dir's config.json (absent file = no overrides). */
  repoConfigPath?: string
  env?: NodeJS.ProcessEnv
  /** `path=value` overrides from the command line. */
  sets?: string[]
  /** Extra overrides applied last (used by tests and the composition root). */
  overrides?: Record<string, unknown>
}

/** Validate a merged config object, naming the first bad path. */
export function validateConfig(merged: unknown): ShoalConfig {
  const r = ConfigSchema.safeParse(merged)
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  const path = issue.path.map(String).join('.') || '(root)'
  const reason =
    issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : issue.message
  throw new ConfigError('CONFIG_INVALID', `invalid config at ${path}: ${reason}`, {
    path,
    source: 'merged',
    reason
  })
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<ShoalConfig> {
  let merged = await readJsonFile(DEFAULT_CONFIG_URL.pathname, 'config/default.json', false)
  if (opts.repoConfigPath !== undefined) {
    merged = deepMerge(merged, await readJsonFile(opts.repoConfigPath, 'config.json', true))
  }
  merged = deepMerge(merged, configFromEnv(opts.env ?? process.env))
  merged = deepMerge(merged, configFromFlags(opts.sets ?? []))
  if (opts.overrides !== undefined) merged = deepMerge(merged, opts.overrides as JsonObject)
  return validateConfig(merged)
}
