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

/**
 * A round's share of a run's warm-up + cosine schedule (the peak is the round's `lr`): local
 * step `i` of the round is the run's step `step + i`. All values resolved, so that a verifier
 * re-running the round from its receipt needs no default.
 */
export interface RoundSchedule {
  /** The run's step of the round's first local step (round × H in a swarm job). */
  step: number
  warmupSteps: number
  /** Steps of the whole run (rounds × H in a swarm job). */
  totalSteps: number
  minLr: number
}

/** The default warm-up of a run of `totalSteps`: min(100, 5 % of it), rounded. */
export function defaultWarmupSteps(totalSteps: number): number {
  return Math.min(100, Math.round(totalSteps * 0.05))
}

/**
 * The rate of a round's local step `i` (from 0) with peak `lr`: `lr` itself without a schedule.
 *
 * @throws {LmOptionsError} LM_OPTIONS_INVALID for a schedule with negative, non-integer or non-finite values.
 */
export function roundLr(lr: number, schedule: RoundSchedule | undefined, i: number): number {
  if (schedule === undefined) return lr
  if (!Number.isInteger(schedule.step) || schedule.step < 0) {
    throw new LmOptionsError(`round schedule: step must be an integer ≥ 0, got ${schedule.step}`, {
      schedule
    })
  }
  return warmupCosineLr(
    { lr, minLr: schedule.minLr, warmupSteps: schedule.warmupSteps, totalSteps: schedule.totalSteps },
    schedule.step + i
  )
}
