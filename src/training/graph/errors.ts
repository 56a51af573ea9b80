import { ShoalError } from '../../common/index.js'

/** Thrown when a model spec is malformed or its layer shapes do not fit together. */
export class ModelSpecError extends ShoalError<'MODEL_SPEC_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('MODEL_SPEC_INVALID', message, fields)
  }
}

/** Thrown when an optimizer spec names an unknown optimizer or has out-of-range hyper-parameters. */
export class OptimizerSpecError extends ShoalError<'OPTIMIZER_SPEC_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('OPTIMIZER_SPEC_INVALID', message, fields)
  }
}

/** Thrown when a graph is built wrongly: mismatched shapes or dtypes, no gradient path, duplicate names. */
export class GraphBuildError extends ShoalError<'GRAPH_BUILD_FAILED'> {
  static override readonly category = 'internal'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('GRAPH_BUILD_FAILED', message, fields)
  }
}

/** Thrown when weights handed to the model builder are missing or have the wrong size. */
export class WeightsMismatchError extends ShoalError<'WEIGHTS_MISMATCH'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('WEIGHTS_MISMATCH', message, fields)
  }
}
