/**
 * Differential privacy for shared updates: clipping and Gaussian noise of a round's update, and a Rényi-DP
 * accountant for the Sampled Gaussian Mechanism that reports (ε, δ) per dataset and tells the training loop
 * when a dataset owner's budget ε_max would be exceeded. See docs/privacy-accounting.md.
 *
 * @example
 * ```ts
 * import { Rng } from '../../common/index.js'
 * import { RdpAccountant, applyUpdate, diffWeights, privatizeUpdate, sharedUpdateStep } from './index.js'
 *
 * const base = [new Float32Array([0, 0, 0])] // the round's public base model
 * const trained = [new Float32Array([3, 4, 0])] // after local steps on a Poisson(0.5) sample of the shard
 * const accountant = new RdpAccountant()
 * const noiseMultiplier = 2.2
 * const round = sharedUpdateStep({ sampleRate: 0.5, noiseMultiplier }) // record-level: σ/2 (sensitivity 2C)
 * if (!accountant.wouldExceed(8, 1e-5, round)) {
 *   const { update } = privatizeUpdate(diffWeights(trained, base), { clipNorm: 1, noiseMultiplier, rng: new Rng(42) })
 *   accountant.step(round)
 *   const shared = applyUpdate(base, update) // what the node announces
 *   void shared
 * }
 * const { epsilon } = accountant.getPrivacySpent(1e-5)
 * void epsilon
 * ```
 */
export { DEFAULT_ORDERS } from './constants.js'
export { computeRdp, rdpToEpsilon } from './rdp.js'
export { RdpAccountant, sharedUpdateStep, type RdpAccountantState, type SgmSteps } from './accountant.js'
export {
  applyUpdate,
  diffWeights,
  l2Norm,
  privatizeUpdate,
  type PrivatizeOptions,
  type PrivatizedUpdate,
  type WeightTensors
} from './update.js'
export { erfc, lgamma, logErfc } from './special.js'
export { MAX_NOISE_MULTIPLIER, dpsgdSteps, solveNoiseMultiplier } from './solve.js'
export {
  AccountantStateError,
  NonFiniteUpdateError,
  PrivacyBudgetExceededError,
  PrivacyParameterError,
  TargetEpsilonUnreachableError,
  UpdateShapeMismatchError
} from './errors.js'
export { lossThresholdAdvantage, MembershipInputError, type ThresholdAttackResult } from './membership.js'
