import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import {
  erfc,
  lgamma,
  log1pExp,
  logAddExp,
  logBinomial,
  logErfc,
  logExpm1,
  logSubExp
} from '../../../../src/training/privacy/special.js'

const vectors = JSON.parse(
  readFileSync(new URL('../../../vectors/rdp/special.json', import.meta.url), 'utf8')
) as { logErfc: Array<[number, number]>; lgamma: Array<[number, number]> }

/** |got − want| ≤ tol · max(1, |want|) */
function close(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${what}: got ${got}, want ${want}`)
}

describe('privacy special functions', () => {
  it('logErfc matches the high-precision vectors over the whole line', () => {
    assert.ok(vectors.logErfc.length > 20)
    for (const [x, want] of vectors.logErfc) close(logErfc(x), want, 2e-15, `logErfc(${x})`)
  })

  it('logErfc stays finite and exact where erfc underflows', () => {
    // erfc(30) ≈ 2.6e-393 is below the smallest double, so log(erfc(x)) computed naively is −Infinity.
    assert.equal(erfc(30), 0)
    assert.ok(Number.isFinite(logErfc(30)))
    // asymptotically log erfc(x) = −x² − log(x√π) − 1/(2x²) + 5/(8x⁴) + O(x⁻⁶)
    const x = 100
    close(
      logErfc(x),
      -x * x - Math.log(x * Math.sqrt(Math.PI)) - 1 / (2 * x * x) + 5 / (8 * x ** 4),
      1e-15,
      'asymptotic'
    )
    assert.ok(Number.isFinite(logErfc(1e8)))
    assert.equal(logErfc(Infinity), -Infinity)
    assert.equal(logErfc(-Infinity), Math.LN2)
    // strictly decreasing across the branch boundaries (±1)
    let prev = Infinity
    for (let x = -3; x <= 40; x += 0.01) {
      const v = logErfc(x)
      assert.ok(v < prev, `not decreasing at ${x}`)
      prev = v
    }
  })

  it('erfc at known values (exp of logErfc: a few ulps)', () => {
    close(erfc(0), 1, 1e-16, 'erfc(0)')
    close(erfc(0.5), 0.4795001221869535, 4e-16, 'erfc(0.5)')
    close(erfc(1) / 0.15729920705028513, 1, 4e-15, 'erfc(1)')
    close(erfc(-1), 1.8427007929497148, 4e-16, 'erfc(-1)')
    close(erfc(5) / 1.537459794428035e-12, 1, 4e-15, 'erfc(5)')
  })

  it('lgamma matches the vectors and closed forms', () => {
    for (const [x, want] of vectors.lgamma) close(lgamma(x), want, 1e-14, `lgamma(${x})`)
    close(lgamma(0.5), 0.5 * Math.log(Math.PI), 1e-15, 'lgamma(1/2)')
    close(lgamma(-0.5), Math.log(2 * Math.sqrt(Math.PI)), 1e-15, 'lgamma(-1/2)')
    close(lgamma(1), 0, 1e-15, 'lgamma(1)')
    close(lgamma(2), 0, 1e-15, 'lgamma(2)')
    close(lgamma(21), Math.log(2432902008176640000), 1e-15, 'lgamma(21) = log 20!')
    assert.equal(lgamma(0), Infinity)
    assert.equal(lgamma(-3), Infinity)
    close(logBinomial(63, 31), Math.log(9.163120704712952e17), 1e-14, 'log C(63, 31)')
  })

  it('log-space helpers', () => {
    close(logAddExp(Math.log(2), Math.log(3)), Math.log(5), 1e-16, 'logAddExp')
    assert.equal(logAddExp(-Infinity, 1.5), 1.5)
    close(logAddExp(1000, 1000), 1000 + Math.LN2, 1e-16, 'logAddExp large')
    close(logSubExp(Math.log(5), Math.log(3)), Math.log(2), 1e-15, 'logSubExp')
    assert.equal(logSubExp(2, 2), -Infinity)
    assert.ok(Number.isNaN(logSubExp(1, 2)))
    close(log1pExp(800), 800, 1e-16, 'log1pExp large')
    close(log1pExp(-800), Math.exp(-800), 1e-16, 'log1pExp small')
    close(logExpm1(1e-10), Math.log(1e-10) + 5e-11, 1e-15, 'logExpm1 small')
    close(logExpm1(1000), 1000, 1e-16, 'logExpm1 large')
  })
})
