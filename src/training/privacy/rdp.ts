/**
 * Rényi differential privacy (RDP) of the Sampled Gaussian Mechanism (SGM), after
 * I. Mironov, K. Talwar, L. Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism",
 * arXiv:1908.10530 (2019), §3.3 — the analysis behind TF-Privacy's and Opacus' `compute_rdp`.
 *
 * The SGM applies a function of L2 sensitivity 1 to a Poisson sample (each record kept with probability q)
 * and adds N(0, σ²) noise. With μ0 = N(0, σ²), μ1 = N(1, σ²) and μ = (1 − q)μ0 + qμ1, its RDP at order α > 1 is
 *
 *   RDP(α) = log(A_α) / (α − 1),   A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α] = E_{z∼μ0}[(1 − q + q·r(z))^α],
 *
 * where r(z) = μ1(z)/μ0(z) = exp((2z − 1)/(2σ²)). RDP composes additively, so T steps give T·RDP(α).
 *
 * Numerical approach (all in log space, so orders up to the hundreds and σ well below 1 stay finite):
 * we compute log(A_α − 1) rather than log(A_α) and finish with log A_α = log1p(A_α − 1). For small q, A_α − 1
 * is of order q², and forming 1 + (tiny) first, as the reference implementations do, loses about
 * log10(1/(A_α − 1)) digits. The subtraction of 1 is done exactly on the series, below.
 */
import { SERIES_LOG_TOLERANCE, SERIES_MAX_TERMS } from './constants.js'
import { PrivacyParameterError } from './errors.js'
import { log1pExp, logAddExp, logBinomial, logErfc, logExpm1, logSubExp } from './special.js'

const LN_HALF = -Math.LN2

/**
 * Euler transform of an alternating tail, as weights: averaging the partial sums S_n … S_(n+K) with binomial
 * weights C(K, m)/2^K equals S_n + Σ_{m=1..K} P(Binomial(K, 1/2) ≥ m) · a_(n+m). For alternating terms that
 * vary smoothly with the index (here |C(α, i)| ~ i^(−α−1) times a Mills ratio) this is accurate to double
 * rounding with K = 40 from n ≈ 20 on, where plain summation would need 10^4–10^6 terms. log of the weights:
 */
const EULER_LOG_WEIGHTS: readonly number[] = (() => {
  const K = 40
  let pmf = [1]
  for (let k = 0; k < K; k++) pmf = [...pmf, 0].map((p, m) => (p + (m > 0 ? pmf[m - 1]! : 0)) / 2)
  // P(J ≥ m), summed from the upper end so that the small weights keep their relative accuracy
  const out: number[] = []
  let survival = 0
  for (let m = K; m >= 1; m--) {
    survival += pmf[m]!
    out.unshift(Math.log(survival))
  }
  return out
})()

/**
 * A sum of positive terms given by their logarithms: Σ e^(x_k) kept as e^m · (s + c), with m the largest
 * exponent seen so far and Neumaier's compensation c, so that hundreds of terms add up to within a few ulps
 * (repeated log-add-exp would lose about one ulp per term).
 */
class LogSum {
  private m = -Infinity
  private s = 0
  private c = 0

  add(logX: number): void {
    if (logX === -Infinity) return
    if (logX > this.m) {
      const f = this.m === -Infinity ? 0 : Math.exp(this.m - logX)
      this.s *= f
      this.c *= f
      this.m = logX
    }
    const x = Math.exp(logX - this.m)
    const t = this.s + x
    this.c += Math.abs(this.s) >= x ? this.s - t + x : x - t + this.s
    this.s = t
  }

  /** log of the sum (−Infinity when empty; +Infinity when a term was +Infinity). */
  get log(): number {
    if (this.m === Infinity) return Infinity
    return this.m + Math.log(this.s + this.c)
  }
}

