import assert from 'node:assert/strict'
import { hasCode } from '../../../../src/common/errors.js'
import {
  DEFAULT_ORDERS,
  PrivacyBudgetExceededError,
  RdpAccountant,
  computeRdp,
  rdpToEpsilon,
  sharedUpdateStep
} from '../../../../src/training/privacy/index.js'

const relErr = (got: number, want: number): number =>
  got === want ? 0 : Math.abs(got - want) / Math.abs(want)

describe('RdpAccountant', () => {
  it('tracks DEFAULT_ORDERS: 1.1 … 10.9 by 0.1 as exact decimals, then 11 … 63', () => {
    const acc = new RdpAccountant()
    assert.equal(acc.orders.length, 99 + 53)
    assert.equal(acc.orders[0], 1.1)
    assert.equal(acc.orders[98], 10.9)
    assert.ok(acc.orders.includes(3.7) && acc.orders.includes(2) && acc.orders.includes(11))
    assert.deepEqual(
      acc.orders.slice(99),
      Array.from({ length: 53 }, (_, i) => i + 11)
    )
    assert.ok(Object.isFrozen(DEFAULT_ORDERS))
  })

  it('composes heterogeneous steps additively and merges repeated ones', () => {
    const acc = new RdpAccountant()
    acc.step({ q: 0.1, sigma: 1, steps: 3 })
    acc.step({ q: 0.1, sigma: 1, steps: 2 })
    acc.step({ q: 0.5, sigma: 2, steps: 4 })
    assert.deepEqual(acc.history, [
      { q: 0.1, sigma: 1, steps: 5 },
      { q: 0.5, sigma: 2, steps: 4 }
    ])
    assert.equal(acc.totalSteps, 9)
    const a = computeRdp(0.1, 1, 5, DEFAULT_ORDERS)
    const b = computeRdp(0.5, 2, 4, DEFAULT_ORDERS)
    acc.rdp.forEach((r, i) => assert.ok(relErr(r, a[i]! + b[i]!) < 1e-14))
    const want = rdpToEpsilon(
      DEFAULT_ORDERS,
      a.map((x, i) => x + b[i]!),
      1e-5
    )
    assert.deepEqual(acc.getPrivacySpent(1e-5), want)
    assert.equal(acc.getEpsilon(1e-5), want.epsilon)
  })

  it("reproduces Opacus' heterogeneous example (ε ≈ 0.336 at order 23, orders 2..32)", () => {
    const acc = new RdpAccountant({ orders: Array.from({ length: 31 }, (_, i) => i + 2) })
    acc.step({ q: 1e-5, sigma: 1, steps: 10 })
    acc.step({ q: 1e-4, sigma: 3, steps: 4 })
    const { epsilon, order } = acc.getPrivacySpent(1e-5)
    assert.equal(epsilon.toFixed(3), '0.336')
    assert.equal(order, 23)
  })

  it('round-trips through JSON, including infinite RDP', () => {
    const acc = new RdpAccountant()
    acc.step({ q: 0.02, sigma: 1.3, steps: 100 })
    const back = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(acc)))
    assert.deepEqual(back.rdp, acc.rdp)
    assert.deepEqual(back.history, acc.history)
    assert.deepEqual(back.orders, acc.orders)
    assert.equal(back.getEpsilon(1e-6), acc.getEpsilon(1e-6))
    const recomputed = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(acc)), { recompute: true })
    recomputed.rdp.forEach((r, i) => assert.ok(relErr(r, acc.rdp[i]!) < 1e-14))

    acc.step({ q: 0.1, sigma: 0, steps: 1 }) // an unnoised step: no privacy left
    const state = acc.toJSON()
    assert.ok(state.rdp.every((r) => r === null))
    const inf = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(state)))
    assert.equal(inf.getEpsilon(1e-5), Infinity)
  })

  it('rejects invalid persisted state with INVALID_ACCOUNTANT_STATE', () => {
    const good = new RdpAccountant({ orders: [2, 3] }).toJSON()
    const bad: unknown[] = [
      null,
      { ...good, version: 2 },
      { ...good, rdp: [0] },
      { ...good, rdp: [-1, 0] },
      { ...good, orders: [1, 3] },
      { ...good, history: [{ q: 2, sigma: 1, steps: 1 }] }
    ]
    for (const s of bad) {
      assert.throws(
        () => RdpAccountant.fromJSON(s),
        (e) => hasCode(e, 'INVALID_ACCOUNTANT_STATE')
      )
    }
  })

  it('wouldExceed stops training exactly when the next round would overspend ε_max', () => {
    const acc = new RdpAccountant()
    const round = { q: 0.2, sigma: 2, steps: 1 }
    const epsMax = 2
    const delta = 1e-5
    let rounds = 0
    while (!acc.wouldExceed(epsMax, delta, round)) {
      const before = acc.rdp
      const predicted = acc.epsilonAfter(delta, round)
      assert.deepEqual(acc.rdp, before) // asking does not spend
      acc.step(round)
      assert.equal(acc.getEpsilon(delta), predicted)
      rounds++
      assert.ok(rounds < 1000)
    }
    assert.ok(rounds > 5, `${rounds} rounds`)
    assert.ok(acc.getEpsilon(delta) <= epsMax)
    acc.step(round)
    assert.ok(acc.getEpsilon(delta) > epsMax)
    const err = new PrivacyBudgetExceededError(acc.getEpsilon(delta), epsMax, delta)
    assert.ok(hasCode(err, 'PRIVACY_BUDGET_EXCEEDED'))
    assert.equal(err.fields.epsMax, epsMax)
    assert.throws(
      () => acc.wouldExceed(-1, delta, round),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
  })

  it('sharedUpdateStep: record-level accounting halves σ (sensitivity 2C), contribution-level keeps it', () => {
    assert.deepEqual(sharedUpdateStep({ sampleRate: 0.3, noiseMultiplier: 2.4 }), {
      q: 0.3,
      sigma: 1.2,
      steps: 1
    })
    assert.deepEqual(sharedUpdateStep({ sampleRate: 1, noiseMultiplier: 2.4, unit: 'contribution' }), {
      q: 1,
      sigma: 2.4,
      steps: 1
    })
    assert.throws(
      () => sharedUpdateStep({ sampleRate: 1.2, noiseMultiplier: 1 }),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
  })

  it('compose adds the RDP of accountants over the same records', () => {
    const a = new RdpAccountant()
    const b = new RdpAccountant()
    a.step({ q: 0.1, sigma: 1, steps: 7 })
    b.step({ q: 0.2, sigma: 1.5, steps: 3 })
    const both = RdpAccountant.compose([a, b])
    both.rdp.forEach((r, i) => assert.equal(r, a.rdp[i]! + b.rdp[i]!))
    assert.equal(both.totalSteps, 10)
    assert.ok(both.getEpsilon(1e-5) > Math.max(a.getEpsilon(1e-5), b.getEpsilon(1e-5)))
    assert.throws(
      () => RdpAccountant.compose([a, new RdpAccountant({ orders: [2, 3] })]),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
  })

  it('validates its orders', () => {
    assert.throws(
      () => new RdpAccountant({ orders: [] }),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
    assert.throws(
      () => new RdpAccountant({ orders: [0.5, 2] }),
      (e) => hasCode(e, 'INVALID_PRIVACY_PARAMETER')
    )
  })
})
