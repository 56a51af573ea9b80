import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { hasCode } from '../../../../src/common/errors.js'
import { DEFAULT_ORDERS, computeRdp, rdpToEpsilon } from '../../../../src/training/privacy/index.js'

interface GridCase {
  q: number
  sigma: number
  order: number
  steps: number
  rdp: number
}
interface EpsCase {
  name: string
  q?: number
  sigma?: number
  steps?: number
  composition?: Array<{ q: number; sigma: number; steps: number }>
  delta: number
  orders: 'DEFAULT_ORDERS' | number[]
  epsilon: number
  order: number
  epsilon_opacus_alphas?: number
  order_opacus_alphas?: number
  epsilon_classic_conversion_opacus_alphas?: number
  published?: { epsilon: number; order?: number; conversion: 'classic' | 'balle'; source: string }
}

function load<T>(name: string): { cases: T[] } {
  return JSON.parse(readFileSync(new URL(`../../../vectors/rdp/${name}`, import.meta.url), 'utf8')) as {
    cases: T[]
  }
}

const relErr = (got: number, want: number): number =>
  got === want ? 0 : Math.abs(got - want) / Math.abs(want)

/** Opacus' RDPAccountant.DEFAULT_ALPHAS: ours without 11. */
const OPACUS_ALPHAS = DEFAULT_ORDERS.filter((a) => a !== 11)

/** Mironov's original conversion, used by TF-Privacy before 2020 (for the published MNIST figures). */
function classicEpsilon(orders: readonly number[], rdp: number[], delta: number): number {
  return Math.min(...orders.map((a, i) => rdp[i]! - Math.log(delta) / (a - 1)))
}