/**
 * log(A_α − 1) for an integer order α = n ≥ 2 and 0 < q < 1.
 *
 * Binomial expansion (E_{μ0}[r^k] = exp((k² − k)/(2σ²))):
 *   A_n = Σ_{k=0..n} C(n,k) (1 − q)^(n−k) q^k exp((k² − k)/(2σ²)).
 * Since Σ_k C(n,k)(1 − q)^(n−k) q^k = 1, and the k = 0, 1 exponents are 0,
 *   A_n − 1 = Σ_{k=2..n} C(n,k) (1 − q)^(n−k) q^k expm1((k² − k)/(2σ²)),
 * a sum of positive terms: a plain log-sum-exp with no cancellation at all.
 */
function logAMinus1Int(q: number, sigma: number, n: number): number {
  const logQ = Math.log(q)
  const log1mQ = Math.log1p(-q)
  const inv2s2 = 1 / (2 * sigma * sigma)
  const sum = new LogSum()
  for (let k = 2; k <= n; k++) {
    sum.add(logBinomial(n, k) + k * logQ + (n - k) * log1mQ + logExpm1((k * k - k) * inv2s2))
  }
  return sum.log
}

/**
 * log((1 − q)^α − 1 + αq), which is > 0 for α > 1, without the O(q) cancellation of the direct form when αq is
 * small (and without underflow of q² for tiny q).
 */
function logPowRemainder2(q: number, alpha: number): number {
  if (alpha * q >= 0.5) return Math.log(Math.expm1(alpha * Math.log1p(-q)) + alpha * q)
  // Σ_{i≥2} C(α,i)(−q)^i = C(α,2) q² · Σ_{i≥2} t_i with t_2 = 1: successive terms shrink by a factor
  // |α − i|/(i + 1)·q < αq/3 < 1/6, so the normalised sum is in (5/6, 7/6).
  let term = 1
  let sum = 1
  for (let i = 2; i < 1000; i++) {
    term *= (-(alpha - i) * q) / (i + 1)
    sum += term
    if (Math.abs(term) <= 1e-17 * sum) break
  }
  return Math.log((alpha * (alpha - 1)) / 2) + 2 * Math.log(q) + Math.log(sum)
}

/**
 * log(A_α − 1) for a fractional order α > 1 and 0 < q < 1: the two-series expansion of Mironov et al. §3.3.
 *
 * Split the real line at z0 = σ² log(1/q − 1) + 1/2, the point where q·r(z0) = 1 − q:
 *  - for z ≤ z0, q·r ≤ 1 − q and (1 − q + q r)^α = Σ_i C(α,i) (1 − q)^(α−i) q^i r^i;
 *  - for z > z0,                 (1 − q + q r)^α = Σ_i C(α,i) q^(α−i) (1 − q)^i r^(α−i).
 * With E_{μ0}[r^t; z ≤ z0] = exp((t² − t)/(2σ²)) · ½ erfc((t − z0)/(√2 σ)) =: L(t)
 * and  E_{μ0}[r^t; z > z0] = exp((t² − t)/(2σ²)) · ½ erfc((z0 − t)/(√2 σ)) =: U(t),
 *   A_α = Σ_{i≥0} C(α,i) [ (1 − q)^(α−i) q^i L(i) + q^(α−i) (1 − q)^i U(α − i) ]
 * (the two sums of TF-Privacy's / Opacus' `_compute_log_a_frac`). To get A_α − 1 we subtract
 * 1 = E_{μ0}[1 + αq(r − 1)] (as E_{μ0}[r] = 1) region by region. In the lower region the i = 0, 1 terms then
 * become c0·L(0) + c1·L(1) with c0 = (1 − q)^α − 1 + αq and c1 = αq((1 − q)^(α−1) − 1), both O(q²); the upper
 * region loses (1 − αq)·U(0) + αq·U(1). The remaining cancellation is mild (about a factor σ² for small q).
 *
 * Terms are signed (C(α,i) alternates for i > α + 1), so positive and negative parts are accumulated separately
 * in log space. For i > α + 1 each series alternates with decreasing magnitude: the lower one decays like
 * q^i e^(i²/2σ²) up to z0 and then, like the upper one beyond α − z0, only as |C(α,i)| ~ i^(−α−1) times a Mills
 * ratio. We stop when the terms fall below double rounding relative to the positive part; failing that, once
 * both series are well into those smooth tails we sum the rest by an Euler transform ({@link EULER_LOG_WEIGHTS})
 * instead of term by term. {@link SERIES_MAX_TERMS} is a last safety net, where the first omitted term (which
 * bounds the truncation error) is added when positive, so that the result errs on the conservative side.
 */
