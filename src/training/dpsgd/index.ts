/**
 * DP-SGD (Abadi et al. 2016) inside the train-step graph: per-example gradient norms (ghost norms for dense
 * layers, batched per-example gradients for conv layers), per-example clipping to C, the clipped sum plus
 * N(0, σ²C²) noise fed in from a seeded `Rng`, divided by the expected batch size; Poisson subsampling with
 * padded, masked batches; and the round loop a swarm trainer and a re-executor both run. See docs/privacy.md.
 *
 * @example
 * ```ts
 * import { MODELS } from '../graph/index.js'
 * import { compileDpsgdModel } from './index.js'
 *
 * const model = compileDpsgdModel(MODELS.mlp, { type: 'sgd', momentum: 0.9 })
 * // feed x, y, lr, params, state and dp.mask, dp.clip, dp.std, dp.denom, dp.noise [model.noiseSize]
 * void model.trainStep
 * ```
 */
export { compileDpsgdModel, type CompileDpsgdOptions, type DpsgdModel } from './graph.js'
export {
  DP_INPUTS,
  DP_OUTPUTS,
  CLIP_EPSILON,
  PAD_SIGMAS,
  BATCH_ROUNDING,
  NOISE_SAMPLERS,
  NOISE_SAMPLER,
  LEGACY_NOISE_SAMPLER,
  DPSGD_DEFAULTS,
  type NoiseSampler
} from './constants.js'
export { DpsgdGraphError } from './errors.js'
export {
  checkDpsgdParameters,
  paddedBatchSize,
  trainDpsgdRound,
  type DpsgdRoundOptions,
  type DpsgdRoundResult
} from './round.js'
export {
  DpsgdRounds,
  dpsgdRoundSteps,
  isDpsgd,
  noiseCommitment,
  noiseSamplerOf,
  noiseSeedOf,
  planDpsgd,
  type DpsgdPlan,
  type DpsgdPrivacy,
  type DpsgdReceiptHyper
} from './plan.js'
