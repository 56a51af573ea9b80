/**
 * Verification with a tolerance: rounds that are not bit-reproducible (several CPU threads, a
 * GPU) are re-run deterministically on the CPU and compared with the claimed weights under a
 * bound calibrated for the execution provider, instead of by hash.
 *
 * The comparison is made on the round's *update* (weights after − base): the distance between
 * the claimed and re-run weights relative to the length of the re-run's update, and the cosine
 * between the two updates. Honest divergence from floating-point reordering is tiny and grows
 * slowly with the local steps; a round that skipped steps, trained on other data, scaled or
 * replaced its update, or interpolated towards a peer's model lands far outside. How the bounds
 * were calibrated: docs/receipts.md, "Verification with a tolerance", and
 * `npm run bench:tolerance` (BENCHMARKS.md).
 */
import type { ReceiptClaims } from './claims.js'
import { claimedResultHash } from './claims.js'

/** The `ep` of a deterministic, one-thread CPU round: the only one checked by hash. */
export const EXACT_EP = 'cpu'

/**
 * A bound for one execution provider, in two stages. A claim within the tight bound
 * (`maxRelDistance`, `minCosine`) is accepted at once. Otherwise the verifier measures how
 * sensitive this particular round is to rounding: it re-runs it once more from the base with
 * the last bit of every weight flipped (`perturbWeights`, deterministic) and accepts the claim
 * when its distance is at most `sensitivityFactor` × that perturbed run's distance, capped by
 * `maxAdaptiveRelDistance`. Most rounds are tame (rounding stays at 1e-6 of the update), but
 * some amplify it (a ReLU flips, a loss spike) and an honest multi-threaded round then lands
 * 1e-2 away; the perturbed re-run of such a round lands as far, so the bound follows the round.
 */
export interface ToleranceBound {
  /** Largest accepted ‖claimed − rerun‖ / ‖rerun − base‖ without the sensitivity stage. */
  maxRelDistance: number
  /** Smallest accepted cosine between (claimed − base) and (rerun − base) in the tight stage. */
  minCosine: number
  /** Accept up to this many times the perturbed re-run's relative distance. */
  sensitivityFactor: number
  /** Never accept beyond this relative distance, however sensitive the round. */
  maxAdaptiveRelDistance: number
  /** Where the bound comes from: measured on these models, or provisional. */
  basis: string
}

/**
 * Bounds per execution provider. `cpu-parallel` was measured (`npm run bench:tolerance`,
 * BENCHMARKS.md): of 1,000 honest two-thread rounds of the MLP and the CNN at H = 10–100, most
 * land about 1e-6 from the deterministic re-run (the tight stage keeps a margin of 1,000×), a
 * few amplify rounding up to 9e-2, and the sensitivity stage accepted every one (0 false
 * positives); it refused every round that skipped half its steps, used another shard, scaled
 * or halved its update, or moved towards a peer's model, and let 1.4 % of rounds one step short
 * through — up to H = 40 for the CNN. The CNN at H = 100 is chaotic (honest rounds up to 0.42
 * away) and 2 of 200 honest rounds were refused there: docs/receipts.md. The GPU bounds are provisional until measured on a GPU (issue 19 part 2): a looser
 * tight stage for TF32 products and reordered reductions, and a larger sensitivity factor.
 */
export const TOLERANCE_BOUNDS: Readonly<Record<string, ToleranceBound>> = Object.freeze({
  'cpu-parallel': {
    maxRelDistance: 1e-3,
    minCosine: 0.99999,
    sensitivityFactor: 20,
    maxAdaptiveRelDistance: 0.1,
    basis: 'measured: MLP and CNN, H = 10–100 (npm run bench:tolerance)'
  },
  cuda: {
    maxRelDistance: 1e-2,
    minCosine: 0.9995,
    sensitivityFactor: 50,
    maxAdaptiveRelDistance: 0.1,
    basis: 'provisional: not yet measured on a GPU'
  },
  webgpu: {
    maxRelDistance: 1e-2,
    minCosine: 0.9995,
    sensitivityFactor: 50,
    maxAdaptiveRelDistance: 0.1,
    basis: 'provisional: not yet measured on a GPU'
  }
})

