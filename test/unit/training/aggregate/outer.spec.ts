import assert from 'node:assert/strict'
import {
  AggregationError,
  DILOCO_OUTER,
  outerNesterovStep
} from '../../../../src/training/aggregate/index.js'

const w = (xs: number[]): Map<string, Float32Array> => new Map([['p', Float32Array.from(xs)]])

describe('training/aggregate DiLoCo outer Nesterov step', () => {
  it('with lr 1 and no momentum it returns the aggregate (plain averaging)', () => {
    const base = w([0.5, -1.25, 3])
    const agg = w([0.25, -1, 2.5])
    const r = outerNesterovStep(base, agg, undefined, { lr: 1, momentum: 0 })
    assert.deepEqual(r.weights, agg)
    assert.deepEqual(r.momentum, w([0.25, -0.25, 0.5]))
  })

  it('follows v ← μv + Δ, next = base − lr(Δ + μv) over two rounds, inputs untouched', () => {
    const base = w([1, 2])
    const agg = w([0.5, 2.5]) // Δ = [0.5, −0.5]
    const r1 = outerNesterovStep(base, agg, undefined, DILOCO_OUTER)
    // v = Δ; next = base − 0.7·(Δ + 0.9Δ) = base − 1.33Δ
    assert.deepEqual(r1.momentum, w([0.5, -0.5]))
    assert.deepEqual(Array.from(r1.weights.get('p')!), [Math.fround(1 - 0.665), Math.fround(2 + 0.665)])
    assert.deepEqual(base, w([1, 2]))
    assert.deepEqual(agg, w([0.5, 2.5]))
    const r2 = outerNesterovStep(r1.weights, w([0.25, 2.25]), r1.momentum, DILOCO_OUTER)
    const b = Array.from(r1.weights.get('p')!)
    const delta = [b[0]! - 0.25, b[1]! - 2.25]
    const v = [0.9 * 0.5 + delta[0]!, 0.9 * -0.5 + delta[1]!]
    const next = b.map((x, i) => Math.fround(x - 0.7 * (delta[i]! + 0.9 * v[i]!)))
    assert.deepEqual(Array.from(r2.momentum.get('p')!), v.map(Math.fround))
    assert.deepEqual(Array.from(r2.weights.get('p')!), next)
  })

  it('momentum speeds up slow local progress: closer to the optimum than plain averaging after 20 rounds', () => {
    // Each round, local training moves the model 10 % of the way to the optimum (0).
    const run = (opts: { lr: number; momentum: number }): number => {
      let base = w([1, -2, 4])
      let mom: Map<string, Float32Array> | undefined
      for (let r = 0; r < 20; r++) {
        const agg = w(Array.from(base.get('p')!, (x) => 0.9 * x))
        const s = outerNesterovStep(base, agg, mom, opts)
        base = s.weights
        mom = s.momentum
      }
      return Math.hypot(...base.get('p')!)
    }
    const plain = run({ lr: 1, momentum: 0 })
    const nesterov = run({ lr: 1, momentum: 0.5 })
    assert.ok(plain > 0.5 && nesterov < plain / 5, `plain ${plain}, nesterov ${nesterov}`)
  })

  it('refuses bad hyper-parameters and mismatched tensors (AGGREGATION_INVALID)', () => {
    const base = w([1, 2])
    const bad = (fn: () => unknown): void =>
      assert.throws(fn, (e: unknown) => e instanceof AggregationError && e.code === 'AGGREGATION_INVALID')
    bad(() => outerNesterovStep(base, base, undefined, { lr: 0, momentum: 0.9 }))
    bad(() => outerNesterovStep(base, base, undefined, { lr: 0.7, momentum: 1 }))
    bad(() => outerNesterovStep(base, w([1, 2, 3]), undefined))
    bad(() => outerNesterovStep(base, new Map([['q', Float32Array.of(1, 2)]]), undefined))
    bad(() => outerNesterovStep(base, base, w([0])))
  })
})
