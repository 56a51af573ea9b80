import assert from 'node:assert/strict'
import {
  AggregationError,
  aggregate,
  bucketing,
  buckets,
  clippedGossip,
  clippingRadius,
  mean,
  median
} from '../../../../src/training/aggregate/index.js'
import { assertBitIdentical, gaussianModel, maxAbsDiff, type Model } from './helpers.js'

const m = (a: number[], b: number[] = [0]): Model =>
  new Map([
    ['a', Float32Array.from(a)],
    ['b', Float32Array.from(b)]
  ])

function norm(x: Model, y: Model): number {
  let s = 0
  for (const [name, t] of x) {
    const u = y.get(name)!
    for (let j = 0; j < t.length; j++) s += (t[j]! - u[j]!) ** 2
  }
  return Math.sqrt(s)
}

describe('aggregate: ClippedGossip (self-centered clipping)', () => {
  it('is the mean when every neighbour lies within τ', () => {
    const models = [m([0, 0], [0]), m([1, 0], [0]), m([0, 1], [0]), m([1, 1], [1])]
    const out = clippedGossip(models, { tau: 10 })
    assert.ok(maxAbsDiff(out, mean(models)) < 1e-7)
  })

  it('clips a neighbour to distance τ from the own model', () => {
    // own at 0, one neighbour at 3 along a, τ = 1: own + (1/2)·1 = 0.5
    const out = clippedGossip([m([0, 0]), m([3, 0])], { tau: 1 })
    assert.deepEqual([...out.get('a')!], [0.5, 0])
    assert.deepEqual([...out.get('b')!], [0])
    // τ = 0: the own model, whatever the others send
    assertBitIdentical(clippedGossip([m([1, 2]), m([1e6, -1e6])], { tau: 0 }), m([1, 2]))
  })

  it('bounds what a Byzantine neighbour can do to τ/n, however far it is', () => {
    const own = gaussianModel(1, 1, 0.01)
    const honest = [gaussianModel(2, 1, 0.01), gaussianModel(3, 1, 0.01), gaussianModel(4, 1, 0.01)]
    const reference = clippedGossip([own, ...honest])
    for (const far of [10, 1e3, 1e6]) {
      const out = clippedGossip([own, ...honest, gaussianModel(9, far, 1)])
      const tau = clippingRadius(
        [...honest, gaussianModel(9, far, 1)].map((h) => norm(own, h)),
        {}
      )
      assert.ok(norm(out, own) <= tau + 1e-6, `moved ${norm(out, own)} > τ ${tau}`)
      // The poisoned neighbour moves the node by at most τ/5 relative to the honest outcome (scaled to 4/5).
      assert.ok(norm(out, reference) < 0.05, `far = ${far}: ${norm(out, reference)}`)
    }
    // The mean, by contrast, follows the attacker.
    assert.ok(norm(mean([own, ...honest, gaussianModel(9, 1e3, 1)]), own) > 100)
  })

  it('adaptive τ: the distance of the (m − f)-th nearest neighbour, f = ⌈m/3⌉ by default', () => {
    assert.equal(clippingRadius([5, 1, 3, 2]), 2) // m = 4, f = 2 → 2nd nearest
    assert.equal(clippingRadius([5, 1, 3]), 3) // m = 3, f = 1 → 2nd nearest
    assert.equal(clippingRadius([5, 1, 3], { f: 0 }), 5)
    assert.equal(clippingRadius([7], {}), 7) // a single neighbour is not clipped
    assert.equal(clippingRadius([]), 0)
    assert.equal(clippingRadius([5, 1], { tau: 0.5 }), 0.5)
  })

  it('is deterministic and refuses bad arguments with AGGREGATION_INVALID', () => {
    const models = [gaussianModel(1), gaussianModel(2), gaussianModel(3, 5)]
    assertBitIdentical(clippedGossip(models), clippedGossip(models))
    assertBitIdentical(aggregate('clipped-gossip', models), clippedGossip(models))
    for (const opts of [{ tau: -1 }, { tau: NaN }, { tau: Infinity }, { f: -1 }, { f: 0.5 }]) {
      assert.throws(() => clippedGossip(models, opts), {
        name: 'AggregationError',
        code: 'AGGREGATION_INVALID'
      })
    }
    assert.throws(() => clippedGossip([]), AggregationError)
    assert.throws(() => clippedGossip([m([1, 2]), m([1])]), { code: 'AGGREGATION_INVALID' })
  })
})

describe('aggregate: bucketing', () => {
  it('partitions a seeded shuffle into buckets of s', () => {
    const b = buckets(7, 2, 42)
    assert.deepEqual(
      b.map((g) => g.length),
      [2, 2, 2, 1]
    )
    assert.deepEqual(
      b.flat().sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6]
    )
    assert.deepEqual(buckets(7, 2, 42), b)
    assert.notDeepEqual(buckets(7, 2, 43), b)
    assert.throws(() => buckets(3, 0, 1), { code: 'AGGREGATION_INVALID' })
  })

  it('applies the inner rule to bucket means', () => {
    const models = [m([1]), m([2]), m([3]), m([4])]
    const seen: number[][] = []
    bucketing(models, {
      s: 2,
      seed: 7,
      inner: (means) => {
        seen.push(means.map((x) => x.get('a')![0]!))
        return median(means)
      }
    })
    const groups = buckets(4, 2, 7)
    assert.deepEqual(
      seen[0],
      groups.map((g) => g.reduce((s, i) => s + i + 1, 0) / g.length)
    )
    // s = 1: the inner rule on the models themselves
    assertBitIdentical(bucketing(models, { s: 1, seed: 3, inner: median }), median(models))
    // s ≥ n: one bucket, the mean
    assertBitIdentical(bucketing(models, { s: 4, seed: 3, inner: median }), mean(models))
  })

  it('with the median, keeps one poisoned model of five from the result', () => {
    const honest = [1, 2, 3, 4].map((i) => gaussianModel(i, 1, 0.01))
    for (let seed = 0; seed < 20; seed++) {
      const out = aggregate('bucketing', [...honest, gaussianModel(9, 1e4, 1)], { seed })
      for (const t of out.values()) for (const v of t) assert.ok(Math.abs(v - 1) < 0.1, `seed ${seed}: ${v}`)
    }
  })

  it('is deterministic for a seed', () => {
    const models = [1, 2, 3, 4, 5].map((i) => gaussianModel(i, i))
    assertBitIdentical(
      aggregate('bucketing', models, { seed: 5 }),
      aggregate('bucketing', models, { seed: 5 })
    )
  })
})