/** The bound for an execution provider, or undefined when its rounds cannot be checked with one. */
export function toleranceFor(ep: string): ToleranceBound | undefined {
  return Object.hasOwn(TOLERANCE_BOUNDS, ep) ? TOLERANCE_BOUNDS[ep] : undefined
}

/**
 * How a receipt's round can be verified:
 * - `exact`: deterministic CPU and a result hash, re-run and compared by hash;
 * - `tolerance`: a provider with a calibrated bound, and the result's weights published
 *   (`resultCid` beside `resultHash`), re-run on the CPU and compared within the bound;
 * - `unverifiable`: anything else (an unknown provider, or a result kept private, e.g. under
 *   differential privacy where only noised weights are published).
 *
 * A pure function of the receipt, so every node classifies it the same way (the ledger's
 * `unverifiable` policy depends on it).
 */
export type Verifiability = 'exact' | 'tolerance' | 'unverifiable'

/** See {@link Verifiability}. */
export function verifiability(claims: Pick<ReceiptClaims, 'ep' | 'resultCid' | 'resultHash'>): Verifiability {
  if (claims.ep === EXACT_EP) {
    return claimedResultHash(claims as ReceiptClaims) === undefined ? 'unverifiable' : 'exact'
  }
  if (toleranceFor(claims.ep) === undefined) return 'unverifiable'
  return claims.resultCid !== undefined && claims.resultHash !== undefined ? 'tolerance' : 'unverifiable'
}

/** Read-only weights by tensor name. */
export type WeightsView = ReadonlyMap<string, Float32Array>

/** How a claimed round compares with the deterministic re-run of it. */
export interface UpdateComparison {
  /** ‖claimed − rerun‖ / ‖rerun − base‖ (0 when both are the base; Infinity when only the re-run is). */
  relDistance: number
  /** Cosine between (claimed − base) and (rerun − base) (1 when both are zero, 0 when one is). */
  cosine: number
  /** ‖rerun − base‖: the length of the honest update. */
  updateNorm: number
  /** ‖claimed − base‖. */
  claimedNorm: number
  /**
   * When the sensitivity stage ran: the relative distance of a re-run from the perturbed base
   * (`perturbWeights`) to the re-run, i.e. how far rounding alone moves this round.
   */
  sensitivity?: number
}

/**
 * Compare a claimed round's weights with the deterministic re-run from the same base, in
 * float64. Returns a string (why) when the three do not have the same tensors and sizes, or
 * hold a non-finite value.
 */
export function compareUpdates(
  base: WeightsView,
  claimed: WeightsView,
  rerun: WeightsView
): UpdateComparison | string {
  if (claimed.size !== base.size || rerun.size !== base.size) {
    return `tensor counts differ: base ${base.size}, claimed ${claimed.size}, re-run ${rerun.size}`
  }
  let dist2 = 0
  let upd2 = 0
  let clm2 = 0
  let dot = 0
  for (const [name, b] of base) {
    const c = claimed.get(name)
    const r = rerun.get(name)
    if (c === undefined || r === undefined) return `tensor '${name}' is missing`
    if (c.length !== b.length || r.length !== b.length) return `tensor '${name}' has another size`
    for (let i = 0; i < b.length; i++) {
      const bi = b[i]!
      const u = r[i]! - bi
      const v = c[i]! - bi
      const d = c[i]! - r[i]!
      dist2 += d * d
      upd2 += u * u
      clm2 += v * v
      dot += u * v
    }
  }
  if (!Number.isFinite(dist2 + upd2 + clm2 + dot)) return 'a tensor holds a non-finite value'
  const updateNorm = Math.sqrt(upd2)
  const claimedNorm = Math.sqrt(clm2)
  const distance = Math.sqrt(dist2)
  const relDistance = updateNorm > 0 ? distance / updateNorm : distance === 0 ? 0 : Infinity
  const cosine =
    updateNorm > 0 && claimedNorm > 0
      ? Math.max(-1, Math.min(1, dot / (updateNorm * claimedNorm)))
      : updateNorm === claimedNorm
        ? 1
        : 0
  return { relDistance, cosine, updateNorm, claimedNorm }
}

