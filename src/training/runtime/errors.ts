import { ShoalError } from '../../common/index.js'

/**
 * Thrown when a training step's loss is NaN or ±Infinity. The step is rolled back. If the
 * batch held NaN/Inf the trainer keeps the weights and optimizer state it had before the
 * step; otherwise those weights produced the bad loss, and it goes back one step further to
 * the weights that last gave a finite loss. Fields: `step` (1-based index of the failed step
 * in this trainer's life), `loss`, `rolledBackTo` (the step count the trainer now stands at).
 */
export class NonFiniteLossError extends ShoalError<'NON_FINITE_LOSS'> {
  static override readonly category = 'internal'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('NON_FINITE_LOSS', message, fields)
  }
}

/**
 * Thrown when an explicitly requested execution provider (`cuda`, `webgpu`) cannot be
 * loaded or initialised. Fields: `device`, `reason`.
 */
export class ExecutionProviderError extends ShoalError<'EP_UNAVAILABLE'> {
  static override readonly category = 'unavailable'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('EP_UNAVAILABLE', message, fields, options)
  }
}

/** Thrown when a model's graphs lack the inputs or outputs of the train-step contract. */
export class ModelContractError extends ShoalError<'MODEL_CONTRACT_VIOLATED'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('MODEL_CONTRACT_VIOLATED', message, fields)
  }
}

/** Thrown when trainer options are invalid or contradict each other (e.g. `deterministic` with `cuda`). */
export class TrainerOptionsError extends ShoalError<'INVALID_TRAINER_OPTIONS'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('INVALID_TRAINER_OPTIONS', message, fields)
  }
}

/** Thrown when a trainer is used while another of its calls is still running, or after `close()`. */
export class TrainerStateError extends ShoalError<'TRAINER_BUSY' | 'TRAINER_CLOSED'> {
  static override readonly category = 'refused'

  constructor(
    code: 'TRAINER_BUSY' | 'TRAINER_CLOSED',
    message: string,
    fields: Record<string, unknown> = {}
  ) {
    super(code, message, fields)
  }
}
