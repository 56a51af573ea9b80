/** Benchmarks' settings from the environment and the command line. */

/**
 * A positive number from the environment variable `name` (unset or empty: `fallback`).
 *
 * @throws Error naming the variable when it is not a positive number.
 */
export function envNumber(name: string, fallback: number): number {
  const v = process.env[name]
  const n = v === undefined || v === '' ? fallback : Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`)
  return n
}

/** The value after `--name` on the command line (absent, or last with no value: `fallback`). */
export function arg(name: string, fallback: string): string {
  const argv = process.argv.slice(2)
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
}
