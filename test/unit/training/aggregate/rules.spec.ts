import assert from 'node:assert/strict'
import { Rng } from '../../../../src/common/rng.js'
import {
  AggregationError,
  aggregate,
  krum,
  krumSelect,
  mean,
  median,
  trimCount,
  trimmedMean
} from '../../../../src/training/aggregate/index.js'
import { assertBitIdentical, gaussianModel, type Model } from './helpers.js'

const m = (a: number[], b: number[] = [0]): Model =>
  new Map([
    ['a', Float32Array.from(a)],
    ['b', Float32Array.from(b)]
  ])

/** 7 honest models around 1 (σ 0.01) and `poisoned` models at `value`. */
function swarm(poisoned: number, value: number, honest = 7): Model[] {
  const models: Model[] = []
  for (let i = 0; i < honest; i++) models.push(gaussianModel(100 + i, 1, 0.01))
  for (let i = 0; i < poisoned; i++) models.push(gaussianModel(200 + i, value, 1))
  return models
}

function range(models: Model[], name: string, j: number): [number, number] {
  const xs = models.map((x) => x.get(name)![j]!)
  return [Math.min(...xs), Math.max(...xs)]
}

/** Every coordinate of `out` lies within the honest models' range at that coordinate. */
function assertWithinHonest(out: Model, honest: Model[]): void {
  for (const [name, t] of out) {
    for (let j = 0; j < t.length; j++) {
      const [lo, hi] = range(honest, name, j)
      assert.ok(t[j]! >= lo && t[j]! <= hi, `${name}[${j}] = ${t[j]} outside [${lo}, ${hi}]`)
    }
  }
}

