import { ShoalError } from '../../common/index.js'

/** Thrown when a weights blob is malformed (bad magic, header, shapes or length) or shapes do not match values. */
export class WeightsFormatError extends ShoalError<'WEIGHTS_FORMAT_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('WEIGHTS_FORMAT_INVALID', message, fields)
  }
}

/** Thrown when bytes are not an ONNX model Shoal can read, or lack the expected `x` input / `logits` output. */
export class OnnxModelError extends ShoalError<'ONNX_MODEL_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ONNX_MODEL_INVALID', message, fields, options)
  }
}