function logAMinus1Frac(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q)
  const log1mQ = Math.log1p(-q)
  const inv2s2 = 1 / (2 * sigma * sigma)
  const sqrt2s = Math.SQRT2 * sigma
  const z0 = sigma * sigma * (log1mQ - logQ) + 0.5
  const logL = (t: number): number => (t * t - t) * inv2s2 + LN_HALF + logErfc((t - z0) / sqrt2s)
  const logU = (t: number): number => (t * t - t) * inv2s2 + LN_HALF + logErfc((z0 - t) / sqrt2s)

  const posSum = new LogSum()
  const negSum = new LogSum()
  const add = (sign: number, logMagnitude: number): void => {
    if (sign > 0) posSum.add(logMagnitude)
    else if (sign < 0) negSum.add(logMagnitude)
  }

  // The subtracted 1 = E[1 + αq(r − 1)], merged with the lower i = 0, 1 terms and taken from the upper region.
  // c0 = (1 − q)^α − 1 + αq > 0 and c1 = αq((1 − q)^(α−1) − 1) < 0, both kept as logarithms.
  add(1, logPowRemainder2(q, alpha) + logL(0))
  add(-1, Math.log(alpha) + logQ + Math.log(-Math.expm1((alpha - 1) * log1mQ)) + logL(1))
  add(-Math.sign(1 - alpha * q), Math.log(Math.abs(1 - alpha * q)) + logU(0))
  add(-1, Math.log(alpha * q) + logU(1))

  // Past this index both series are in their smooth alternating tails (see the function comment).
  const tailStart = Math.max(alpha + 1, z0 + 6 * sigma, alpha - z0 + 6 * sigma) + 2 * alpha + 20
  let logC = 0 // log|C(α, i)|
  let signC = 1 // sign of C(α, i)
  let tailTerm = 0 // > 0 while adding the Euler-weighted tail terms
  for (let i = 0; ; i++) {
    if (i > 0) {
      // C(α, i) = C(α, i − 1) · (α − i + 1) / i
      const f = alpha - i + 1
      logC += Math.log(Math.abs(f) / i)
      if (f < 0) signC = -signC
    }
    const j = alpha - i
    const logW = tailTerm > 0 ? EULER_LOG_WEIGHTS[tailTerm - 1]! : 0
    const s0 = i >= 2 ? logC + i * logQ + j * log1mQ + logL(i) + logW : -Infinity
    const s1 = logC + j * logQ + i * log1mQ + logU(j) + logW
    add(signC, s0)
    add(signC, s1)
    if (tailTerm > 0) {
      if (++tailTerm > EULER_LOG_WEIGHTS.length) break
      continue
    }
    if (i > alpha + 1 && Math.max(s0, s1) < posSum.log + SERIES_LOG_TOLERANCE) break
    if (i >= tailStart) tailTerm = 1
    if (i >= SERIES_MAX_TERMS) {
      // Alternating tails with decreasing magnitude: the next terms have sign −signC and are smaller than these.
      if (signC < 0) add(1, logAddExp(s0, s1))
      break
    }
  }

  const pos = posSum.log
  const neg = negSum.log
  if (neg === -Infinity) return pos
  const diff = logSubExp(pos, neg)
  // A_α − 1 > 0 for α > 1 and 0 < q < 1. Never report less than the rounding noise of the sum.
  const floor = pos + Math.log(64 * Number.EPSILON)
  return Number.isNaN(diff) || diff < floor ? floor : diff
}

