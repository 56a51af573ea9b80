/** The learning-rate schedule of LM training: linear warm-up, then a cosine decay to a floor. */
import { LmOptionsError } from './errors.js'

export interface WarmupCosine {
  /** Peak rate, reached at the end of the warm-up. */
  lr: number
  /** Rate at the last step and after (default lr / 10). */
  minLr?: number
  warmupSteps: number
  /** Steps of the whole run (warm-up included). */
  totalSteps: number
}

/**
 * The rate at step `step` (from 0): `lr·(step + 1)/warmupSteps` during the warm-up, then
 * `minLr + ½(lr − minLr)(1 + cos(π·p))` with p going from 0 to 1 at the last step; `minLr` after.
 *
 * @throws {LmOptionsError} LM_OPTIONS_INVALID for negative or non-finite values.
 */
export function warmupCosineLr(s: WarmupCosine, step: number): number {
  const min = s.minLr ?? s.lr / 10
  const ok = (x: number): boolean => Number.isFinite(x) && x >= 0
  if (
    !ok(s.lr) ||
    !ok(min) ||
    !Number.isInteger(s.warmupSteps) ||
    s.warmupSteps < 0 ||
    !Number.isInteger(s.totalSteps) ||
    s.totalSteps < 1
  ) {
    throw new LmOptionsError(
      'warm-up cosine schedule: lr, minLr ≥ 0, warmupSteps ≥ 0 and totalSteps ≥ 1 (integers) required',
      {
        schedule: s
      }
    )
  }
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps
  const span = Math.max(1, s.totalSteps - 1 - s.warmupSteps)
  const p = Math.min(1, (step - s.warmupSteps) / span)
  return min + ((s.lr - min) * (1 + Math.cos(Math.PI * p))) / 2
}
