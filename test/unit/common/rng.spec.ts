import assert from 'node:assert/strict'
import { Rng } from '../../../src/common/rng.js'

/** Φ(x), the standard normal CDF, through erfc (W. J. Cody's rational approximations are overkill here:
 * Numerical Recipes' erfcc, fractional error < 1.2e-7, is ample for counts of 10⁶ draws). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2
  const t = 1 / (1 + 0.5 * z)
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    )
  return x >= 0 ? 1 - erfc / 2 : erfc / 2
}

const draws = (seed: number, n: number): Float32Array => {
  const out = new Float32Array(n)
  new Rng(seed).fillGaussianZiggurat(out)
  return out
}

describe('Rng.fillGaussianZiggurat', () => {
  it('gives the same numbers for a seed, call after call: pinned values', () => {
    // Receipts commit to a seed and a verifier re-runs the draws: these values must never change silently
    // (a new sampler gets a new name in src/training/dpsgd/constants.ts instead).
    assert.deepEqual(
      Array.from(draws(1, 8)),
      [
        0.4166070222854614, -0.8365004062652588, 0.7259771227836609, 0.3312767744064331, 0.6767978668212891,
        -1.8614617586135864, -0.8668135404586792, 0.9290464520454407
      ]
    )
    const r = new Rng(1)
    r.fillGaussianZiggurat(new Float32Array(1000))
    assert.equal(r.nextUint32(), 1447454524, 'the state after 1,000 draws')
    // Seed 36's first 1,000 draws take every path: the fast one, wedges, and once the tail.
    const thousand = draws(36, 1000)
    assert.equal(thousand.filter((v) => Math.abs(v) > 3.6541528853610088).length, 1)
    assert.equal(
      thousand.reduce((sum, v) => sum + v, 0),
      -3.86812291899696,
      'the sum of 1,000 draws, to the last bit'
    )
  })

  it('continues one stream across calls of any sizes, and leaves the state as nextUint32 would see it', () => {
    const whole = draws(7, 10_007)
    const r = new Rng(7)
    const parts = new Float32Array(10_007)
    let at = 0
    for (const n of [1, 2, 3, 500, 4096, 0, 5405]) {
      r.fillGaussianZiggurat(parts.subarray(at, at + n))
      at += n
    }
    assert.equal(at, whole.length)
    assert.deepEqual(parts, whole)
    const s = new Rng(7)
    s.fillGaussianZiggurat(new Float64Array(10_007))
    assert.equal(r.nextUint32(), s.nextUint32(), 'float32 and float64 outputs consume the same words')
    assert.notDeepEqual(draws(8, 64), draws(7, 64))
  })

  it('has the moments of N(0, 1) (10⁶ draws, fixed seed, 5-σ bounds)', () => {
    const n = 1_000_000
    const x = draws(2024, n)
    let m1 = 0
    let m2 = 0
    let m3 = 0
    let m4 = 0
    let positive = 0
    for (const v of x) {
      m1 += v
      m2 += v * v
      m3 += v * v * v
      m4 += v * v * v * v
      if (v > 0) positive++
    }
    m1 /= n
    m2 /= n
    m3 /= n
    m4 /= n
    // Standard errors: mean 1/√n, second moment √(2/n), third √(15/n), fourth √(96/n).
    assert.ok(Math.abs(m1) < 5 / Math.sqrt(n), `mean ${m1}`)
    assert.ok(Math.abs(m2 - 1) < 5 * Math.sqrt(2 / n), `variance ${m2}`)
    assert.ok(Math.abs(m3) < 5 * Math.sqrt(15 / n), `third moment ${m3}`)
    assert.ok(Math.abs(m4 - 3) < 5 * Math.sqrt(96 / n), `fourth moment ${m4}`)
    assert.ok(Math.abs(positive / n - 0.5) < 5 * Math.sqrt(0.25 / n), `positive ${positive / n}`)
  })

  it('fits the normal CDF bin by bin (χ² over 66 bins) and in the tails', () => {
    const n = 1_000_000
    const x = draws(99, n)
    // Bins of 0.125 over [−4, 4] (they cut through every ziggurat layer and wedge), plus the two tails.
    const edges = Array.from({ length: 65 }, (_, i) => -4 + i * 0.125)
    const counts = new Float64Array(66)
    for (const v of x) {
      const k = v < -4 ? 0 : v >= 4 ? 65 : 1 + Math.floor((v + 4) * 8)
      counts[k]!++
    }
    let chi2 = 0
    for (let k = 0; k < 66; k++) {
      const lo = k === 0 ? -Infinity : edges[k - 1]!
      const hi = k === 65 ? Infinity : edges[k]!
      const expected = n * ((hi === Infinity ? 1 : phi(hi)) - (lo === -Infinity ? 0 : phi(lo)))
      chi2 += (counts[k]! - expected) ** 2 / expected
    }
    // 65 degrees of freedom: mean 65, sd √130 ≈ 11.4; 5 sd above is 122.
    assert.ok(chi2 < 122, `χ² ${chi2.toFixed(1)}`)

    // The tails, where the ziggurat switches to Marsaglia's tail method beyond R = 3.654.
    for (const t of [2, 3, 3.6541528853610088, 4, 4.5]) {
      let beyond = 0
      for (const v of x) if (Math.abs(v) > t) beyond++
      const p = 2 * (1 - phi(t))
      const sd = Math.sqrt(n * p * (1 - p))
      assert.ok(Math.abs(beyond - n * p) < 5 * sd + 1, `P(|x| > ${t}): ${beyond / n} vs ${p}`)
    }
    let max = 0
    for (const v of x) max = Math.max(max, Math.abs(v))
    assert.ok(max > 4.5 && max < 6.5, `largest |draw| of 10⁶: ${max}`)
  })

  it('draws the tail beyond R = 3.654 with the shape of the normal tail', () => {
    // The tail is 0.026 % of the draws (counted in the test above); its shape is checked on 50,000 draws from
    // the ziggurat's own tail step.
    const R = 3.6541528853610088
    const r = new Rng(5) as unknown as { zigguratTail(): number }
    const n = 50_000
    const excess = Float64Array.from({ length: n }, () => r.zigguratTail() - R).sort()
    assert.ok(excess[0]! >= 0, 'all beyond R')
    const q = (t: number): number => 1 - phi(t)
    // E[x − R | x > R] = φ(R)/Q(R) − R ≈ 0.243 (an exponential tail of rate R would give 0.2737).
    const meanExcess = Math.exp(-0.5 * R * R) / Math.sqrt(2 * Math.PI) / q(R) - R
    const mean = excess.reduce((a, b) => a + b, 0) / n
    assert.ok(Math.abs(mean - meanExcess) < 5 * (0.24 / Math.sqrt(n)), `mean excess ${mean} vs ${meanExcess}`)
    // Kolmogorov–Smirnov against P(x − R ≤ t | x > R) = 1 − Q(R + t)/Q(R); 1.95/√n is the 0.1 % critical value.
    let d = 0
    excess.forEach((t, i) => {
      const f = 1 - q(R + t) / q(R)
      d = Math.max(d, Math.abs(f - i / n), Math.abs(f - (i + 1) / n))
    })
    assert.ok(d < 1.95 / Math.sqrt(n), `KS distance ${d}`)
  })

  it('is a different sequence from the polar method, which stays as it was', () => {
    const polar = new Float32Array(4)
    new Rng(1).fillGaussian(polar)
    assert.deepEqual(
      Array.from(polar),
      [-0.6850559115409851, 1.7599960565567017, -0.12381243705749512, -0.2208666056394577]
    )
    const r = new Rng(3)
    const one = Float32Array.from({ length: 6 }, () => r.gaussian())
    const fill = new Float32Array(6)
    new Rng(3).fillGaussian(fill)
    assert.deepEqual(fill, one, 'fillGaussian is gaussian() in bulk')
    assert.notDeepEqual(Array.from(draws(1, 4)), Array.from(polar))
  })
})