/** RDP of one SGM step at order α (q ∈ (0, 1], σ ≥ 0). */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (sigma === 0) return Infinity // no noise: no privacy
  if (q === 1) return alpha / (2 * sigma * sigma) // the plain Gaussian mechanism
  const logAm1 = Number.isInteger(alpha) ? logAMinus1Int(q, sigma, alpha) : logAMinus1Frac(q, sigma, alpha)
  return log1pExp(logAm1) / (alpha - 1)
}

function checkOrders(orders: readonly number[]): void {
  for (const a of orders) {
    if (!(Number.isFinite(a) && a > 1)) throw new PrivacyParameterError('order', a, 'a finite number > 1')
  }
}

/**
 * RDP of `steps` compositions of the Sampled Gaussian Mechanism with sampling rate `q` and noise multiplier
 * `sigma` (noise standard deviation over L2 sensitivity), at each order in `orders`.
 *
 * Integer orders use the exact binomial sum, fractional ones the two-series expansion with log erfc (see the
 * module comment). Special cases: q = 0 or steps = 0 → 0; σ = 0 → Infinity; q = 1 → steps·α/(2σ²).
 *
 * @throws PrivacyParameterError when q ∉ [0, 1], σ < 0, steps < 0, or an order is not a finite number > 1.
 */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[]): number[] {
  if (!(q >= 0 && q <= 1)) throw new PrivacyParameterError('q', q, 'a sampling rate in [0, 1]')
  if (!(sigma >= 0 && Number.isFinite(sigma)))
    throw new PrivacyParameterError('sigma', sigma, 'a finite number ≥ 0')
  if (!(steps >= 0 && Number.isFinite(steps)))
    throw new PrivacyParameterError('steps', steps, 'a finite number ≥ 0')
  checkOrders(orders)
  return orders.map((alpha) => (q === 0 || steps === 0 ? 0 : steps * rdpOneStep(q, sigma, alpha)))
}

/**
 * Converts RDP curves to (ε, δ)-DP: the smallest over the orders α of
 *
 *   ε(α) = RDP(α) + log((α − 1)/α) − (log δ + log α)/(α − 1)
 *
 * (B. Balle, G. Barthe, M. Gaboardi, J. Hsu, T. Sato, "Hypothesis Testing Interpretations and Rényi
 * Differential Privacy", AISTATS 2020, Theorem 21 of arXiv:1905.09982; as Opacus' `get_privacy_spent`).
 * It is never larger than Mironov's original RDP(α) + log(1/δ)/(α − 1). ε is clamped at 0 from below.
 * Orders whose RDP is infinite or NaN are skipped; if none is finite the result is { epsilon: Infinity,
 * order: NaN }.
 *
 * @throws PrivacyParameterError when the lengths differ, an order is not > 1, or δ ∉ (0, 1).
 */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number
): { epsilon: number; order: number } {
  if (orders.length !== rdp.length) {
    throw new PrivacyParameterError('rdp', `${rdp.length} values`, `one value per order (${orders.length})`)
  }
  if (!(delta > 0 && delta < 1)) throw new PrivacyParameterError('delta', delta, 'a number in (0, 1)')
  checkOrders(orders)
  const logDelta = Math.log(delta)
  let best = { epsilon: Infinity, order: NaN }
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!
    const r = rdp[i]!
    if (!Number.isFinite(r)) continue
    const eps = r + Math.log1p(-1 / a) - (logDelta + Math.log(a)) / (a - 1)
    if (eps < best.epsilon) best = { epsilon: eps, order: a }
  }
  if (best.epsilon < 0) best.epsilon = 0
  return best
}
