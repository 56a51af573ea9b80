import assert from 'node:assert/strict'
import { hasCode } from '../../../../src/common/errors.js'
import { Rng } from '../../../../src/common/rng.js'
import { applyUpdate, diffWeights, l2Norm, privatizeUpdate } from '../../../../src/training/privacy/index.js'

function randomTensors(rng: Rng, sizes: number[], scale: number): Float32Array[] {
  return sizes.map((n) => Float32Array.from({ length: n }, () => scale * rng.gaussian()))
}

function dot(a: Float32Array[], b: Float32Array[]): number {
  let s = 0
  a.forEach((t, k) => t.forEach((v, i) => (s += v * b[k]![i]!)))
  return s
}

describe('diffWeights / applyUpdate', () => {
  it('computes new − base and base + update, for arrays and maps', () => {
    const base = [new Float32Array([1, 2]), new Float32Array([3])]
    const next = [new Float32Array([1.5, 1]), new Float32Array([5])]
    const u = diffWeights(next, base)
    assert.deepEqual(
      u.map((t) => [...t]),
      [[0.5, -1], [2]]
    )
    assert.deepEqual(applyUpdate(base, u), next)

    const mb = new Map([
      ['w', new Float32Array([1, 1])],
      ['b', new Float32Array([0])]
    ])
    const mn = new Map([
      ['b', new Float32Array([0.25])],
      ['w', new Float32Array([2, 0])]
    ])
    const mu = diffWeights(mn, mb)
    assert.ok(mu instanceof Map)
    assert.deepEqual([...mu.get('w')!], [1, -1])
    assert.deepEqual([...mu.get('b')!], [0.25])
    const back = applyUpdate(mb, mu)
    assert.deepEqual([...back.keys()], ['w', 'b']) // the base's order
    assert.deepEqual(back, mn) // Map entries compare unordered
  })

  it('rejects mismatched shapes with UPDATE_SHAPE_MISMATCH', () => {
    const isMismatch = (e: unknown): boolean => hasCode(e, 'UPDATE_SHAPE_MISMATCH')
    assert.throws(() => diffWeights([new Float32Array(2)], [new Float32Array(3)]), isMismatch)
    assert.throws(
      () => diffWeights([new Float32Array(2)], [new Float32Array(2), new Float32Array(1)]),
      isMismatch
    )
    assert.throws(
      () => applyUpdate(new Map([['a', new Float32Array(1)]]), new Map([['b', new Float32Array(1)]])),
      isMismatch
    )
  })
})

describe('privatizeUpdate', () => {
  const sizes = [1000, 250, 10]

  it('σ = 0: clips to exactly C when larger, keeps the direction, leaves small updates alone', () => {
    const rng = new Rng(1)
    const u = randomTensors(rng, sizes, 0.5)
    const norm = l2Norm(u)
    const C = norm / 7
    const copy = u.map((t) => t.slice())
    const out = privatizeUpdate(u, { clipNorm: C, noiseMultiplier: 0, rng })
    assert.deepEqual(u, copy) // input untouched
    assert.ok(Math.abs(out.preClipNorm - norm) < 1e-12 * norm)
    const n = l2Norm(out.update)
    assert.ok(n <= C, `norm ${n} > C ${C}`)
    assert.ok(n > C * (1 - 1e-6), `norm ${n} ≪ C ${C}`)
    assert.ok(Math.abs(out.scale - C / norm) < 1e-6 * (C / norm))
    const cosine = dot(out.update, u) / (n * norm)
    assert.ok(cosine > 1 - 1e-12, `direction changed: cos ${cosine}`)

    const small = privatizeUpdate(u, { clipNorm: 2 * norm, noiseMultiplier: 0, rng })
    assert.equal(small.scale, 1)
    assert.deepEqual(small.update, u)
  })

  it('σ > 0: the noise has standard deviation σC and zero mean', () => {
    const u = randomTensors(new Rng(2), [60000, 40000], 1)
    const C = 0.5
    const sigma = 1.5
    const clipped = privatizeUpdate(u, { clipNorm: C, noiseMultiplier: 0, rng: new Rng(0) }).update
    const noised = privatizeUpdate(u, { clipNorm: C, noiseMultiplier: sigma, rng: new Rng(3) }).update
    let n = 0
    let sum = 0
    let sumSq = 0
    noised.forEach((t, k) =>
      t.forEach((v, i) => {
        const d = v - clipped[k]![i]!
        n++
        sum += d
        sumSq += d * d
      })
    )
    const mean = sum / n
    const std = Math.sqrt(sumSq / n - mean * mean)
    // n = 1e5: the sample std is within 1% of σC with overwhelming probability (its sd is ≈ 0.22%)
    assert.ok(Math.abs(std / (sigma * C) - 1) < 0.01, `std ${std} vs ${sigma * C}`)
    assert.ok(Math.abs(mean) < (5 * sigma * C) / Math.sqrt(n), `mean ${mean}`)
  })

  it('is deterministic for a seed, and independent of map insertion order', () => {
    const u = randomTensors(new Rng(4), sizes, 1)
    const opts = (seed: number): { clipNorm: number; noiseMultiplier: number; rng: Rng } => ({
      clipNorm: 1,
      noiseMultiplier: 1.1,
      rng: new Rng(seed)
    })
    assert.deepEqual(privatizeUpdate(u, opts(9)).update, privatizeUpdate(u, opts(9)).update)
    assert.notDeepEqual(privatizeUpdate(u, opts(9)).update, privatizeUpdate(u, opts(10)).update)

    const m1 = new Map([
      ['a', u[0]!],
      ['b', u[1]!],
      ['c', u[2]!]
    ])
    const m2 = new Map([
      ['c', u[2]!],
      ['a', u[0]!],
      ['b', u[1]!]
    ])
    const r1 = privatizeUpdate(m1, opts(11)).update
    const r2 = privatizeUpdate(m2, opts(11)).update
    for (const k of ['a', 'b', 'c']) assert.deepEqual(r1.get(k), r2.get(k))
    assert.deepEqual([...r2.keys()], ['c', 'a', 'b'])
  })

  it('rejects bad parameters and non-finite updates', () => {
    const rng = new Rng(5)
    const u = [new Float32Array([1, 2, 3])]
    for (const clipNorm of [0, -1, Infinity, Number.NaN]) {
      assert.throws(
        () => privatizeUpdate(u, { clipNorm, noiseMultiplier: 1, rng }),
        (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
      )
    }
    assert.throws(
      () => privatizeUpdate(u, { clipNorm: 1, noiseMultiplier: -1, rng }),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
    assert.throws(
      () => privatizeUpdate([new Float32Array([1, Number.NaN])], { clipNorm: 1, noiseMultiplier: 1, rng }),
      (e) => hasCode(e, 'UPDATE_NON_FINITE')
    )
  })
})
