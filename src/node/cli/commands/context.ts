/** What every command group of the `shoal` CLI is given: the global options, a daemon client, output. */
import { readFile } from 'node:fs/promises'
import type { RpcClient } from '../../rpc/index.js'

/** The global options of `shoal` (before any command). */
export interface Globals {
  home?: string
  json?: boolean
  api?: string
}

/** Handed to each `register…Commands(program, ctx)`; read lazily, once the command line is parsed. */
export interface CliContext {
  /** The global options, `home` resolved (`--home`, `$SHOAL_HOME` or `~/.shoal`). */
  globals: () => Globals & { home: string }
  /** True when `--json` was given. */
  json: () => boolean
  /** A client of the running daemon's RPC (throws DAEMON_NOT_RUNNING when there is none). */
  client: () => Promise<RpcClient>
  /** Prints `value` as JSON when `json`, else what `human` renders. */
  out: (json: boolean, value: unknown, human: () => string) => void
}

/** One value of a `key value` listing: lists one per line, objects as `key=value` pairs. */
export function renderValue(v: unknown): string {
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join('\n' + ' '.repeat(21))
  }
  if (typeof v === 'object' && v !== null) {
    return Object.entries(v)
      .map(([k, x]) => `${k}=${String(x)}`)
      .join(' ')
  }
  return String(v)
}

/** The printer of {@link CliContext.out}: stdout, JSON pretty-printed or the human text. */
export function out(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n')
}

/** The passphrase in `file` (one trailing newline dropped), else `$SHOAL_PASSPHRASE`. */
export async function readPassphrase(file: string | undefined): Promise<string | undefined> {
  if (file !== undefined) return (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
  return process.env.SHOAL_PASSPHRASE
}
