/**
 * DP-SGD accounting helpers: the SGM step of one DP-SGD step, and the noise multiplier that reaches a target ε
 * over a planned number of steps.
 */
import { DEFAULT_ORDERS } from './constants.js'
import type { SgmSteps } from './accountant.js'
import { PrivacyParameterError, TargetEpsilonUnreachableError } from './errors.js'
import { computeRdp, rdpToEpsilon } from './rdp.js'

/** Largest noise multiplier {@link solveNoiseMultiplier} considers. */
export const MAX_NOISE_MULTIPLIER = 1000

/**
 * The SGM steps of `steps` DP-SGD steps: each example's gradient clipped to C, so adding or removing one record
 * moves the sum by at most C (sensitivity C), noise N(0, σ²C²), each record in a step's batch with probability q
 * (Poisson). The accountant gets q and σ as they are (not σ/2 as for a clipped whole update).
 */
export function dpsgdSteps(options: {
  sampleRate: number
  noiseMultiplier: number
  steps: number
}): SgmSteps {
  const { sampleRate, noiseMultiplier, steps } = options
  if (!(sampleRate > 0 && sampleRate <= 1))
    throw new PrivacyParameterError('sampleRate', sampleRate, 'a number in (0, 1]')
  if (!(noiseMultiplier > 0 && Number.isFinite(noiseMultiplier)))
    throw new PrivacyParameterError('noiseMultiplier', noiseMultiplier, 'a finite number > 0')
  if (!(Number.isInteger(steps) && steps >= 0))
    throw new PrivacyParameterError('steps', steps, 'an integer ≥ 0')
  return { q: sampleRate, sigma: noiseMultiplier, steps }
}

/** ε at δ after `steps` SGM steps of (q, σ), on top of an RDP vector `base` (zeros when omitted). */
function epsilonOf(q: number, sigma: number, steps: number, delta: number, base?: readonly number[]): number {
  const per = computeRdp(q, sigma, 1, DEFAULT_ORDERS)
  return rdpToEpsilon(
    DEFAULT_ORDERS,
    per.map((r, i) => r * steps + (base?.[i] ?? 0)),
    delta
  ).epsilon
}

/**
 * The smallest noise multiplier σ (to 1e-4 relative, rounded up: the result never overshoots the target) such
 * that `steps` SGM steps with rate q cost at most `targetEpsilon` at δ, after what `spentRdp` (an RDP vector
 * over `DEFAULT_ORDERS`) already holds. Deterministic, so every node of a job finds the same σ.
 *
 * @throws PrivacyParameterError for q outside (0, 1], δ outside (0, 1), steps not a positive integer, or a
 *   target that is not a finite number > 0.
 * @throws TargetEpsilonUnreachableError when even σ = {@link MAX_NOISE_MULTIPLIER} spends more than the target
 *   (or what was spent already exceeds it).
 */
export function solveNoiseMultiplier(options: {
  sampleRate: number
  steps: number
  targetEpsilon: number
  delta: number
  spentRdp?: readonly number[]
}): number {
  const { sampleRate: q, steps, targetEpsilon, delta, spentRdp } = options
  if (!(q > 0 && q <= 1)) throw new PrivacyParameterError('sampleRate', q, 'a number in (0, 1]')
  if (!(delta > 0 && delta < 1)) throw new PrivacyParameterError('delta', delta, 'a number in (0, 1)')
  if (!(Number.isInteger(steps) && steps >= 1))
    throw new PrivacyParameterError('steps', steps, 'an integer ≥ 1')
  if (!(Number.isFinite(targetEpsilon) && targetEpsilon > 0))
    throw new PrivacyParameterError('targetEpsilon', targetEpsilon, 'a finite number > 0')
  const eps = (sigma: number): number => epsilonOf(q, sigma, steps, delta, spentRdp)
  let hi = MAX_NOISE_MULTIPLIER
  const best = eps(hi)
  if (!(best <= targetEpsilon)) {
    throw new TargetEpsilonUnreachableError(targetEpsilon, delta, steps, q, best)
  }
  let lo = 0.05
  if (eps(lo) <= targetEpsilon) return lo
  while (hi / lo > 1 + 1e-4) {
    const mid = Math.sqrt(lo * hi)
    if (eps(mid) > targetEpsilon) lo = mid
    else hi = mid
  }
  return hi
}
