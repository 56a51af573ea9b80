/**
 * Clipping and Gaussian noise of a shared model update (the Gaussian mechanism applied once per round).
 */
import type { Rng } from '../../common/index.js'
import { NonFiniteUpdateError, PrivacyParameterError, UpdateShapeMismatchError } from './errors.js'

/** Model weights or an update: tensors in a fixed order, or by name. */
export type WeightTensors = Float32Array[] | Map<string, Float32Array>

/** Pairs of (name, tensor); arrays are named by their index. */
function namedTensors(w: WeightTensors): Array<[string, Float32Array]> {
  return Array.isArray(w) ? w.map((t, i) => [String(i), t]) : [...w.entries()]
}

/** A weight set of the same kind (array or map) and order as `like`, from a per-tensor map function. */
function mapTensors<T extends WeightTensors>(
  like: T,
  fn: (name: string, t: Float32Array) => Float32Array
): T {
  const w: WeightTensors = like
  if (Array.isArray(w)) return w.map((t, i) => fn(String(i), t)) as T
  const out = new Map<string, Float32Array>()
  for (const [name, t] of w) out.set(name, fn(name, t))
  return out as T
}

function lookup(w: WeightTensors, name: string): Float32Array | undefined {
  return Array.isArray(w) ? w[Number(name)] : w.get(name)
}

function checkSameShape(a: WeightTensors, b: WeightTensors): void {
  if (Array.isArray(a) !== Array.isArray(b))
    throw new UpdateShapeMismatchError('(set)', 'same container kind', 'array vs map')
  const na = namedTensors(a)
  const nb = namedTensors(b)
  if (na.length !== nb.length)
    throw new UpdateShapeMismatchError('(set)', `${na.length} tensors`, `${nb.length} tensors`)
  for (const [name, t] of na) {
    const u = lookup(b, name)
    if (u === undefined) throw new UpdateShapeMismatchError(name, 'a tensor of that name', 'none')
    if (u.length !== t.length) throw new UpdateShapeMismatchError(name, t.length, u.length)
  }
}

/**
 * The update of a round: `newW − baseW`, tensor by tensor (float64 arithmetic, rounded to float32).
 *
 * @throws UpdateShapeMismatchError when the two sets do not have the same tensors and sizes.
 */
export function diffWeights<T extends WeightTensors>(newW: T, baseW: T): T {
  checkSameShape(newW, baseW)
  return mapTensors(newW, (name, t) => {
    const b = lookup(baseW, name)!
    const out = new Float32Array(t.length)
    for (let i = 0; i < t.length; i++) out[i] = t[i]! - b[i]!
    return out
  })
}

/**
 * New weights `baseW + update`, tensor by tensor (float64 arithmetic, rounded to float32).
 *
 * @throws UpdateShapeMismatchError when the two sets do not have the same tensors and sizes.
 */
export function applyUpdate<T extends WeightTensors>(baseW: T, update: T): T {
  checkSameShape(baseW, update)
  return mapTensors(baseW, (name, b) => {
    const u = lookup(update, name)!
    const out = new Float32Array(b.length)
    for (let i = 0; i < b.length; i++) out[i] = b[i]! + u[i]!
    return out
  })
}

/**
 * Global L2 norm over all tensors, √(Σ x²), accumulated in float64.
 *
 * @throws NonFiniteUpdateError when a value is NaN or ±Infinity.
 */
export function l2Norm(w: WeightTensors): number {
  let sum = 0
  for (const [name, t] of namedTensors(w)) {
    for (let i = 0; i < t.length; i++) {
      const v = t[i]!
      if (!Number.isFinite(v)) throw new NonFiniteUpdateError(name, i)
      sum += v * v
    }
  }
  return Math.sqrt(sum)
}

export interface PrivatizeOptions {
  /** C: the update is scaled down to global L2 norm at most C (the sensitivity of the shared update). */
  clipNorm: number
  /** σ: each coordinate gets independent N(0, (σC)²) noise. 0 means clip only. */
  noiseMultiplier: number
  /** Seeded source of the noise (only `gaussian()` is used). */
  rng: Pick<Rng, 'gaussian'>
}

export interface PrivatizedUpdate<T extends WeightTensors> {
  /** The clipped and noised update (new tensors; the input is not modified). */
  update: T
  /** Global L2 norm of the update before clipping. */
  preClipNorm: number
  /** The factor the update was multiplied by before the noise: min(1, C / preClipNorm), slightly less after rounding. */
  scale: number
}

/**
 * Clips an update to global L2 norm C and adds Gaussian noise N(0, (σC)²) to every coordinate. What this round
 * costs depends on the unit of privacy: one record can move a clipped update by up to 2C, so at record level the
 * accountant gets σ/2, at the level of the node's whole contribution σ (see `sharedUpdateStep`).
 *
 * The clipped values are rounded to float32 and the scale shrunk, if needed, until the float32 vector's norm
 * (in float64) is ≤ C, so rounding never lets the sensitivity exceed C. Noise is drawn tensor by tensor, in
 * index order for arrays and in sorted-name order for maps (so the result does not depend on insertion order),
 * coordinate by coordinate: the same seed and input give the same output.
 *
 * @throws PrivacyParameterError when C is not a finite number > 0 or σ not a finite number ≥ 0.
 * @throws NonFiniteUpdateError when the update holds NaN or ±Infinity.
 */
export function privatizeUpdate<T extends WeightTensors>(
  update: T,
  options: PrivatizeOptions
): PrivatizedUpdate<T> {
  const { clipNorm, noiseMultiplier, rng } = options
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) {
    throw new PrivacyParameterError('clipNorm', clipNorm, 'a finite number > 0')
  }
  if (!(noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier))) {
    throw new PrivacyParameterError('noiseMultiplier', noiseMultiplier, 'a finite number ≥ 0')
  }
  const preClipNorm = l2Norm(update)
  let scale = preClipNorm > clipNorm ? clipNorm / preClipNorm : 1
  const scaleBy = (s: number): T => mapTensors(update, (_n, t) => Float32Array.from(t, (v) => v * s))
  let clipped = scaleBy(scale)
  // float32 rounding may push the norm a hair above C: shrink by a few ulps until it does not.
  for (let n = l2Norm(clipped); n > clipNorm; n = l2Norm(clipped)) {
    scale *= (clipNorm / n) * (1 - 2 ** -23)
    clipped = scaleBy(scale)
  }

  const std = noiseMultiplier * clipNorm
  if (std > 0) {
    const named = namedTensors(clipped)
    if (!Array.isArray(clipped)) named.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    for (const [, t] of named) {
      for (let i = 0; i < t.length; i++) t[i] = t[i]! + std * rng.gaussian()
    }
  }
  return { update: clipped, preClipNorm, scale }
}
