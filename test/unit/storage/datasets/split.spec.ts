import assert from 'node:assert/strict'
import {
  DatasetArgumentError,
  shardDirichlet,
  shardIid,
  shardStats
} from '../../../../src/storage/datasets/index.js'
import { partitionProblem, synthetic } from './helpers.js'

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

describe('datasets: sharding', () => {
  const ds = synthetic(3000, { classes: 10, shape: [1], seed: 11 })

  it('IID shards partition every index exactly once, sizes within one, deterministic', () => {
    const shards = shardIid(ds, 7, 3)
    assert.equal(shards.length, 7)
    assert.equal(partitionProblem(ds.count, shards), undefined)
    const sizes = shards.map((s) => s.length)
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`)
    assert.deepEqual(shardIid(ds, 7, 3), shards)
    assert.notDeepEqual(shardIid(ds, 7, 4), shards)
    const stats = shardStats(ds, shards)
    assert.deepEqual(stats.sizes, sizes)
    stats.labelCounts.forEach((row, s) =>
      assert.equal(
        row.reduce((a, b) => a + b, 0),
        sizes[s]
      )
    )
  })

  it('Dirichlet(0.5) shards are skewed, non-empty, an exact partition, and deterministic', () => {
    const shards = shardDirichlet(ds, 10, 0.5, 42)
    assert.equal(shards.length, 10)
    assert.equal(partitionProblem(ds.count, shards), undefined)
    for (const s of shards) assert.ok(s.length > 0)
    assert.deepEqual(shardDirichlet(ds, 10, 0.5, 42), shards)
    assert.notDeepEqual(shardDirichlet(ds, 10, 0.5, 43), shards)

    const skew = mean(shardStats(ds, shards).maxLabelShare)
    const iid = mean(shardStats(ds, shardIid(ds, 10, 42)).maxLabelShare)
    assert.ok(iid < 0.2, `IID max label share ${iid}`)
    assert.ok(skew > 2 * iid, `Dirichlet(0.5) max label share ${skew} vs IID ${iid}`)
    // Shards are not ordered by class.
    const first = shards.find((s) => s.length > 20)!
    const labels = first.map((j) => ds.labels[j]!)
    assert.notDeepEqual(
      labels,
      [...labels].sort((a, b) => a - b)
    )
  })

  it('large alpha approaches IID', () => {
    const near = mean(shardStats(ds, shardDirichlet(ds, 5, 1000, 1)).maxLabelShare)
    assert.ok(near < 0.15, `Dirichlet(1000) max label share ${near}`)
  })

  it('never leaves a shard empty, even when every draw would (minimal rebalance)', () => {
    // 12 samples of 2 classes over 10 shards with a tiny alpha: each class lands (almost)
    // whole in one shard, so most shards are empty in every draw.
    const tiny = synthetic(12, { classes: 2, shape: [1], seed: 2 })
    for (const seed of [1, 2, 3]) {
      const shards = shardDirichlet(tiny, 10, 0.001, seed)
      assert.equal(partitionProblem(tiny.count, shards), undefined)
      assert.ok(
        shards.every((s) => s.length >= 1),
        `sizes ${shards.map((s) => s.length)}`
      )
      assert.deepEqual(shardDirichlet(tiny, 10, 0.001, seed), shards)
    }
    const big = shardDirichlet(ds, 4, 0.05, 9, { minSize: 100 })
    assert.ok(big.every((s) => s.length >= 100))
    assert.equal(partitionProblem(ds.count, big), undefined)
  })

  it('rejects impossible splits', () => {
    const small = synthetic(5)
    assert.throws(() => shardIid(small, 6, 1), DatasetArgumentError)
    assert.throws(() => shardIid(small, 0, 1), DatasetArgumentError)
    assert.throws(() => shardDirichlet(small, 2, 0, 1), DatasetArgumentError)
    assert.throws(() => shardDirichlet(small, 2, 1, 1, { minSize: 3 }), DatasetArgumentError)
    assert.throws(() => shardStats(small, [[0, 5]]), DatasetArgumentError)
  })
})
