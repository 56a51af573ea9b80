/**
 * Names and defaults of the DP-SGD train step.
 */

/** The extra graph inputs of a DP-SGD train step. */
export const DP_INPUTS = {
  /** float [B]: 1 for an example drawn by the Poisson sampler, 0 for padding. */
  mask: 'dp.mask',
  /** float []: the per-example clip norm C. */
  clip: 'dp.clip',
  /** float []: the noise standard deviation σC added to the clipped sum. */
  std: 'dp.std',
  /** float []: the divisor of the noised sum, the expected batch size q·N. */
  denom: 'dp.denom',
  /** float [noiseSize]: standard normal draws, one per parameter coordinate. */
  noise: 'dp.noise'
} as const

/** The extra graph outputs of a DP-SGD train step. */
export const DP_OUTPUTS = {
  /** float [B]: each example's whole-model gradient norm before clipping. */
  norms: 'dp.norms',
  /** Prefix of the optional outputs `dp.grad:<param>` (the clipped, noised, divided gradients). */
  gradPrefix: 'dp.grad:'
} as const

/** Added to a per-example norm before C is divided by it (Opacus uses the same 1e-6). */
export const CLIP_EPSILON = 1e-6

/**
 * Padded batches hold the expected batch size plus this many standard deviations of the Poisson(qN) count,
 * rounded up to a multiple of {@link BATCH_ROUNDING}; a larger draw runs in a larger padded batch (the graph's
 * batch dimension is symbolic), so no drawn example is ever dropped.
 */
export const PAD_SIGMAS = 4
/** Padded batch sizes are multiples of this. */
export const BATCH_ROUNDING = 8

/** Domain separator mixed into a round's noise seed (so it never equals the data-order seed). */
export const NOISE_SEED_DOMAIN = 0x4450_5347 // 'DPSG'

/**
 * The Gaussian samplers a DP-SGD round can draw its noise with (all from `Rng(noiseSeed)`):
 * - `ziggurat-sfc32`: `Rng.fillGaussianZiggurat`, a 256-layer ziggurat on sfc32 words (the default since
 *   the sampler became part of the receipt);
 * - `polar-sfc32`: `Rng.fillGaussian`, the polar method on 53-bit uniforms, what rounds drew before, about
 *   4× slower. A receipt without `hyper.dp.sampler` was drawn with it.
 *
 * The same seed gives other numbers under each, so a verifier that re-runs a round must use the receipt's.
 */
export const NOISE_SAMPLERS = ['ziggurat-sfc32', 'polar-sfc32'] as const
/** One of {@link NOISE_SAMPLERS}. */
export type NoiseSampler = (typeof NOISE_SAMPLERS)[number]
/** The sampler of new rounds, recorded in their receipts' `hyper.dp.sampler`. */
export const NOISE_SAMPLER: NoiseSampler = 'ziggurat-sfc32'
/** The sampler of a receipt that names none (rounds from before the sampler was recorded). */
export const LEGACY_NOISE_SAMPLER: NoiseSampler = 'polar-sfc32'

/**
 * Recommended settings for a DP-SGD job that leaves them open, from a sweep over learning rate, C, expected
 * batch and steps for the MLP on 2,000-digit shards (BENCHMARKS.md, "DP-SGD"): few, large, Poisson batches
 * (q ≈ 0.26 per 2,000 records), 192 steps per node, momentum 0.9 and lr·C = 0.15. C matters only through
 * lr·C once most examples are clipped (C = 0.2 with lr 0.5 trained as C = 1 with lr 0.1).
 */
export const DPSGD_DEFAULTS = {
  clipNorm: 1,
  /** The expected Poisson batch, q·N. */
  batchSize: 512,
  lr: 0.15,
  momentum: 0.9,
  H: 12,
  rounds: 16
} as const
