/**
 * Aggregation rules over models of equal layout. Every rule is deterministic: the same models
 * in the same order give bit-identical output. `median`, `trimmedMean` and `krum` (barring
 * exact score ties) are also independent of the models' order; `mean` sums in the given order
 * (in float64), so callers that need agreement across nodes should order models canonically
 * (e.g. by weights CID). Inputs are assumed finite: run `validateUpdate` first.
 */
import { DEFAULT_TRIM_FRACTION, INSERTION_SORT_MAX } from './constants.js'
import { AggregationError } from './errors.js'
import { bucketing, clippedGossip, type BucketingOptions, type ClippedGossipOptions } from './robust.js'

/** Named float32 tensors, e.g. a model's weights. */
export type Weights = ReadonlyMap<string, Float32Array>

/** The aggregation rules `aggregate` dispatches to (a job names one). */
export const AGGREGATION_RULES = [
  'mean',
  'trimmed-mean',
  'median',
  'krum',
  'clipped-gossip',
  'bucketing'
] as const

/** One of {@link AGGREGATION_RULES}. */
export type AggregationRule = (typeof AGGREGATION_RULES)[number]

export interface MeanOptions {
  /** Non-negative weight of each model (e.g. its sample count); equal weights when absent. */
  weights?: readonly number[]
}

export interface TrimmedMeanOptions {
  /** Fraction β ∈ [0, 0.5) of values dropped from each side, per coordinate: ⌊βn⌋ each. Default 0.2. */
  beta?: number
}

export interface KrumOptions {
  /** Assumed number of Byzantine models; Krum needs n ≥ 2f + 3. */
  f: number
  /** Multi-Krum: average the m best-scored models (1 ≤ m ≤ n − f). Default 1 (plain Krum). */
  m?: number
}

/**
 * Options of `aggregate`; each rule reads only its own. `f` is Krum's assumed Byzantine models and
 * ClippedGossip's for its adaptive radius; bucketing takes `s` (bucket size) and `seed`, and
 * applies the median to the bucket means.
 */
export type AggregateOptions = MeanOptions &
  TrimmedMeanOptions &
  Partial<KrumOptions> &
  Pick<ClippedGossipOptions, 'tau'> &
  Partial<Pick<BucketingOptions, 's' | 'seed'>>

interface Layout {
  names: string[]
  lengths: number[]
}

/** Sorted tensor names and lengths shared by all models. */
function layoutOf(models: readonly Weights[]): Layout {
  const first = models[0]
  if (first === undefined) throw new AggregationError('no models to aggregate', { n: 0 })
  const names = [...first.keys()].sort()
  const lengths = names.map((name) => first.get(name)!.length)
  models.forEach((m, index) => {
    if (m.size !== first.size) {
      throw new AggregationError(`model ${index} has ${m.size} tensors, model 0 has ${first.size}`, {
        index,
        expected: first.size,
        actual: m.size
      })
    }
    names.forEach((name, k) => {
      const t = m.get(name)
      if (t === undefined || t.length !== lengths[k]) {
        throw new AggregationError(`model ${index}: tensor '${name}' is missing or has the wrong length`, {
          index,
          param: name,
          expected: lengths[k],
          actual: t?.length ?? null
        })
      }
    })
  })
  return { names, lengths }
}

function tensorsOf(models: readonly Weights[], name: string): Float32Array[] {
  return models.map((m) => m.get(name)!)
}

function sortScratch(s: Float64Array, n: number): void {
  if (n > INSERTION_SORT_MAX) {
    s.sort()
    return
  }
  for (let i = 1; i < n; i++) {
    const v = s[i]!
    let j = i - 1
    while (j >= 0 && s[j]! > v) {
      s[j + 1] = s[j]!
      j--
    }
    s[j + 1] = v
  }
}

/**
 * Per coordinate: gather the n values into one reused scratch array, sort it, and average the
 * sorted values at [lo, hi) in ascending order (float64). Both the median and the trimmed mean
 * are such a mean, so the output is independent of the models' order (`+ 0` turns -0 into +0).
 */
function sortedMean(models: readonly Weights[], lo: number, hi: number): Map<string, Float32Array> {
  const { names, lengths } = layoutOf(models)
  const n = models.length
  const count = hi - lo
  const scratch = new Float64Array(n)
  const out = new Map<string, Float32Array>()
  names.forEach((name, k) => {
    const xs = tensorsOf(models, name)
    const res = new Float32Array(lengths[k]!)
    for (let j = 0; j < res.length; j++) {
      for (let i = 0; i < n; i++) scratch[i] = xs[i]![j]!
      sortScratch(scratch, n)
      let sum = 0
      for (let i = lo; i < hi; i++) sum += scratch[i]!
      res[j] = sum / count + 0
    }
    out.set(name, res)
  })
  return out
}

