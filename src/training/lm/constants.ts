import type { OptimizerSpec } from '../graph/index.js'

/** Symbolic batch dimension of the LM graphs' `x`, `y` and `logits`. */
export const LM_BATCH = 'B'

/** AdamW as small character-level GPTs are usually trained (nanoGPT's shakespeare-char: β2 0.99). */
export const DEFAULT_LM_OPTIMIZER: OptimizerSpec = {
  type: 'adamw',
  beta1: 0.9,
  beta2: 0.99,
  eps: 1e-8,
  weightDecay: 0.1
}

/**
 * The peak learning rate and batch (windows per step) of a GPT job when its creator names none:
 * what `npm run bench:lm` trains the default model with (AdamW, warm-up + cosine; held-out 1.42
 * nats/char in 20 CPU-minutes). A classifier's SGD rate (0.05) makes AdamW diverge.
 */
export const DEFAULT_LM_LR = 2e-3
export const DEFAULT_LM_BATCH_SIZE = 16

/** Global-norm gradient clipping bound. */
export const DEFAULT_MAX_GRAD_NORM = 1

/** Generation defaults. */
export const DEFAULT_GENERATE_TOKENS = 200
export const DEFAULT_TEMPERATURE = 0.8
