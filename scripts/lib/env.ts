/** Benchmarks' settings from the environment. */

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