/** Σ wᵢ·xᵢ / Σ wᵢ in float64, in the given order of `order`. */
function weightedSum(
  models: readonly Weights[],
  layout: Layout,
  order: readonly number[],
  weights: readonly number[]
): Map<string, Float32Array> {
  let total = 0
  for (const i of order) total += weights[i]!
  const out = new Map<string, Float32Array>()
  layout.names.forEach((name, k) => {
    const acc = new Float64Array(layout.lengths[k]!)
    for (const i of order) {
      const w = weights[i]!
      if (w === 0) continue
      const x = models[i]!.get(name)!
      for (let j = 0; j < acc.length; j++) acc[j] = acc[j]! + w * x[j]!
    }
    const res = new Float32Array(acc.length)
    for (let j = 0; j < acc.length; j++) res[j] = acc[j]! / total
    out.set(name, res)
  })
  return out
}

/**
 * Coordinate-wise (weighted) mean, accumulated in float64 in the given order.
 *
 * @example
 * ```ts
 * const avg = mean([a, b, c], { weights: [600, 300, 100] }) // weighted by sample counts
 * ```
 * @throws {AggregationError} for no models, mismatched layouts, or weights that are not
 *   n finite numbers ≥ 0 with a positive sum.
 */
export function mean(models: readonly Weights[], opts: MeanOptions = {}): Map<string, Float32Array> {
  const layout = layoutOf(models)
  const n = models.length
  const weights = opts.weights ?? new Array<number>(n).fill(1)
  if (
    weights.length !== n ||
    !weights.every((w) => Number.isFinite(w) && w >= 0) ||
    !(weights.reduce((a, b) => a + b, 0) > 0)
  ) {
    throw new AggregationError(`weights must be ${n} finite numbers ≥ 0 with a positive sum`, {
      n,
      weights: [...weights]
    })
  }
  return weightedSum(models, layout, [...Array(n).keys()], weights)
}

/** Number of values the trimmed mean drops from each side for n models and fraction β. */
export function trimCount(n: number, beta: number): number {
  return Math.floor(beta * n + 1e-9)
}

/**
 * Coordinate-wise trimmed mean: per coordinate, drop the ⌊βn⌋ smallest and largest values and
 * average the rest (in ascending order, float64). Independent of the models' order.
 *
 * @example
 * ```ts
 * const robust = trimmedMean(models, { beta: 0.25 }) // 8 models: drop 2 low and 2 high per coordinate
 * ```
 * @throws {AggregationError} for no models, mismatched layouts, or β outside [0, 0.5).
 */
export function trimmedMean(
  models: readonly Weights[],
  opts: TrimmedMeanOptions = {}
): Map<string, Float32Array> {
  const beta = opts.beta ?? DEFAULT_TRIM_FRACTION
  if (!(beta >= 0 && beta < 0.5)) {
    throw new AggregationError(`trim fraction beta must be in [0, 0.5), got ${beta}`, { beta })
  }
  const n = models.length
  const k = trimCount(n, beta)
  return sortedMean(models, k, n - k)
}

/**
 * Coordinate-wise median (the mean of the two middle values for even n). Independent of the
 * models' order.
 *
 * @example
 * ```ts
 * const robust = median(models)
 * ```
 * @throws {AggregationError} for no models or mismatched layouts.
 */
export function median(models: readonly Weights[]): Map<string, Float32Array> {
  const n = models.length
  const h = n >> 1
  return n % 2 === 1 ? sortedMean(models, h, h + 1) : sortedMean(models, h - 1, h + 1)
}

/** Krum scores and the models chosen. */
export interface KrumSelection {
  /** Per model: the sum of squared L2 distances to its n − f − 2 nearest other models. */
  scores: number[]
  /** Indices of the m chosen models, best (lowest score) first; ties go to the lower index. */
  selected: number[]
}

