import { ShoalError, type ErrorCategory } from '../../common/index.js'

/** Why a model update was rejected. */
export type UpdateRejectCode = 'UPDATE_SHAPE_MISMATCH' | 'UPDATE_NON_FINITE' | 'UPDATE_NORM_EXCEEDED'

/**
 * Thrown when a model update is rejected before aggregation; `code` names the reason a peer can
 * act on:
 * - `UPDATE_SHAPE_MISMATCH`: a tensor is missing, extra, or has the wrong number of values
 *   (`fields.param`, `fields.expected`, `fields.actual`: value counts, `null` for absent);
 * - `UPDATE_NON_FINITE`: a value is NaN or ±Infinity (`fields.param`, `fields.index`);
 * - `UPDATE_NORM_EXCEEDED`: the L2 norm of the update is beyond the bound (`fields.norm`, `fields.limit`).
 */
export class UpdateRejectedError extends ShoalError<UpdateRejectCode> {
  static override readonly categories: Record<UpdateRejectedError['code'], ErrorCategory> = {
    UPDATE_SHAPE_MISMATCH: 'usage',
    UPDATE_NON_FINITE: 'usage',
    UPDATE_NORM_EXCEEDED: 'refused'
  }

  constructor(code: UpdateRejectCode, message: string, fields: Record<string, unknown> = {}) {
    super(code, message, fields)
  }
}

/**
 * Thrown when the arguments of an aggregation call are invalid: no models, models of
 * different layouts, too few models for Krum with the given `f` (`fields.n`, `fields.f`),
 * a trim fraction or weights out of range, an unknown rule. The caller decides what to do.
 */
export class AggregationError extends ShoalError<'AGGREGATION_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('AGGREGATION_INVALID', message, fields)
  }
}

/** Thrown when compressed update bytes are truncated, garbled or not in the expected format. */
export class UpdateDecodeError extends ShoalError<'UPDATE_DECODE_FAILED'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('UPDATE_DECODE_FAILED', message, fields)
  }
}
