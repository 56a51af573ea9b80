/** The parts of a compiled model the runtime needs (the graph module's `CompiledModel` fits). */
export interface TensorInfo {
  readonly name: string
  readonly shape: readonly number[]
}

/**
 * A model as two ONNX graphs.
 *
 * - `trainStep`: inputs each param, each state tensor, `x` float32 `[B, ...spec.input]`,
 *   `y` int64 `[B]`, `lr` float32 `[]`; outputs `new:<param>`, `new:<state>`, `loss`
 *   float32 `[]` (mean over the batch) and `correct` float32 `[]`.
 * - `inference`: inputs each param and `x`; outputs `logits` `[B, classes]` and `probs`.
 */
export interface TrainableModel {
  readonly spec: { readonly input: readonly number[]; readonly classes?: number }
  readonly params: readonly TensorInfo[]
  readonly state: readonly TensorInfo[]
  readonly trainStep: Uint8Array
  readonly inference: Uint8Array
}

/** Outcome of one training step (on the weights before the update). */
export interface StepResult {
  /** Mean loss over the batch. */
  loss: number
  /** Correctly classified samples of the batch. */
  correct: number
  /** Samples in the batch. */
  size: number
  /** Steps this trainer has completed, this one included. */
  step: number
}

/** Outcome of an evaluation. */
export interface EvalResult {
  /** Mean cross-entropy loss. */
  loss: number
  /** Fraction of samples classified correctly. */
  accuracy: number
  correct: number
  count: number
}

/** Progress of a training loop, reported every few steps and at the end of each epoch. */
export interface ProgressEvent {
  epoch: number
  /** Step within the epoch, from 1. */
  step: number
  /** Steps per epoch. */
  steps: number
  /** Mean training loss over the epoch so far. */
  loss: number
  /** Learning rate of the latest step. */
  lr: number
}
