/**
 * Splitting a dataset into shards, IID or non-IID (a Dirichlet label split as in
 * Hsu, Qi and Brown 2019, "Measuring the effects of non-identical data distribution").
 * A split is a list of index lists into the dataset; every index appears in exactly one
 * shard. All randomness comes from `Rng(seed)`, so a seed gives the same split everywhere.
 */
import { Rng } from '../../common/index.js'
import { DIRICHLET_MAX_ATTEMPTS, DIRICHLET_MIN_SIZE } from './constants.js'
import { classCount, type LabeledSet } from './dataset.js'
import { DatasetArgumentError } from './errors.js'

/** Per-shard sizes and label counts of a split. */
export interface ShardStats {
  /** Samples per shard. */
  sizes: number[]
  /** `labelCounts[shard][label]`: samples of that label in that shard (length `classes` each). */
  labelCounts: number[][]
  /** Per shard, the share of its most common label (1 = a single label; about 1/classes when IID). */
  maxLabelShare: number[]
}

export interface DirichletOptions {
  /** Smallest acceptable shard size, default 1 (no empty shard). */
  minSize?: number
  /** Draws tried before rebalancing, default {@link DIRICHLET_MAX_ATTEMPTS}. */
  maxAttempts?: number
}

function checkShardCount(ds: LabeledSet, nShards: number, minSize = 1): void {
  if (!Number.isInteger(nShards) || nShards < 1) {
    throw new DatasetArgumentError('DATASET_ARGUMENT', `nShards must be a positive integer, got ${nShards}`, {
      nShards
    })
  }
  if (nShards * minSize > ds.count) {
    throw new DatasetArgumentError(
      'DATASET_ARGUMENT',
      `cannot split ${ds.count} samples into ${nShards} shards of at least ${minSize}`,
      { nShards, count: ds.count, minSize }
    )
  }
}

/**
 * An IID split: a seeded permutation of all indices cut into `nShards` runs whose sizes
 * differ by at most one. Indices within a shard are in the permutation's (random) order.
 *
 * Thrown `DatasetArgumentError` when `nShards` is not a positive integer or exceeds the count.
 */
export function shardIid(ds: LabeledSet, nShards: number, seed: number): number[][] {
  checkShardCount(ds, nShards)
  const order = Array.from({ length: ds.count }, (_, i) => i)
  new Rng(seed).shuffle(order)
  const base = Math.floor(ds.count / nShards)
  const extra = ds.count % nShards
  const shards: number[][] = []
  let at = 0
  for (let s = 0; s < nShards; s++) {
    const n = base + (s < extra ? 1 : 0)
    shards.push(order.slice(at, at + n))
    at += n
  }
  return shards
}

/**
 * A non-IID split by label: for each class, proportions `p ~ Dirichlet(alpha, …, alpha)`
 * over the shards are drawn, and that class's samples (in a seeded random order) are cut
 * into consecutive runs of sizes `floor(n_c · cumsum(p))`. Small alpha (0.1) gives shards
 * dominated by one or two labels; large alpha (100) approaches IID.
 *
 * No shard ends up smaller than `opts.minSize` (default 1, i.e. none empty):
 * 1. the proportions of all classes are redrawn (from the same seeded stream) until a draw
 *    gives every shard at least `minSize` samples, at most `opts.maxAttempts` times
 *    (default 100) — the usual practice in federated-learning benchmarks;
 * 2. if no draw qualifies, the last one is rebalanced minimally: while some shard is short,
 *    one sample moves to it from the largest shard, taken from that shard's most common
 *    label (lowest shard and label index on ties). Each move changes one sample, so the
 *    skew of the draw is kept as far as possible.
 * Finally each shard's indices are shuffled (seeded), so a shard is not ordered by class.
 *
 * Thrown `DatasetArgumentError` for `alpha <= 0`, a bad `nShards`, or `nShards · minSize > count`.
 */
