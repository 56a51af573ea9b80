/**
 * Special functions and log-space arithmetic for the RDP accountant, in plain IEEE doubles.
 *
 * The accountant adds terms that span hundreds of orders of magnitude (exp(α²/2σ²) against
 * erfc tails far below the double range), so everything is kept as logarithms and the only
 * places that leave log space are the ones where the value is known to be representable.
 */

const LOG_SQRT_2PI = 0.9189385332046728 // log(√(2π))
const LOG_PI = 1.1447298858494002 // log(π)
const LOG_SQRT_PI = 0.5723649429247001 // log(√π)
const TWO_OVER_SQRT_PI = 1.1283791670955126 // 2/√π
const LN2 = Math.LN2

/**
 * Lanczos coefficients for g = 7, n = 9 (the widely used set by P. Godfrey, as in Numerical
 * Recipes 3rd ed. §6.1 and Wikipedia's "Lanczos approximation"). Relative error of Γ ≈ 1e-15.
 */
const LANCZOS_G = 7
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7
] as const

/** sin(πx) with the argument reduced exactly first, so that large |x| keep their accuracy. */
function sinPi(x: number): number {
  // x − 2·round(x/2) is exact in binary floating point and lies in [−1, 1].
  const r = x - 2 * Math.round(x / 2)
  return Math.sin(Math.PI * r)
}

/**
 * log|Γ(x)| (the natural logarithm of the absolute value of the gamma function).
 *
 * x ≥ 0.5: the Lanczos approximation
 *   Γ(x) = √(2π) · t^(x−1/2) · e^(−t) · A_g(x−1),  t = x − 1 + g + 1/2,
 * evaluated directly in logs. x < 0.5: the reflection formula
 *   Γ(x) Γ(1−x) = π / sin(πx)  ⇒  log|Γ(x)| = log π − log|sin πx| − log Γ(1−x).
 * Returns +Infinity at the poles (0, −1, −2, …). Absolute error ≈ 1e-15·max(1, |log Γ(x)|).
 */
export function lgamma(x: number): number {
  if (Number.isNaN(x)) return NaN
  if (x === Infinity) return Infinity
  if (x < 0.5) {
    if (Number.isInteger(x)) return Infinity // pole
    return LOG_PI - Math.log(Math.abs(sinPi(x))) - lgamma(1 - x)
  }
  const y = x - 1
  let a = LANCZOS[0]
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (y + i)
  const t = y + LANCZOS_G + 0.5
  return LOG_SQRT_2PI + (y + 0.5) * Math.log(t) - t + Math.log(a)
}

/** log C(n, k) for 0 ≤ k ≤ n (n, k need not be integers), via lgamma. */
export function logBinomial(n: number, k: number): number {
  return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)
}

/** erf(x) by its Maclaurin series, for |x| < 1 only (≤ 20 terms, no cancellation to speak of). */
function erfSmall(x: number): number {
  // erf(x) = 2/√π · Σ_{n≥0} (−1)^n x^(2n+1) / (n! (2n+1))
  const x2 = x * x
  let term = x // (−1)^n x^(2n+1) / n!
  let sum = x
  for (let n = 1; n < 60; n++) {
    term *= -x2 / n
    const add = term / (2 * n + 1)
    sum += add
    if (Math.abs(add) <= 1e-17 * Math.abs(sum)) break
  }
  return TWO_OVER_SQRT_PI * sum
}

/**
 * log of the scaled complementary error function, log(erfcx(x)) = log(e^(x²) erfc(x)), for x ≥ 1,
 * from Laplace's continued fraction
 *   erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))),
 * evaluated with the modified Lentz algorithm. It converges for every x > 0, in about 190
 * iterations at x = 1, 60 at x = 2 and under 10 beyond x = 10; erfcx itself never underflows.
 */
function logErfcxCf(x: number): number {
  const TINY = 1e-300
  let f = x
  let c = x
  let d = 0
  for (let k = 1; k < 5000; k++) {
    const a = k / 2
    d = x + a * d
    if (d === 0) d = TINY
    d = 1 / d
    c = x + a / c
    if (c === 0) c = TINY
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return -LOG_SQRT_PI - Math.log(f)
}

/**
 * log(erfc(x)), accurate to ≈ 1e-15 relative to max(1, |result|) for every real x, including
 * the range x > 26.5 where erfc(x) itself underflows to 0 (so log(erfc(x)) computed naively
 * would be −Infinity):
 *   x ≤ −1:     erfc(x) = 2 − erfc(−x) ∈ (1.84, 2]; log(2) + log1p(−erfc(−x)/2).
 *   |x| < 1:    erfc(x) = 1 − erf(x) with the Maclaurin series of erf; log1p(−erf(x)).
 *   x ≥ 1:      log erfc(x) = −x² + log(erfcx(x)), erfcx by its continued fraction.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN
  if (x === Infinity) return -Infinity
  if (x === -Infinity) return LN2
  if (x <= -1) return LN2 + Math.log1p(-0.5 * Math.exp(logErfc(-x)))
  if (x < 1) return Math.log1p(-erfSmall(x))
  return -x * x + logErfcxCf(x)
}

/** erfc(x) (may underflow to 0 for x > 26.5; use {@link logErfc} there). */
export function erfc(x: number): number {
  return Math.exp(logErfc(x))
}

/** log(e^a + e^b), exact for −Infinity operands (log 0). */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b
  if (b === -Infinity) return a
  const hi = Math.max(a, b)
  const lo = Math.min(a, b)
  if (hi === Infinity) return Infinity
  return hi + Math.log1p(Math.exp(lo - hi))
}

/** log(e^a − e^b) for a ≥ b; −Infinity when they are equal, NaN when a < b. */
export function logSubExp(a: number, b: number): number {
  if (b === -Infinity) return a
  if (a < b) return NaN
  if (a === b) return -Infinity
  const d = b - a // < 0
  // log(1 − e^d): log(−expm1(d)) near 0, log1p(−e^d) for d well below 0 (both exact there).
  return a + (d > -Math.LN2 ? Math.log(-Math.expm1(d)) : Math.log1p(-Math.exp(d)))
}

/** log(1 + e^x) (softplus), without overflow for large x or loss for very negative x. */
export function log1pExp(x: number): number {
  if (x > 0) return x + Math.log1p(Math.exp(-x))
  return Math.log1p(Math.exp(x))
}

/** log(e^x − 1) for x > 0, accurate both near 0 and for large x (where e^x overflows). */
export function logExpm1(x: number): number {
  if (x <= 0) return x === 0 ? -Infinity : NaN
  if (x < 1) return Math.log(Math.expm1(x))
  return x + Math.log1p(-Math.exp(-x))
}
