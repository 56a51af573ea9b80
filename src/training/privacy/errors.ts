import { ShoalError } from '../../common/index.js'

/** Thrown when a privacy parameter (q, σ, steps, order, δ, clip norm, …) is out of its domain. */
export class PrivacyParameterError extends ShoalError<
  'INVALID_PRIVACY_PARAMETER',
  { parameter: string; value: unknown; expected: string }
> {
  static override readonly category = 'usage'

  constructor(parameter: string, value: unknown, expected: string) {
    super('INVALID_PRIVACY_PARAMETER', `${parameter} must be ${expected}, got ${String(value)}`, {
      parameter,
      value,
      expected
    })
  }
}

/** Thrown when a persisted accountant state (see `RdpAccountant.fromJSON`) does not validate. */
export class AccountantStateError extends ShoalError<'INVALID_ACCOUNTANT_STATE', { issues: string[] }> {
  static override readonly category = 'usage'

  constructor(issues: string[]) {
    super('INVALID_ACCOUNTANT_STATE', `invalid RDP accountant state: ${issues.join('; ')}`, { issues })
  }
}

/** Thrown when two weight sets (or a weight set and an update) do not have the same tensors and sizes. */
export class UpdateShapeMismatchError extends ShoalError<
  'UPDATE_SHAPE_MISMATCH',
  { tensor: string; expected: number | string; actual: number | string }
> {
  static override readonly category = 'usage'

  constructor(tensor: string, expected: number | string, actual: number | string) {
    super('UPDATE_SHAPE_MISMATCH', `tensor ${tensor}: expected ${expected}, got ${actual}`, {
      tensor,
      expected,
      actual
    })
  }
}

/** Thrown when an update to be privatized holds NaN or ±Infinity (its norm, hence its clipping, is undefined). */
export class NonFiniteUpdateError extends ShoalError<'UPDATE_NON_FINITE', { tensor: string; index: number }> {
  static override readonly category = 'usage'

  constructor(tensor: string, index: number) {
    super('UPDATE_NON_FINITE', `tensor ${tensor} holds a non-finite value at index ${index}`, {
      tensor,
      index
    })
  }
}

/**
 * Thrown by the training loop (not by the accountant itself) when one more round would spend more than a
 * dataset owner's ε budget; see `RdpAccountant.wouldExceed`.
 */
export class PrivacyBudgetExceededError extends ShoalError<
  'PRIVACY_BUDGET_EXCEEDED',
  { epsilon: number; epsMax: number; delta: number }
> {
  static override readonly category = 'refused'

  constructor(epsilon: number, epsMax: number, delta: number) {
    super(
      'PRIVACY_BUDGET_EXCEEDED',
      `privacy budget exceeded: ε would be ${epsilon} > ε_max ${epsMax} at δ ${delta}`,
      {
        epsilon,
        epsMax,
        delta
      }
    )
  }
}

/**
 * Thrown when no noise multiplier (up to `MAX_NOISE_MULTIPLIER`) brings the planned steps within a target ε:
 * too many steps, too high a sampling rate, or a budget already spent.
 */
export class TargetEpsilonUnreachableError extends ShoalError<
  'TARGET_EPSILON_UNREACHABLE',
  { targetEpsilon: number; delta: number; steps: number; sampleRate: number; bestEpsilon: number }
> {
  static override readonly category = 'refused'

  constructor(targetEpsilon: number, delta: number, steps: number, sampleRate: number, bestEpsilon: number) {
    super(
      'TARGET_EPSILON_UNREACHABLE',
      `ε = ${targetEpsilon} at δ = ${delta} cannot be reached in ${steps} steps at q = ${sampleRate}: ` +
        `the most noise considered still spends ε = ${bestEpsilon}`,
      { targetEpsilon, delta, steps, sampleRate, bestEpsilon }
    )
  }
}
