/** `shoal pause|resume|duty-cycle|contributions`: this node's contribution to the jobs it joined. */
import { InvalidArgumentError, type Command } from 'commander'
import type { CliContext } from './context.js'

/** Registers pause, resume, duty-cycle, contributions on `program`. */
export function registerVolunteerCommands(program: Command, ctx: CliContext): void {
  program
    .command('pause')
    .description('pause contribution to every job (before the next step, or before a round)')
    .option('--from-round <n>', 'train on until round n of each job, and hold before it', parseRound)
    .action(async (opts: { fromRound?: number }) => {
      const r = await (
        await ctx.client()
      ).call('node_pause', opts.fromRound === undefined ? {} : { fromRound: opts.fromRound })
      ctx.out(ctx.json(), r, () => 'paused')
    })
  program
    .command('resume')
    .description('resume contribution')
    .action(async () => {
      const r = await (await ctx.client()).call('node_resume')
      ctx.out(ctx.json(), r, () => 'resumed')
    })
  program
    .command('duty-cycle')
    .description(
      'show the duty cycle, or set it until the daemon restarts: train for a share of each period, idle for the rest'
    )
    .argument('[share]', 'share of each period spent training: 0.5 or 50% (1 = always)', parseShare)
    .option(
      '--period <duration>',
      'length of a period: seconds, or 90s, 10m, 1h (at most a day)',
      parsePeriod
    )
    .action(async (share: number | undefined, opts: { period?: number }) => {
      const params = {
        ...(share !== undefined ? { cycle: share } : {}),
        ...(opts.period !== undefined ? { periodSeconds: opts.period } : {})
      }
      const r = await (await ctx.client()).call<DutyCycle>('node_duty_cycle', params)
      ctx.out(ctx.json(), r, () => renderDutyCycle(r))
    })
  program
    .command('contributions')
    .description('what this node contributed: rounds, samples, receipts, bytes per job')
    .action(async () => {
      const r = await (await ctx.client()).call<Record<string, unknown>>('node_contributions')
      ctx.out(ctx.json(), r, () => JSON.stringify(r, null, 2))
    })
}

function parseRound(v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`--from-round: a round number ≥ 0, got ${v}`)
  return n
}

/** What `node_duty_cycle` answers. */
interface DutyCycle {
  cycle: number
  periodSeconds: number
  idle: boolean
  until: string | null
  paused: boolean
  configured: { cycle: number; periodSeconds: number }
}

const percent = (x: number): string => `${Number((x * 100).toFixed(2))}%`

/** `duty cycle 50% of 600 s (idle until …)`, and the config's when it differs. */
export function renderDutyCycle(d: DutyCycle): string {
  const now =
    d.cycle >= 1
      ? 'duty cycle 100% (always training)'
      : `duty cycle ${percent(d.cycle)} of ${d.periodSeconds} s (${d.idle ? 'idle' : 'training'} until ${d.until ?? '?'})`
  const c = d.configured
  const differs = c.cycle !== d.cycle || (d.cycle < 1 && c.periodSeconds !== d.periodSeconds)
  return [
    now,
    ...(d.paused && !d.idle ? ['paused by the user (shoal resume)'] : []),
    ...(differs
      ? [`config: ${percent(c.cycle)} of ${c.periodSeconds} s (applies again when the daemon restarts)`]
      : [])
  ].join('\n')
}

/** `0.5` or `50%` → 0.5, in (0, 1]. */
export function parseShare(v: string): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(v.trim())
  const n = m === null ? NaN : Number(m[1]) / (m[2] === '%' ? 100 : 1)
  if (!(n > 0 && n <= 1))
    throw new InvalidArgumentError(`a share of each period in (0, 1] (0.5, 50%; 1 = always), got ${v}`)
  return n
}

/** `600`, `600s`, `10m`, `1h` → seconds (a whole number from 1 s to a day). */
export function parsePeriod(v: string): number {
  const m = /^(\d+)\s*(s|m|h)?$/.exec(v.trim())
  const n =
    m === null ? NaN : Number(m[1]) * ({ s: 1, m: 60, h: 3600 } as const)[(m[2] ?? 's') as 's' | 'm' | 'h']
  if (!(Number.isInteger(n) && n >= 1 && n <= 86_400))
    throw new InvalidArgumentError(`--period: 1 s … 24 h, as 600, 600s, 10m or 1h; got ${v}`)
  return n
}
