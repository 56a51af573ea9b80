/**
 * Learning-rate schedules, evaluated per step. Plain data (JSON-serialisable) so that a
 * job can carry its schedule and a receipt can name it.
 */
import { TrainerOptionsError } from './errors.js'

export type LrSchedule =
  /** A constant rate. */
  | number
  | { kind: 'constant'; lr: number }
  /** `lr · gamma^floor(epoch / every)`. */
  | { kind: 'step'; lr: number; gamma: number; every: number }
  /** `values[i]` from epoch `boundaries[i-1]` (values has one more entry than boundaries). */
  | { kind: 'piecewise'; boundaries: number[]; values: number[] }
  /** Linear warm-up over `warmupEpochs`, then a cosine decay from `lr` to `minLr` at the last step. */
  | { kind: 'cosine'; lr: number; minLr?: number; warmupEpochs?: number }

/** Where a step sits in a run. */
export interface SchedulePoint {
  /** Epoch, from 0. */
  epoch: number
  /** Step within the epoch, from 0. */
  step: number
  stepsPerEpoch: number
  /** Total epochs of the run. */
  epochs: number
}

function bad(message: string, schedule: unknown): never {
  throw new TrainerOptionsError(message, { schedule })
}

/**
 * Check a schedule's values.
 *
 * @throws {TrainerOptionsError} for negative or non-finite rates, or a malformed schedule.
 */
export function validateSchedule(s: LrSchedule): LrSchedule {
  const rate = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0
  if (typeof s === 'number') {
    if (!rate(s)) bad(`learning rate must be finite and ≥ 0, got ${s}`, s)
    return s
  }
  switch (s.kind) {
    case 'constant':
      if (!rate(s.lr)) bad('constant schedule: lr must be finite and ≥ 0', s)
      return s
    case 'step':
      if (!rate(s.lr) || !rate(s.gamma) || !(Number.isInteger(s.every) && s.every >= 1)) {
        bad('step schedule: lr, gamma ≥ 0 and every ≥ 1 (integer) required', s)
      }
      return s
    case 'piecewise':
      if (
        !Array.isArray(s.boundaries) ||
        !Array.isArray(s.values) ||
        s.values.length !== s.boundaries.length + 1 ||
        !s.values.every(rate) ||
        !s.boundaries.every((b, i) => Number.isFinite(b) && (i === 0 || b > s.boundaries[i - 1]!))
      ) {
        bad('piecewise schedule: increasing boundaries and one more value than boundaries required', s)
      }
      return s
    case 'cosine':
      if (!rate(s.lr) || (s.minLr !== undefined && !rate(s.minLr)) || (s.warmupEpochs ?? 0) < 0) {
        bad('cosine schedule: lr, minLr ≥ 0 and warmupEpochs ≥ 0 required', s)
      }
      return s
    default:
      return bad(`unknown schedule kind ${JSON.stringify((s as { kind?: unknown }).kind)}`, s)
  }
}

/** The learning rate at a point of the run. */
export function lrAt(s: LrSchedule, at: SchedulePoint): number {
  if (typeof s === 'number') return s
  switch (s.kind) {
    case 'constant':
      return s.lr
    case 'step':
      return s.lr * Math.pow(s.gamma, Math.floor(at.epoch / s.every))
    case 'piecewise': {
      let i = 0
      while (i < s.boundaries.length && at.epoch >= s.boundaries[i]!) i++
      return s.values[i]!
    }
    case 'cosine': {
      const min = s.minLr ?? 0
      const total = Math.max(1, at.epochs * at.stepsPerEpoch)
      const t = at.epoch * at.stepsPerEpoch + at.step
      const warm = Math.round((s.warmupEpochs ?? 0) * at.stepsPerEpoch)
      if (t < warm) return (s.lr * (t + 1)) / warm
      const p = Math.min(1, (t - warm) / Math.max(1, total - 1 - warm))
      return min + ((s.lr - min) * (1 + Math.cos(Math.PI * p))) / 2
    }
  }
}

/** A short human description, e.g. for benchmark reports. */
export function describeSchedule(s: LrSchedule): string {
  if (typeof s === 'number') return `constant ${s}`
  switch (s.kind) {
    case 'constant':
      return `constant ${s.lr}`
    case 'step':
      return `${s.lr} × ${s.gamma} every ${s.every} epoch(s)`
    case 'piecewise':
      return `piecewise ${s.values.map((v, i) => (i === 0 ? `${v}` : `→ ${v} at epoch ${s.boundaries[i - 1]}`)).join(' ')}`
    case 'cosine':
      return `cosine ${s.lr} → ${s.minLr ?? 0}${s.warmupEpochs ? ` after ${s.warmupEpochs} warm-up epoch(s)` : ''}`
  }
}