describe('aggregate: rules', () => {
  it('mean is exact on small inputs, weighted by sample counts', () => {
    const out = mean([m([1, 2, 3], [10]), m([3, 4, 5], [20])])
    assert.deepEqual([...out.get('a')!], [2, 3, 4])
    assert.deepEqual([...out.get('b')!], [15])
    const w = mean([m([1, 2, 3], [10]), m([3, 4, 5], [20])], { weights: [1, 3] })
    assert.deepEqual([...w.get('a')!], [2.5, 3.5, 4.5])
    assert.deepEqual([...w.get('b')!], [17.5])
    const zero = mean([m([1], [1]), m([5], [5])], { weights: [0, 2] })
    assert.deepEqual([...zero.get('a')!], [5])
    assert.deepEqual([...out.keys()], ['a', 'b'])
  })

  it('mean rejects bad weights', () => {
    const two = [m([1]), m([2])]
    for (const weights of [[1], [1, -1], [0, 0], [1, NaN], [1, Infinity]]) {
      assert.throws(() => mean(two, { weights }), { code: 'AGGREGATION_INVALID' })
    }
  })

  it('every rule rejects no models and mismatched layouts', () => {
    const rules = [
      (x: Model[]) => mean(x),
      (x: Model[]) => median(x),
      (x: Model[]) => trimmedMean(x),
      (x: Model[]) => krum(x, { f: 0 })
    ]
    for (const rule of rules) {
      assert.throws(() => rule([]), { code: 'AGGREGATION_INVALID' })
      assert.throws(() => rule([m([1, 2]), m([1]), m([1, 2])]), { code: 'AGGREGATION_INVALID' })
      assert.throws(() => rule([m([1]), new Map([['a', Float32Array.of(1)]]), m([1])]), AggregationError)
    }
  })

  it('median is exact, coordinate-wise, for odd and even n', () => {
    const odd = median([m([1, 9, -3]), m([5, 2, -1]), m([3, 7, -2])])
    assert.deepEqual([...odd.get('a')!], [3, 7, -2])
    const even = median([m([1, 9]), m([5, 2]), m([3, 7]), m([4, 100])])
    assert.deepEqual([...even.get('a')!], [3.5, 8])
    assert.deepEqual(
      [...median([m([-0]), m([0]), m([-0])]).get('a')!].map((x) => Object.is(x, -0)),
      [false]
    )
  })

  it('trimmed mean drops ⌊βn⌋ values per side', () => {
    assert.equal(trimCount(8, 0.25), 2)
    assert.equal(trimCount(100, 0.29), 29)
    assert.equal(trimCount(3, 0.2), 0)
    const out = trimmedMean([m([1]), m([2]), m([3]), m([100]), m([-50])], { beta: 0.2 })
    assert.deepEqual([...out.get('a')!], [2])
    assert.deepEqual([...trimmedMean([m([1]), m([4])], { beta: 0.4 }).get('a')!], [2.5])
    for (const beta of [-0.1, 0.5, NaN]) {
      assert.throws(() => trimmedMean([m([1]), m([2])], { beta }), { code: 'AGGREGATION_INVALID' })
    }
  })

  it('a poisoned model does not move the median or the trimmed mean out of the honest range', () => {
    const models = swarm(1, 1e6)
    const honest = models.slice(0, 7)
    assertWithinHonest(median(models), honest)
    assertWithinHonest(trimmedMean(models, { beta: 0.125 }), honest)
    const twoSided = [...honest, gaussianModel(300, 1e6), gaussianModel(301, -1e6)]
    assertWithinHonest(median(twoSided), honest)
    assertWithinHonest(trimmedMean(twoSided, { beta: 0.2 }), honest)
    // whereas the mean is dragged far away
    assert.ok(mean(models).get('a')![0]! > 1e5)
  })

  it('Krum picks an honest model when f poisoned models are far away', () => {
    for (const value of [50, -1e4, 1e6]) {
      const models = swarm(2, value) // n = 9, f = 2
      const { selected, scores } = krumSelect(models, { f: 2 })
      assert.equal(scores.length, 9)
      assert.ok(selected[0]! < 7, `selected ${selected[0]}`)
      assertBitIdentical(
        krum(models, { f: 2 }),
        new Map([...models[selected[0]!]!].sort(([x], [y]) => (x < y ? -1 : 1)))
      )
      const multi = krumSelect(models, { f: 2, m: 7 })
      assert.deepEqual([...multi.selected].sort(), [0, 1, 2, 3, 4, 5, 6])
      assertWithinHonest(krum(models, { f: 2, m: 5 }), models.slice(0, 7))
    }
  })

  it('Krum throws AGGREGATION_INVALID naming n and f when there are too few models', () => {
    const models = swarm(0, 0, 6)
    assert.throws(
      () => krum(models, { f: 2 }),
      (err: unknown) => {
        assert.ok(err instanceof AggregationError)
        assert.equal(err.code, 'AGGREGATION_INVALID')
        assert.deepEqual(err.fields, { n: 6, f: 2 })
        return true
      }
    )
    krum(swarm(0, 0, 7), { f: 2 })
    for (const opts of [{ f: -1 }, { f: 0.5 }, { f: 1, m: 0 }, { f: 1, m: 6 }, { f: 1, m: 1.5 }]) {
      assert.throws(() => krum(models, opts), { code: 'AGGREGATION_INVALID' })
    }
    krum(models, { f: 1, m: 5 })
  })

  it('is deterministic, and order-independent for median, trimmed mean and Krum', () => {
    const models = swarm(2, 30)
    const shuffled = new Rng(5).shuffle([...models]) as Model[]
    assertBitIdentical(
      mean(models, { weights: [...models.keys()].map((i) => i + 1) }),
      mean(models, { weights: [...models.keys()].map((i) => i + 1) })
    )
    for (const rule of [
      (x: Model[]) => median(x),
      (x: Model[]) => trimmedMean(x, { beta: 0.25 }),
      (x: Model[]) => krum(x, { f: 2 }),
      (x: Model[]) => krum(x, { f: 2, m: 4 })
    ]) {
      const out = rule(models)
      assertBitIdentical(out, rule(models))
      assertBitIdentical(out, rule(shuffled))
    }
  })

  it('aggregate dispatches by name and reports bad options', () => {
    const models = swarm(2, 30)
    assertBitIdentical(
      aggregate('mean', models, { weights: [1, 2, 3, 4, 5, 6, 7, 8, 9] }),
      mean(models, { weights: [1, 2, 3, 4, 5, 6, 7, 8, 9] })
    )
    assertBitIdentical(aggregate('median', models), median(models))
    assertBitIdentical(aggregate('trimmed-mean', models), trimmedMean(models, { beta: 0.2 }))
    assertBitIdentical(aggregate('krum', models, { f: 2, m: 3 }), krum(models, { f: 2, m: 3 }))
    assert.throws(() => aggregate('krum', models), { code: 'AGGREGATION_INVALID' })
    assert.throws(() => aggregate('average' as 'mean', models), { code: 'AGGREGATION_INVALID' })
  })
})
