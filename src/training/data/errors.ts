import { ShoalError } from '../../common/index.js'

/**
 * Thrown when a tensor's size or shape does not match what it is used as (a data set's
 * sample shape, a model's input shape, a weight's shape). `fields.expected` names the
 * expected shape, `fields.got` what was given.
 */
export class ShapeError extends ShoalError<'SHAPE_MISMATCH'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('SHAPE_MISMATCH', message, fields)
  }
}

/** Thrown when a label is not an integer in `[0, classes)`. */
export class LabelRangeError extends ShoalError<'LABEL_OUT_OF_RANGE'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('LABEL_OUT_OF_RANGE', message, fields)
  }
}

/** Thrown when data-pipeline options are invalid (batch size, normalisation constants, …). */
export class DataOptionsError extends ShoalError<'INVALID_DATA_OPTIONS'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('INVALID_DATA_OPTIONS', message, fields)
  }
}
