/** `node_duty_cycle`: read or replace the node's duty cycle while it runs. */
import { z } from 'zod'
import { method, type RpcMethod } from '../rpc/index.js'

/** Shortest duty-cycle period (seconds), as in the config (`training.dutyPeriodSeconds`). */
export const DUTY_PERIOD_MIN_SECONDS = 1
/** Longest duty-cycle period (seconds): a day, as in the config. */
export const DUTY_PERIOD_MAX_SECONDS = 86_400

/** The duty cycle as `NodeJobs` reports it. */
export interface DutyCycleReport {
  cycle: number
  periodMs: number
  idle: boolean
  until?: number
  paused: boolean
  /** The user paused (`node_pause`), whatever the duty cycle says; absent where not known. */
  userPaused?: boolean
  configured: { cycle: number; periodMs: number }
}

/** What the method needs (`NodeJobs`). */
export interface DutyCycleControl {
  dutyCycle(): DutyCycleReport
  setDutyCycle(cycle: number, periodMs: number): DutyCycleReport
}

const DutyCycleResult = z.object({
  cycle: z.number().describe('share of each period this node trains; 1 = always'),
  periodSeconds: z.number(),
  idle: z.boolean().describe('the current window is idle: the duty cycle pauses training'),
  until: z.string().nullable().describe('when the current window ends (ISO 8601); null with a cycle of 1'),
  paused: z.boolean().describe('training is paused now (by the user or the duty cycle)'),
  userPaused: z
    .boolean()
    .optional()
    .describe('the user paused (node_pause) and must resume (node_resume), whatever the duty cycle says'),
  configured: z
    .object({ cycle: z.number(), periodSeconds: z.number() })
    .describe('the config’s duty cycle, which applies again when the daemon restarts')
})

function report(d: DutyCycleReport): z.infer<typeof DutyCycleResult> {
  return {
    cycle: d.cycle,
    periodSeconds: d.periodMs / 1000,
    idle: d.idle,
    until: d.until === undefined ? null : new Date(d.until).toISOString(),
    paused: d.paused,
    ...(d.userPaused !== undefined ? { userPaused: d.userPaused } : {}),
    configured: { cycle: d.configured.cycle, periodSeconds: d.configured.periodMs / 1000 }
  }
}

export function dutyCycleMethods(jobs: DutyCycleControl): RpcMethod[] {
  return [
    method({
      name: 'node_duty_cycle',
      summary:
        'Read the duty cycle (no params), or replace it until the daemon restarts: train for ' +
        'cycle × periodSeconds, then idle for the rest of each period; a new period starts now',
      params: z.object({
        cycle: z
          .number()
          .gt(0, 'cycle must be a fraction in (0, 1]: the share of each period spent training (1 = always)')
          .max(1, 'cycle must be a fraction in (0, 1]: the share of each period spent training (1 = always)')
          .optional(),
        periodSeconds: z
          .number()
          .int('periodSeconds must be a whole number of seconds')
          .min(DUTY_PERIOD_MIN_SECONDS, `periodSeconds must be at least ${DUTY_PERIOD_MIN_SECONDS}`)
          .max(DUTY_PERIOD_MAX_SECONDS, `periodSeconds must be at most ${DUTY_PERIOD_MAX_SECONDS} (a day)`)
          .optional()
      }),
      result: DutyCycleResult,
      handler: async ({ cycle, periodSeconds }) => {
        const now = jobs.dutyCycle()
        if (cycle === undefined && periodSeconds === undefined) return report(now)
        return report(
          jobs.setDutyCycle(
            cycle ?? now.cycle,
            periodSeconds !== undefined ? periodSeconds * 1000 : now.periodMs
          )
        )
      }
    })
  ]
}
