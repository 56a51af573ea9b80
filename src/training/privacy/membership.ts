/**
 * Membership inference by a loss threshold (Yeom, Giacomelli, Fredrikson & Jha, "Privacy Risk in Machine
 * Learning: Analyzing the Connection to Overfitting", CSF 2018): the attacker says "member" when the model's loss
 * on a record is at most τ. Its membership advantage is TPR − FPR; the best threshold's advantage is what this
 * module measures, as an empirical check of what a model reveals about the records it was trained on (and of
 * whether unlearning removed it).
 */
import { ShoalError } from '../../common/index.js'

/** Thrown when the losses given to a membership-inference measure are empty or not finite. */
export class MembershipInputError extends ShoalError<
  'INVALID_MEMBERSHIP_INPUT',
  { set: 'members' | 'nonMembers'; index?: number; value?: number }
> {
  static override readonly category = 'usage'

  constructor(
    set: 'members' | 'nonMembers',
    message: string,
    facts: { index?: number; value?: number } = {}
  ) {
    super('INVALID_MEMBERSHIP_INPUT', `${set}: ${message}`, { set, ...facts })
  }
}

/** The best loss threshold of the attack and how well it separates members from non-members. */
export interface ThresholdAttackResult {
  /** max over τ of TPR(τ) − FPR(τ), in [0, 1] (τ = −∞, which flags nobody, gives 0). */
  advantage: number
  /** The τ attaining it (the smallest such; a loss value of the inputs, or −∞ when the advantage is 0). */
  threshold: number
  /** Fraction of members with loss ≤ τ. */
  tpr: number
  /** Fraction of non-members with loss ≤ τ. */
  fpr: number
}

function checked(values: ArrayLike<number>, set: 'members' | 'nonMembers'): Float64Array {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new MembershipInputError(set, 'expected an array of losses')
  }
  if (values.length === 0) throw new MembershipInputError(set, 'no losses given')
  const out = new Float64Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new MembershipInputError(set, `loss ${String(v)} at index ${i} is not a finite number`, {
        index: i,
        ...(typeof v === 'number' ? { value: v } : {})
      })
    }
    out[i] = v
  }
  return out.sort()
}

/**
 * The loss-threshold membership-inference attack's best advantage, computed exactly: both sets are sorted and every
 * distinct loss value is tried as τ (records with equal losses are always classified together), in O(n log n).
 * The advantage is the one-sided two-sample Kolmogorov–Smirnov statistic of the two loss samples, so with finite
 * samples it is positive even when members and non-members come from one distribution (about √(ln(1/p)/2 ·
 * (1/m + 1/n)) at significance p).
 *
 * @example
 * ```ts
 * const { advantage, threshold } = lossThresholdAdvantage([0.1, 0.4, 0.35, 0.8], [0.2, 0.5, 0.9, 0.6])
 * // advantage 0.5 at threshold 0.4 (TPR 0.75, FPR 0.25)
 * ```
 * @throws {MembershipInputError} `INVALID_MEMBERSHIP_INPUT` when a set is empty or holds a value that is not a
 *   finite number.
 */
export function lossThresholdAdvantage(
  memberLosses: ArrayLike<number>,
  nonMemberLosses: ArrayLike<number>
): ThresholdAttackResult {
  const m = checked(memberLosses, 'members')
  const n = checked(nonMemberLosses, 'nonMembers')
  let best: ThresholdAttackResult = { advantage: 0, threshold: -Infinity, tpr: 0, fpr: 0 }
  let i = 0
  let j = 0
  while (i < m.length || j < n.length) {
    // The next distinct loss value, and every record of either set at it.
    const tau = j >= n.length || (i < m.length && m[i]! <= n[j]!) ? m[i]! : n[j]!
    while (i < m.length && m[i] === tau) i++
    while (j < n.length && n[j] === tau) j++
    const tpr = i / m.length
    const fpr = j / n.length
    const advantage = tpr - fpr
    if (advantage > best.advantage) best = { advantage, threshold: tau, tpr, fpr }
  }
  return best
}
