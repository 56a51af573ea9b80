/** `shoal pause|resume|contributions`: this node's contribution to the jobs it joined. */
import { InvalidArgumentError, type Command } from 'commander'
import type { CliContext } from './context.js'

/** Registers pause, resume, contributions on `program`. */
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
