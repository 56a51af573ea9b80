/** Held-out windows a language-model round is evaluated on (spread evenly over the held-out text). */
export const LM_EVAL_WINDOWS = 64

/** Windows per evaluation batch. */
export const LM_EVAL_BATCH = 16