/** True when a comparison is inside the tight stage of a bound (distance and cosine). */
export function withinTolerance(c: UpdateComparison, bound: ToleranceBound): boolean {
  return c.relDistance <= bound.maxRelDistance && c.cosine >= bound.minCosine
}

/**
 * The relative distance the sensitivity stage accepts, given the perturbed re-run's distance
 * from the re-run: `min(maxAdaptiveRelDistance, sensitivityFactor × sensitivity)`.
 */
export function adaptiveLimit(sensitivity: number, bound: ToleranceBound): number {
  return Math.min(bound.maxAdaptiveRelDistance, bound.sensitivityFactor * sensitivity)
}

/** The two stages together: tight, or within the round's own sensitivity (when measured). */
export function acceptedWithin(c: UpdateComparison, bound: ToleranceBound, sensitivity?: number): boolean {
  return judgeTolerance(c, bound, sensitivity) === 'within'
}

/**
 * The verdict on a claim: `within` (the tight stage, or ≤ min(cap, factor × sensitivity)),
 * `outside` (farther than the round's own sensitivity can explain: > factor × sensitivity, or
 * outside the tight stage when no sensitivity was measured), or `inconclusive` (beyond the cap
 * but within what this round's rounding alone can produce: a round so chaotic that honest and
 * dishonest claims cannot be told apart — no verdict, nobody is convicted).
 */
export type ToleranceVerdict = 'within' | 'outside' | 'inconclusive'

/** See {@link ToleranceVerdict}. */
export function judgeTolerance(
  c: UpdateComparison,
  bound: ToleranceBound,
  sensitivity?: number
): ToleranceVerdict {
  if (withinTolerance(c, bound)) return 'within'
  if (sensitivity === undefined) return 'outside'
  if (c.relDistance <= adaptiveLimit(sensitivity, bound)) return 'within'
  return c.relDistance > bound.sensitivityFactor * sensitivity ? 'outside' : 'inconclusive'
}

/**
 * Perturbed re-runs the sensitivity stage tries at most (stopping at the first that accepts):
 * one perturbed trajectory can land closer than the honest one (chaotic divergence is itself
 * random), so an honest claim gets several chances to find the round's real sensitivity, and
 * a dishonest one must be further than all of them.
 */
export const SENSITIVITY_PROBES = 3

/**
 * A deterministic perturbation of the size of one or two rounding errors, from which a verifier
 * measures how much a round amplifies rounding: variant 0 flips the last mantissa bit of every
 * value, 1 the second-last, 2 the last bit of every other value.
 */
export function perturbWeights(weights: WeightsView, variant = 0): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>()
  const mask = variant === 1 ? 2 : 1
  const step = variant === 2 ? 2 : 1
  for (const [name, t] of weights) {
    const copy = t.slice()
    const bits = new Uint32Array(copy.buffer, copy.byteOffset, copy.length)
    for (let i = 0; i < bits.length; i += step) bits[i] = bits[i]! ^ mask
    out.set(name, copy)
  }
  return out
}

/** A comparison in words, for logs and failure details. */
export function describeComparison(c: UpdateComparison, bound: ToleranceBound, sensitivity?: number): string {
  const tight =
    `relative distance ${c.relDistance.toPrecision(3)} (bound ${bound.maxRelDistance}), ` +
    `cosine ${c.cosine.toFixed(6)} (bound ${bound.minCosine})`
  if (sensitivity === undefined) return tight
  return `${tight}; this round's sensitivity to rounding ${sensitivity.toPrecision(3)} allows ${adaptiveLimit(sensitivity, bound).toPrecision(3)}`
}