describe('computeRdp', () => {
  it('matches the high-precision grid (rel. 1e-9 integer orders, 1e-7 fractional)', () => {
    const { cases } = load<GridCase>('rdp-grid.json')
    assert.ok(cases.length >= 400)
    let worstInt = 0
    let worstFrac = 0
    for (const c of cases) {
      const [got] = computeRdp(c.q, c.sigma, c.steps, [c.order])
      const e = relErr(got!, c.rdp)
      const what = `q=${c.q} σ=${c.sigma} α=${c.order} T=${c.steps}: got ${got}, want ${c.rdp}`
      if (Number.isInteger(c.order)) {
        assert.ok(e <= 1e-9, what)
        worstInt = Math.max(worstInt, e)
      } else {
        assert.ok(e <= 1e-7, what)
        worstFrac = Math.max(worstFrac, e)
      }
    }
    // both paths are in fact far more accurate than the tolerances
    assert.ok(worstInt < 1e-12 && worstFrac < 1e-11, `worst ${worstInt} ${worstFrac}`)
  })

  it('special cases: q = 0, steps = 0, σ = 0, q = 1', () => {
    const orders = [1.5, 2, 32.5, 63]
    assert.deepEqual(computeRdp(0, 1, 100, orders), [0, 0, 0, 0])
    assert.deepEqual(computeRdp(0, 0, 100, orders), [0, 0, 0, 0]) // nothing sampled: nothing leaks
    assert.deepEqual(computeRdp(0.3, 1, 0, orders), [0, 0, 0, 0])
    assert.deepEqual(computeRdp(0.3, 0, 5, orders), [Infinity, Infinity, Infinity, Infinity])
    assert.deepEqual(
      computeRdp(1, 2, 10, orders),
      orders.map((a) => (10 * a) / 8)
    )
  })

  it('the integer and fractional paths agree across an integer order', () => {
    for (const [q, sigma] of [
      [0.01, 0.8],
      [0.1, 1],
      [0.5, 2],
      [0.9, 0.6]
    ] as const) {
      for (const n of [2, 3, 8]) {
        const [below, at, above] = computeRdp(q, sigma, 1, [n - 1e-9, n, n + 1e-9])
        assert.ok(below! < at! && at! < above!, `monotone in α near ${n}`)
        assert.ok(relErr(below!, at!) < 1e-7 && relErr(above!, at!) < 1e-7, `q=${q} σ=${sigma} α=${n}`)
      }
    }
  })

  it('stays finite for large orders and small σ (everything in log space)', () => {
    for (const r of computeRdp(0.5, 0.5, 1, [100.5, 256, 1000])) assert.ok(Number.isFinite(r) && r > 0)
    for (const r of computeRdp(0.01, 0.3, 1000, [10.9, 63])) assert.ok(Number.isFinite(r) && r > 0)
    // tiny q: RDP ≈ α q² (e^(1/σ²) − 1) / 2 for small q, with full relative precision
    const q = 1e-6
    const [r] = computeRdp(q, 2, 1, [3])
    assert.ok(relErr(r!, (3 * q * q * Math.expm1(0.25)) / 2) < 1e-5)
  })

  it('is monotone: grows with q, α and steps, shrinks with σ', () => {
    const orders = [1.5, 2, 4.5, 16]
    const byQ = [0.001, 0.01, 0.1, 0.5, 0.9, 1].map((q) => computeRdp(q, 1, 1, orders))
    for (let i = 1; i < byQ.length; i++) orders.forEach((_, k) => assert.ok(byQ[i]![k]! > byQ[i - 1]![k]!))
    const byA = computeRdp(0.05, 1.2, 1, [1.1, 1.5, 2, 2.5, 3.7, 8, 10.9, 32])
    for (let i = 1; i < byA.length; i++) assert.ok(byA[i]! > byA[i - 1]!)

    const eps = (q: number, sigma: number, steps: number): number =>
      rdpToEpsilon(DEFAULT_ORDERS, computeRdp(q, sigma, steps, DEFAULT_ORDERS), 1e-5).epsilon
    const byT = [1, 10, 100, 1000, 10000].map((t) => eps(0.01, 1.1, t))
    for (let i = 1; i < byT.length; i++) assert.ok(byT[i]! > byT[i - 1]!, `ε grows with T: ${byT.join(' ')}`)
    const bySigma = [0.6, 0.8, 1, 1.5, 2, 4].map((s) => eps(0.01, s, 1000))
    for (let i = 1; i < bySigma.length; i++) assert.ok(bySigma[i]! < bySigma[i - 1]!, `ε shrinks with σ`)
  })

  it('rejects parameters out of their domain with INVALID_PRIVACY_PARAMETER', () => {
    const bad: Array<() => unknown> = [
      () => computeRdp(-0.1, 1, 1, [2]),
      () => computeRdp(1.5, 1, 1, [2]),
      () => computeRdp(Number.NaN, 1, 1, [2]),
      () => computeRdp(0.1, -1, 1, [2]),
      () => computeRdp(0.1, 1, -1, [2]),
      () => computeRdp(0.1, 1, 1, [1]),
      () => computeRdp(0.1, 1, 1, [Infinity])
    ]
    for (const f of bad) assert.throws(f, (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER'))
  })
})

describe('rdpToEpsilon', () => {
  it('applies the Balle et al. conversion and picks the best order', () => {
    const orders = [2, 4]
    const rdp = [0.5, 0.9]
    const delta = 1e-5
    const at = (a: number, r: number): number =>
      r + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1)
    const want = Math.min(at(2, 0.5), at(4, 0.9))
    const got = rdpToEpsilon(orders, rdp, delta)
    assert.ok(relErr(got.epsilon, want) < 1e-15)
    assert.equal(got.order, at(2, 0.5) < at(4, 0.9) ? 2 : 4)
    // never worse than Mironov's original bound
    assert.ok(got.epsilon <= classicEpsilon(orders, rdp, delta))
  })

  it('handles infinite RDP, clamps at 0 and validates its input', () => {
    assert.deepEqual(rdpToEpsilon([2, 3], [Infinity, Infinity], 1e-5), { epsilon: Infinity, order: NaN })
    assert.equal(rdpToEpsilon([2, 3], [Infinity, 0.1], 1e-5).order, 3)
    assert.equal(rdpToEpsilon([1e7], [0], 0.5).epsilon, 0)
    assert.throws(
      () => rdpToEpsilon([2, 3], [0.1], 1e-5),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
    for (const d of [0, 1, -1, Number.NaN]) {
      assert.throws(
        () => rdpToEpsilon([2], [0.1], d),
        (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
      )
    }
  })

  it('matches the ε vectors (rel. 1e-7) and the published Opacus / TF-Privacy figures', () => {
    const { cases } = load<EpsCase>('epsilon.json')
    assert.ok(cases.length >= 6)
    for (const c of cases) {
      const orders = c.orders === 'DEFAULT_ORDERS' ? DEFAULT_ORDERS : c.orders
      const parts = c.composition ?? [{ q: c.q!, sigma: c.sigma!, steps: c.steps! }]
      const rdp = orders.map(() => 0)
      for (const p of parts) computeRdp(p.q, p.sigma, p.steps, orders).forEach((r, i) => (rdp[i]! += r))
      const got = rdpToEpsilon(orders, rdp, c.delta)
      assert.ok(relErr(got.epsilon, c.epsilon) < 1e-7, `${c.name}: ε ${got.epsilon} vs ${c.epsilon}`)
      assert.equal(got.order, c.order, c.name)

      if (c.epsilon_opacus_alphas !== undefined) {
        const rdpO = OPACUS_ALPHAS.map((a) => rdp[orders.indexOf(a)]!)
        const o = rdpToEpsilon(OPACUS_ALPHAS, rdpO, c.delta)
        assert.ok(relErr(o.epsilon, c.epsilon_opacus_alphas) < 1e-7, c.name)
        assert.equal(o.order, c.order_opacus_alphas)
        const classic = classicEpsilon(OPACUS_ALPHAS, rdpO, c.delta)
        assert.ok(relErr(classic, c.epsilon_classic_conversion_opacus_alphas!) < 1e-7, c.name)
        if (c.published !== undefined) {
          // Opacus' own unit test asserts 7 decimal places; TF-Privacy's README prints 2.
          const value = c.published.conversion === 'balle' ? o.epsilon : classic
          const places = c.published.conversion === 'balle' ? 7 : 2
          assert.equal(
            value.toFixed(places),
            c.published.epsilon.toFixed(places),
            `${c.name} (${c.published.source})`
          )
        }
      } else if (c.published !== undefined) {
        assert.equal(got.epsilon.toFixed(3), c.published.epsilon.toFixed(3), c.name)
        if (c.published.order !== undefined) assert.equal(got.order, c.published.order)
      }
    }
  })
})
