/**
 * A job's learning-rate schedule, round by round (docs/lm.md; any model but DP-SGD's): the
 * job's `hyper.schedule` resolved for one round (`jobRoundSchedule`, `localRoundSchedule` for a
 * node's rounds), as a receipt carries it in its `hyper.schedule` (`scheduleHyper`), and as a
 * verifier reads it back (`receiptSchedule`). A receipt without `hyper.schedule` (from before
 * schedules) names a constant rate.
 */
import { z } from 'zod'
import { defaultWarmupSteps, type RoundSchedule } from '../../lm/index.js'
import { ReexecSpecError } from '../errors.js'
import type { JobSpec } from '../job.js'

/** The schedule's type, as jobs and receipts name it. */
export const SCHEDULE_TYPE = 'warmup-cosine'

/** `hyper.schedule` of a receipt: the round's resolved schedule. */
const ReceiptScheduleSchema = z.strictObject({
  type: z.literal(SCHEDULE_TYPE),
  step: z.int().min(0),
  warmupSteps: z.int().min(0),
  totalSteps: z.int().min(1),
  minLr: z.number().min(0)
})

/** What a round's receipt adds to its `hyper` for a scheduled round. */
export type ScheduleHyper = z.output<typeof ReceiptScheduleSchema>

/**
 * Round `round`'s share of the job's schedule over `rounds × H` steps (undefined: the job has
 * none, a constant rate): the round's first step is `round × H`.
 */
export function jobRoundSchedule(
  schedule: JobSpec['hyper']['schedule'],
  run: { lr: number; H: number; rounds: number },
  round: number
): RoundSchedule | undefined {
  if (schedule === undefined) return undefined
  const totalSteps = run.rounds * run.H
  return {
    step: round * run.H,
    warmupSteps: schedule.warmupSteps ?? defaultWarmupSteps(totalSteps),
    totalSteps,
    minLr: schedule.minLr ?? run.lr / 10
  }
}

/**
 * Round `round`'s share of a node's job schedule at peak rate `lr` (`options`: the node's H and
 * rounds); undefined: a constant rate.
 */
export function localRoundSchedule(
  init: { job: JobSpec; options: { H: number; rounds: number } },
  round: number,
  lr: number
): RoundSchedule | undefined {
  const { H, rounds } = init.options
  return jobRoundSchedule(init.job.hyper.schedule, { lr, H, rounds }, round)
}

/** What a round's receipt adds to its `hyper` for the schedule: `{ schedule }`, or nothing. */
export function scheduleReceiptHyper(s: RoundSchedule | undefined): { schedule?: ScheduleHyper } {
  return s === undefined ? {} : { schedule: scheduleHyper(s) }
}

/** A round's schedule as its receipt's `hyper.schedule`. */
export function scheduleHyper(s: RoundSchedule): ScheduleHyper {
  return {
    type: SCHEDULE_TYPE,
    step: s.step,
    warmupSteps: s.warmupSteps,
    totalSteps: s.totalSteps,
    minLr: s.minLr
  }
}

/**
 * The schedule a receipt's `hyper.schedule` names; undefined when absent (a constant rate, as
 * receipts before schedules).
 *
 * @throws {ReexecSpecError} REEXEC_SPEC_MISMATCH (field `hyper.schedule`) when it is malformed.
 */
export function receiptSchedule(claimed: unknown): RoundSchedule | undefined {
  if (claimed === undefined) return undefined
  const parsed = ReceiptScheduleSchema.safeParse(claimed)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ReexecSpecError(
      'hyper.schedule',
      `the receipt's schedule is malformed at '${issue?.path.map(String).join('.') ?? ''}': ${issue?.message ?? 'invalid'}`,
      { claimed }
    )
  }
  const { step, warmupSteps, totalSteps, minLr } = parsed.data
  return { step, warmupSteps, totalSteps, minLr }
}

/**
 * Check a receipt's `hyper.schedule` against its job (a strict verifier's check, beside `lr`,
 * `batchSize` and `H`): present exactly when the job has a schedule, and then round `round`'s
 * share of it over the job's `rounds × H` steps.
 *
 * @throws {ReexecSpecError} REEXEC_SPEC_MISMATCH (field `hyper.schedule`) otherwise.
 */
export function checkScheduleClaim(
  claimed: unknown,
  spec: JobSpec,
  round: number,
  defaultRounds: number
): void {
  const got = receiptSchedule(claimed)
  const want = jobRoundSchedule(
    spec.hyper.schedule,
    { lr: spec.hyper.lr, H: spec.hyper.H, rounds: spec.hyper.rounds ?? defaultRounds },
    round
  )
  // Both are built field by field in one order ({step, warmupSteps, totalSteps, minLr}).
  const show = (s: RoundSchedule | undefined): string => (s === undefined ? 'none' : JSON.stringify(s))
  if (show(got) !== show(want)) {
    throw new ReexecSpecError(
      'hyper.schedule',
      `schedule other than the job's for round ${round}: the receipt claims ${show(got)}, expected ${show(want)}`,
      { claimed: claimed ?? null, expected: want ?? null, round }
    )
  }
}
