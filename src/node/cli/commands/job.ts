/** `shoal job create|list|join|leave|status|lineage`: clients of the job_* RPC methods. */
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { ShoalError } from '../../../common/index.js'
import type { JobLineage } from '../../jobs/index.js'
import { renderLineage } from '../lineage.js'
import type { CliContext } from './context.js'

/** A `shoal job` option used wrongly (`JOB_USAGE`, exit code of a usage error). */
function usage(message: string, details: Record<string, unknown> = {}): ShoalError {
  return new ShoalError('JOB_USAGE', message, details, { category: 'usage' })
}

/** `--model`: a built-in name (the daemon's `gpt` is GPT_DEFAULT), else the path of a JSON model spec. */
function modelOption(value: string): unknown {
  if (value === 'mlp' || value === 'cnn' || value === 'gpt') return value
  try {
    return JSON.parse(readFileSync(value, 'utf8')) as unknown
  } catch (err) {
    throw usage(
      `--model is mlp, cnn, gpt or a JSON spec file; cannot read ${value}: ${(err as Error).message}`,
      {
        model: value
      }
    )
  }
}

/** Registers `shoal job` and its subcommands on `program`. */
export function registerJobCommands(program: Command, ctx: CliContext): void {
  const jobCmd = program.command('job').description('decentralized training jobs')
  const int = (v: string): number => Number.parseInt(v, 10)
  jobCmd
    .command('create')
    .description('create a signed job and announce it to the swarm')
    .requiredOption('--dataset <cid>', 'manifest CID of the dataset')
    .option('--name <name>', 'job name', 'job')
    .option('--model <name>', 'mlp, cnn, gpt (GPT_DEFAULT, on a text dataset) or a JSON spec file', 'mlp')
    .option(
      '--outer <lr,momentum|none>',
      'DiLoCo’s outer step, e.g. 0.7,0.9 (the default for gpt), or none: plain averaging (the default for mlp, cnn)'
    )
    .option('--warmup <steps>', 'warm-up steps of a warmup-cosine schedule (default min(100, 5 %))', int)
    .option(
      '--schedule <kind>',
      'warmup-cosine (the default for gpt) or constant (one rate for every step; the default for mlp, cnn)'
    )
    .option('--rounds <n>', 'rounds', int)
    .option('--H <n>', 'local steps per round', int)
    .option('--k <n>', 'peer models aggregated per round', int)
    .option('--lr <rate>', 'learning rate', Number.parseFloat)
    .option('--batch-size <n>', 'batch size', int)
    .option('--aggregation <rule>', 'clipped-gossip (default), mean, trimmed-mean, median, krum or bucketing')
    .option('--compression <kind>', 'none or int8')
    .option('--seed <n>', 'seed of the initial weights and data order', int)
    .option('--init <checkpoint>', 'start every node from this checkpoint (e.g. an imported personal model)')
    .option(
      '--unverifiable <policy>',
      'credit, no-credit (default) or exclude: what rounds nobody can re-execute earn in the ledger'
    )
    .option(
      '--clip-norm <C>',
      'differential privacy: clip each shared update to this L2 norm',
      Number.parseFloat
    )
    .option(
      '--noise-multiplier <σ>',
      'differential privacy: Gaussian noise of σ·C on each shared update (needs --clip-norm)',
      Number.parseFloat
    )
    .action(async (o: Record<string, string | number | undefined>) => {
      const { clipNorm, noiseMultiplier, model, outer, schedule, ...rest } = o
      const params: Record<string, unknown> = Object.fromEntries(
        Object.entries(rest).filter(([, v]) => v !== undefined)
      )
      params.model = modelOption(String(model))
      if (outer === 'none') params.outer = null
      else if (outer !== undefined) {
        const [lr, momentum] = String(outer).split(',').map(Number)
        if (!Number.isFinite(lr) || !Number.isFinite(momentum))
          throw usage(`--outer takes lr,momentum (e.g. 0.7,0.9) or none, got ${outer}`)
        params.outer = { lr, momentum }
      }
      if (schedule !== undefined) {
        if (schedule !== 'constant' && schedule !== 'warmup-cosine')
          throw usage(`--schedule is warmup-cosine or constant, got ${schedule}`)
        params.schedule = schedule
      }
      if (clipNorm !== undefined) params.privacy = { clipNorm, noiseMultiplier: noiseMultiplier ?? 0 }
      const r = await (await ctx.client()).call<{ id: string; name: string }>('job_create', params)
      ctx.out(ctx.json(), r, () => `created job ${r.id} (${r.name})`)
    })
  jobCmd
    .command('list')
    .description('jobs this node knows')
    .action(async () => {
      const r = await (
        await ctx.client()
      ).call<Array<{ id: string; name: string; state: string }>>('job_list')
      ctx.out(ctx.json(), r, () => r.map((j) => `${j.id}  ${j.name}  ${j.state}`).join('\n'))
    })
  jobCmd
    .command('join <job>')
    .description('contribute to a job with the shards this node holds grants for')
    .action(async (job: string) => {
      const r = await (await ctx.client()).call<{ shards: number }>('job_join', { job })
      ctx.out(ctx.json(), r, () => `joined ${job} with ${r.shards} shard(s)`)
    })
  jobCmd
    .command('leave <job>')
    .description('stop contributing to a job')
    .action(async (job: string) => {
      const r = await (await ctx.client()).call('job_leave', { job })
      ctx.out(ctx.json(), r, () => `left ${job}`)
    })
  jobCmd
    .command('status <job>')
    .description('round, loss, held-out accuracy, peers, bytes and checkpoints')
    .action(async (job: string) => {
      const r = await (
        await ctx.client()
      ).call<Record<string, unknown> & { history?: unknown }>('job_status', { job })
      ctx.out(ctx.json(), r, () => {
        const { history: _h, job: _j, ...rest } = r
        const warning =
          r.isolated === true
            ? "warning: this node never aggregated a peer's model (isolated: it trained alone; see `shoal peers`)\n"
            : ''
        return warning + JSON.stringify(rest, null, 2)
      })
    })

  jobCmd
    .command('lineage <job>')
    .description(
      'which datasets and owners trained the job, which checkpoints each influenced, and unlearning'
    )
    .action(async (job: string) => {
      const r = await (await ctx.client()).call<JobLineage>('job_lineage', { job })
      ctx.out(ctx.json(), r, () => renderLineage(r))
    })
}