function checkKrum(n: number, opts: KrumOptions): { f: number; m: number } {
  const { f } = opts
  const m = opts.m ?? 1
  if (!Number.isInteger(f) || f < 0)
    throw new AggregationError(`Krum f must be an integer ≥ 0, got ${f}`, { n, f })
  if (n < 2 * f + 3) {
    throw new AggregationError(`Krum needs n ≥ 2f + 3 models: n = ${n}, f = ${f}`, { n, f })
  }
  if (!Number.isInteger(m) || m < 1 || m > n - f) {
    throw new AggregationError(`multi-Krum m must be an integer in [1, n − f] = [1, ${n - f}], got ${m}`, {
      n,
      f,
      m
    })
  }
  return { f, m }
}

/**
 * Krum scoring (Blanchard et al., NeurIPS 2017): score each model by the sum of squared
 * distances to its n − f − 2 nearest neighbours and choose the m lowest.
 *
 * @throws {AggregationError} for no models, mismatched layouts, n < 2f + 3, or m outside [1, n − f].
 */
export function krumSelect(models: readonly Weights[], opts: KrumOptions): KrumSelection {
  const { names } = layoutOf(models)
  const n = models.length
  const { f, m } = checkKrum(n, opts)
  const dist = new Float64Array(n * n)
  for (const name of names) {
    const xs = tensorsOf(models, name)
    for (let a = 0; a < n; a++) {
      const x = xs[a]!
      for (let b = a + 1; b < n; b++) {
        const y = xs[b]!
        let sum = 0
        for (let j = 0; j < x.length; j++) {
          const d = x[j]! - y[j]!
          sum += d * d
        }
        dist[a * n + b] = dist[a * n + b]! + sum
      }
    }
  }
  const neighbours = n - f - 2
  const scores: number[] = []
  for (let a = 0; a < n; a++) {
    const row: number[] = []
    for (let b = 0; b < n; b++) if (b !== a) row.push(a < b ? dist[a * n + b]! : dist[b * n + a]!)
    row.sort((p, q) => p - q)
    let score = 0
    for (let i = 0; i < neighbours; i++) score += row[i]!
    scores.push(score)
  }
  const order = [...scores.keys()].sort((p, q) => scores[p]! - scores[q]! || p - q)
  return { scores, selected: order.slice(0, m) }
}

/**
 * Krum / multi-Krum: the best-scored model (a copy), or with `m > 1` the mean of the m
 * best-scored models, summed best first.
 *
 * @example
 * ```ts
 * const robust = krum(models, { f: 2 })        // n ≥ 7
 * const smoother = krum(models, { f: 2, m: 4 }) // multi-Krum
 * ```
 * @throws {AggregationError} for no models, mismatched layouts, n < 2f + 3, or m outside [1, n − f].
 */
export function krum(models: readonly Weights[], opts: KrumOptions): Map<string, Float32Array> {
  const { selected } = krumSelect(models, opts)
  return weightedSum(models, layoutOf(models), selected, new Array<number>(models.length).fill(1))
}

/**
 * Aggregate with the named rule.
 *
 * @example
 * ```ts
 * const next = aggregate('trimmed-mean', [mine, ...peers], { beta: 0.25 })
 * const chosen = aggregate('krum', [mine, ...peers], { f: 1 })
 * const clipped = aggregate('clipped-gossip', [mine, ...peers]) // the own model first
 * const bucketed = aggregate('bucketing', [mine, ...peers], { s: 2, seed: round })
 * ```
 * @throws {AggregationError} for an unknown rule, missing `f` for Krum, or the rule's own errors.
 */
export function aggregate(
  rule: AggregationRule,
  models: readonly Weights[],
  opts: AggregateOptions = {}
): Map<string, Float32Array> {
  switch (rule) {
    case 'mean':
      return mean(models, { weights: opts.weights })
    case 'trimmed-mean':
      return trimmedMean(models, { beta: opts.beta })
    case 'median':
      return median(models)
    case 'krum':
      if (opts.f === undefined) {
        throw new AggregationError('Krum needs f, the assumed number of Byzantine models', {
          n: models.length
        })
      }
      return krum(models, { f: opts.f, m: opts.m })
    case 'clipped-gossip':
      return clippedGossip(models, {
        ...(opts.tau !== undefined ? { tau: opts.tau } : {}),
        ...(opts.f !== undefined ? { f: opts.f } : {})
      })
    case 'bucketing':
      return bucketing(models, {
        ...(opts.s !== undefined ? { s: opts.s } : {}),
        seed: opts.seed ?? 0,
        inner: median
      })
    default:
      throw new AggregationError(`unknown aggregation rule ${JSON.stringify(rule)}`, { rule })
  }
}
