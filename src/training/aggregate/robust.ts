/**
 * Robust rules made for gossip and for non-IID data, beside the coordinate-wise ones of
 * rules.ts:
 *
 * - `clippedGossip`: self-centered clipping (ClippedGossip, He, Karimireddy & Jaggi 2022,
 *   "Byzantine-robust decentralized learning via ClippedGossip"). A node moves from its own
 *   model towards each neighbour's by at most τ: `x + (1/n) Σⱼ clip(xⱼ − x, τ)`. A Byzantine
 *   neighbour can pull a node by at most τ/n per round, whatever it sends; honest neighbours
 *   within τ are averaged exactly as by the mean.
 * - `bucketing` (Karimireddy, He & Jaggi, ICLR 2022, "Byzantine-robust learning on
 *   heterogeneous datasets via bucketing"): shuffle the models with a seed, average them in
 *   buckets of s, and apply a robust rule to the bucket means, which are less heterogeneous
 *   than the models themselves.
 *
 * Both are deterministic for the same inputs (and seed) and accumulate in float64.
 */
import { Rng } from '../../common/index.js'
import { AggregationError } from './errors.js'
import type { Weights } from './rules.js'

export interface ClippedGossipOptions {
  /**
   * Clipping radius τ (L2, over all tensors). Default: adaptive, the distance from the own model
   * to its (m − f)-th nearest peer model, so that the f farthest peer models are clipped to the
   * distance of the nearest ones that are not.
   */
  tau?: number
  /** Peer models assumed Byzantine for the adaptive τ; default ⌈m / 3⌉ for m peer models. */
  f?: number
}

/** The names and lengths of models[0]; throws when another model differs. */
function checkLayout(models: readonly Weights[]): Array<[string, number]> {
  const first = models[0]
  if (first === undefined) throw new AggregationError('no models to aggregate', { n: 0 })
  const layout = [...first.keys()].sort().map((name): [string, number] => [name, first.get(name)!.length])
  models.forEach((m, index) => {
    if (m.size !== first.size)
      throw new AggregationError(`model ${index} has ${m.size} tensors, model 0 has ${first.size}`, {
        index,
        expected: first.size,
        actual: m.size
      })
    for (const [name, length] of layout) {
      const t = m.get(name)
      if (t === undefined || t.length !== length)
        throw new AggregationError(`model ${index}: tensor '${name}' is missing or has the wrong length`, {
          index,
          param: name,
          expected: length,
          actual: t?.length ?? null
        })
    }
  })
  return layout
}

/** ‖y − x‖₂ over every tensor. */
function distance(x: Weights, y: Weights, layout: Array<[string, number]>): number {
  let sum = 0
  for (const [name] of layout) {
    const a = x.get(name)!
    const b = y.get(name)!
    for (let j = 0; j < a.length; j++) {
      const d = b[j]! - a[j]!
      sum += d * d
    }
  }
  return Math.sqrt(sum)
}

/** The clipping radius `clippedGossip` uses for these distances to the m peer models. */
export function clippingRadius(distances: readonly number[], opts: ClippedGossipOptions = {}): number {
  if (opts.tau !== undefined) {
    if (!(opts.tau >= 0 && Number.isFinite(opts.tau)))
      throw new AggregationError(`clipping radius tau must be finite and ≥ 0, got ${opts.tau}`, {
        tau: opts.tau
      })
    return opts.tau
  }
  const m = distances.length
  const f = opts.f ?? Math.ceil(m / 3)
  if (!Number.isInteger(f) || f < 0)
    throw new AggregationError(`ClippedGossip f must be an integer ≥ 0, got ${f}`, { n: m + 1, f })
  if (m === 0) return 0
  const sorted = [...distances].sort((a, b) => a - b)
  return sorted[Math.max(1, m - f) - 1]!
}

/**
 * Self-centered clipping: `models[0]` is this node's own model x, the others its neighbours'.
 * Returns `x + (1/n) Σⱼ₌₁ⁿ⁻¹ min(1, τ/‖xⱼ − x‖)·(xⱼ − x)`, i.e. the mean of n models where
 * every neighbour further than τ has been pulled in to distance τ. With τ at least every
 * distance it is the mean.
 *
 * @example
 * ```ts
 * const next = clippedGossip([mine, ...peers])            // adaptive τ
 * const fixed = clippedGossip([mine, ...peers], { tau: 1 }) // a neighbour moves this node ≤ 1/n
 * ```
 * @throws {AggregationError} for no models, mismatched layouts, or a τ / f out of range.
 */
export function clippedGossip(
  models: readonly Weights[],
  opts: ClippedGossipOptions = {}
): Map<string, Float32Array> {
  const layout = checkLayout(models)
  const own = models[0]!
  const n = models.length
  const distances = models.slice(1).map((m) => distance(own, m, layout))
  const tau = clippingRadius(distances, opts)
  const out = new Map<string, Float32Array>()
  for (const [name, length] of layout) {
    const x = own.get(name)!
    const acc = new Float64Array(length)
    for (let i = 1; i < n; i++) {
      const d = distances[i - 1]!
      const scale = d > tau ? tau / d : 1
      if (scale === 0) continue
      const y = models[i]!.get(name)!
      for (let j = 0; j < length; j++) acc[j] = acc[j]! + scale * (y[j]! - x[j]!)
    }
    const res = new Float32Array(length)
    for (let j = 0; j < length; j++) res[j] = x[j]! + acc[j]! / n
    out.set(name, res)
  }
  return out
}

export interface BucketingOptions {
  /** Models per bucket (the last may hold fewer); default 2. */
  s?: number
  /** Seed of the shuffle (deterministic: the same seed and models give the same output). */
  seed: number
  /** The robust rule applied to the bucket means (e.g. `median`). */
  inner: (bucketMeans: Weights[]) => Map<string, Float32Array>
}

/** Default bucket size of {@link bucketing}. */
export const DEFAULT_BUCKET_SIZE = 2

/** The buckets (indices into the models) a seeded shuffle of n models gives, s per bucket. */
export function buckets(n: number, s: number, seed: number): number[][] {
  if (!Number.isInteger(s) || s < 1)
    throw new AggregationError(`bucket size s must be an integer ≥ 1, got ${s}`, { n, s })
  const order = [...Array(n).keys()]
  const rng = new Rng(seed)
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const out: number[][] = []
  for (let i = 0; i < n; i += s) out.push(order.slice(i, i + s))
  return out
}

/**
 * Bucketing: shuffle the models (seeded), average each bucket of s, and aggregate the
 * ⌈n/s⌉ bucket means with `inner`. s = 1 is `inner` itself (on shuffled models).
 *
 * @example
 * ```ts
 * const next = bucketing(models, { s: 2, seed: round, inner: median })
 * ```
 * @throws {AggregationError} for no models, mismatched layouts, a bad s, or `inner`'s own errors.
 */
export function bucketing(models: readonly Weights[], opts: BucketingOptions): Map<string, Float32Array> {
  const layout = checkLayout(models)
  const groups = buckets(models.length, opts.s ?? DEFAULT_BUCKET_SIZE, opts.seed)
  const means = groups.map((g) => {
    const out = new Map<string, Float32Array>()
    for (const [name, length] of layout) {
      const acc = new Float64Array(length)
      for (const i of g) {
        const x = models[i]!.get(name)!
        for (let j = 0; j < length; j++) acc[j] = acc[j]! + x[j]!
      }
      const res = new Float32Array(length)
      for (let j = 0; j < length; j++) res[j] = acc[j]! / g.length
      out.set(name, res)
    }
    return out
  })
  return opts.inner(means)
}
