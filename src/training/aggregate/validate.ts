/**
 * Checks applied to a peer's model before it may take part in aggregation.
 */
import { AggregationError, UpdateRejectedError } from './errors.js'

/** The layout a candidate must have: e.g. a `CompiledModel` (its `params`). */
export interface UpdateReference {
  params: ReadonlyArray<{ name: string; shape: readonly number[] }>
}

export interface ValidateOptions {
  /** The weights the update started from; the norm bound applies to `candidate − base`. */
  base?: ReadonlyMap<string, Float32Array>
  /** Largest accepted L2 norm of the update (over all tensors); unbounded when absent. */
  maxNorm?: number
}

function sizeOf(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/**
 * L2 norm over all tensors of `model − base` (or of `model` when no base), accumulated in
 * float64 in name order. Both maps must have the same names and lengths.
 *
 * @throws {AggregationError} when `base` lacks a tensor of `model` or has a different length.
 */
export function updateNorm(
  model: ReadonlyMap<string, Float32Array>,
  base?: ReadonlyMap<string, Float32Array>
): number {
  let sum = 0
  for (const name of [...model.keys()].sort()) {
    const x = model.get(name)!
    const b = base?.get(name)
    if (base !== undefined && (b === undefined || b.length !== x.length)) {
      throw new AggregationError(`base tensor '${name}' is missing or has the wrong length`, {
        param: name,
        expected: x.length,
        actual: b?.length ?? null
      })
    }
    if (b === undefined) {
      for (let i = 0; i < x.length; i++) sum += x[i]! * x[i]!
    } else {
      for (let i = 0; i < x.length; i++) {
        const d = x[i]! - b[i]!
        sum += d * d
      }
    }
  }
  return Math.sqrt(sum)
}

/**
 * Check a candidate model against the expected layout, then for non-finite values, then
 * (with `maxNorm`) the L2 norm of its update. Checks run in that order and the first failure
 * is thrown; tensors are visited in the reference's order, extra tensors in name order.
 *
 * @example
 * ```ts
 * validateUpdate(peerWeights, compiled, { base: roundStart, maxNorm: 10 })
 * ```
 * @throws {UpdateRejectedError} `UPDATE_SHAPE_MISMATCH`, `UPDATE_NON_FINITE` or `UPDATE_NORM_EXCEEDED`.
 * @throws {AggregationError} when `maxNorm` is negative or NaN, or `base` does not match the reference.
 */
export function validateUpdate(
  candidate: ReadonlyMap<string, Float32Array>,
  reference: UpdateReference,
  opts: ValidateOptions = {}
): void {
  const { base, maxNorm } = opts
  if (maxNorm !== undefined && !(maxNorm >= 0)) {
    throw new AggregationError(`maxNorm must be a number ≥ 0, got ${maxNorm}`, { maxNorm })
  }
  const expected = new Set<string>()
  for (const { name, shape } of reference.params) {
    expected.add(name)
    const size = sizeOf(shape)
    const t = candidate.get(name)
    if (t === undefined || t.length !== size) {
      throw new UpdateRejectedError(
        'UPDATE_SHAPE_MISMATCH',
        t === undefined
          ? `update lacks tensor '${name}'`
          : `tensor '${name}' has ${t.length} values, expected ${size}`,
        { param: name, expected: size, actual: t?.length ?? null }
      )
    }
    if (base !== undefined && base.get(name)?.length !== size) {
      throw new AggregationError(`base tensor '${name}' is missing or has the wrong length`, {
        param: name,
        expected: size,
        actual: base.get(name)?.length ?? null
      })
    }
  }
  for (const name of [...candidate.keys()].sort()) {
    if (!expected.has(name)) {
      throw new UpdateRejectedError('UPDATE_SHAPE_MISMATCH', `update has unexpected tensor '${name}'`, {
        param: name,
        expected: null,
        actual: candidate.get(name)!.length
      })
    }
  }
  for (const { name } of reference.params) {
    const t = candidate.get(name)!
    for (let i = 0; i < t.length; i++) {
      if (!Number.isFinite(t[i]!)) {
        throw new UpdateRejectedError('UPDATE_NON_FINITE', `tensor '${name}' has ${t[i]} at index ${i}`, {
          param: name,
          index: i
        })
      }
    }
  }
  if (maxNorm !== undefined) {
    const norm = updateNorm(candidate, base)
    if (!(norm <= maxNorm)) {
      throw new UpdateRejectedError(
        'UPDATE_NORM_EXCEEDED',
        `update norm ${norm.toPrecision(6)} exceeds the limit ${maxNorm}`,
        { norm, limit: maxNorm }
      )
    }
  }
}