export function shardDirichlet(
  ds: LabeledSet,
  nShards: number,
  alpha: number,
  seed: number,
  opts: DirichletOptions = {}
): number[][] {
  const minSize = opts.minSize ?? DIRICHLET_MIN_SIZE
  const maxAttempts = opts.maxAttempts ?? DIRICHLET_MAX_ATTEMPTS
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new DatasetArgumentError('DATASET_ARGUMENT', `alpha must be a positive number, got ${alpha}`, {
      alpha
    })
  }
  if (!Number.isInteger(minSize) || minSize < 0) {
    throw new DatasetArgumentError('DATASET_ARGUMENT', `minSize must be a non-negative integer`, { minSize })
  }
  checkShardCount(ds, nShards, minSize)
  const classes = classCount(ds)
  const rng = new Rng(seed)

  // Indices of each class, in a seeded random order.
  const byClass: number[][] = Array.from({ length: classes }, () => [])
  for (let i = 0; i < ds.count; i++) byClass[ds.labels[i]!]!.push(i)
  for (const idx of byClass) rng.shuffle(idx)

  // counts[c][s]: samples of class c going to shard s.
  const draw = (): number[][] =>
    byClass.map((idx) => {
      const n = idx.length
      const row = new Array<number>(nShards).fill(0)
      if (n === 0) return row
      let p = rng.dirichlet(alpha, nShards)
      // For tiny alpha every gamma draw can underflow to 0 (0/0 = NaN): the alpha → 0
      // limit of the Dirichlet is a one-hot vector, so use that.
      if (!p.every(Number.isFinite)) {
        const hot = rng.int(nShards)
        p = p.map((_, s) => (s === hot ? 1 : 0))
      }
      let cum = 0
      let prev = 0
      for (let s = 0; s < nShards; s++) {
        cum += p[s]!
        const cut = s === nShards - 1 ? n : Math.min(n, Math.floor(cum * n))
        row[s] = cut - prev
        prev = cut
      }
      return row
    })
  const sizesOf = (counts: number[][]): number[] =>
    Array.from({ length: nShards }, (_, s) => counts.reduce((a, row) => a + row[s]!, 0))

  let counts = draw()
  let sizes = sizesOf(counts)
  for (let attempt = 1; attempt < maxAttempts && sizes.some((n) => n < minSize); attempt++) {
    counts = draw()
    sizes = sizesOf(counts)
  }

  // Minimal rebalance if no draw qualified.
  for (;;) {
    const short = sizes.findIndex((n) => n < minSize)
    if (short < 0) break
    let donor = 0
    for (let s = 1; s < nShards; s++) if (sizes[s]! > sizes[donor]!) donor = s
    let label = 0
    for (let c = 1; c < classes; c++) if (counts[c]![donor]! > counts[label]![donor]!) label = c
    counts[label]![donor]!--
    counts[label]![short]!++
    sizes[donor]!--
    sizes[short]!++
  }

  const shards: number[][] = Array.from({ length: nShards }, () => [])
  for (let c = 0; c < classes; c++) {
    const idx = byClass[c]!
    let at = 0
    for (let s = 0; s < nShards; s++) {
      const n = counts[c]![s]!
      for (let k = 0; k < n; k++) shards[s]!.push(idx[at + k]!)
      at += n
    }
  }
  for (const shard of shards) rng.shuffle(shard)
  return shards
}

/**
 * Per-shard sizes and label counts of a split.
 *
 * Thrown `DatasetArgumentError` when an index is out of range.
 */
export function shardStats(ds: LabeledSet, shards: ArrayLike<number>[]): ShardStats {
  const classes = classCount(ds)
  const labelCounts = shards.map((shard) => {
    const counts = new Array<number>(classes).fill(0)
    for (let i = 0; i < shard.length; i++) {
      const j = shard[i]!
      if (!Number.isInteger(j) || j < 0 || j >= ds.count) {
        throw new DatasetArgumentError('DATASET_ARGUMENT', `index ${j} out of range [0, ${ds.count})`, {
          index: j
        })
      }
      const label = ds.labels[j]!
      counts[label] = (counts[label] ?? 0) + 1
    }
    return counts
  })
  const sizes = shards.map((s) => s.length)
  const maxLabelShare = labelCounts.map((row, s) => (sizes[s]! > 0 ? Math.max(...row) / sizes[s]! : 0))
  return { sizes, labelCounts, maxLabelShare }
}
