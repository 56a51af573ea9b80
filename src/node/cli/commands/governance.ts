/**
 * `shoal proposal create|list|show|vote|tally`, `shoal governance status|decree|invite|rejected`
 * and `shoal ledger statement [--verify <jwt>]`: clients of the governance_* and ledger_* RPC
 * methods (docs/governance.md).
 */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { ShoalError } from '../../../common/index.js'
import type { CliContext } from './context.js'

/** A usage error of the governance commands. */
export class GovernanceUsageError extends ShoalError<'GOVERNANCE_USAGE'> {
  static override readonly category = 'usage'
}

interface ProposalView {
  hash: string
  proposer: string
  title: string
  action: Record<string, unknown>
  status: string
  outcome: string
  opens: number
  closes: number
  yes: number
  no: number
  abstain: number
  weight: number
  electorate: string[]
  votes: Array<{ voter: string; choice: string; weight: number }>
  rejectedVotes?: Array<{ author: string; reason: string; detail: string }>
}

const when = (s: number): string => new Date(s * 1000).toISOString()

function describeAction(a: Record<string, unknown>): string {
  switch (a.type) {
    case 'admit':
      return `admit ${String(a.member)}`
    case 'remove':
      return `remove ${String(a.member)}${a.reason === undefined ? '' : ` (${String(a.reason)})`}`
    case 'job':
      return `start job ${String(a.job)}`
    case 'policy':
      return `policy ${JSON.stringify(a.changes)}`
    default:
      return `resolution: ${String(a.text)}`
  }
}

/** The action of `shoal proposal create` from its options (exactly one kind). */
export function actionFromOptions(o: {
  admit?: string
  remove?: string
  reason?: string
  job?: string
  policy?: string
  resolution?: string
}): Record<string, unknown> {
  const given = (['admit', 'remove', 'job', 'policy', 'resolution'] as const).filter(
    (k) => o[k] !== undefined
  )
  if (given.length !== 1) {
    throw new GovernanceUsageError(
      'GOVERNANCE_USAGE',
      'give exactly one of --admit <did>, --remove <did>, --job <id>, --policy <json>, --resolution <text>',
      { given }
    )
  }
  if (o.admit !== undefined) return { type: 'admit', member: o.admit }
  if (o.remove !== undefined)
    return { type: 'remove', member: o.remove, ...(o.reason === undefined ? {} : { reason: o.reason }) }
  if (o.job !== undefined) return { type: 'job', job: o.job }
  if (o.policy !== undefined) {
    let changes: unknown
    try {
      changes = JSON.parse(o.policy)
    } catch {
      throw new GovernanceUsageError('GOVERNANCE_USAGE', '--policy takes a JSON object', { policy: o.policy })
    }
    return { type: 'policy', changes }
  }
  return { type: 'resolution', text: o.resolution }
}

function show(p: ProposalView): string {
  const lines = [
    `${p.hash}  ${p.status.toUpperCase()}  ${p.title}`,
    `  ${describeAction(p.action)}; by ${p.proposer}`,
    `  window ${when(p.opens)} – ${when(p.closes)}`,
    `  yes ${p.yes}, no ${p.no}, abstain ${p.abstain} of ${p.weight} (${p.electorate.length} members): ${p.outcome}`
  ]
  for (const v of p.votes) lines.push(`    ${v.voter}  ${v.choice}${v.weight === 1 ? '' : ` ×${v.weight}`}`)
  for (const v of p.rejectedVotes ?? []) lines.push(`    ${v.author}  not counted: ${v.reason} (${v.detail})`)
  return lines.join('\n')
}

/** Registers `proposal`, `governance` and `ledger statement` on `program` (after `ledger`). */
export function registerGovernanceCommands(program: Command, ctx: CliContext): void {
  const proposal = program.command('proposal').description('proposals and votes of a governed swarm')
  proposal
    .command('create <title>')
    .description('propose to admit or remove a member, start a job, change a policy, or a resolution')
    .option('--admit <did>', 'admit a member')
    .option('--remove <did>', 'remove a member (its credential is refused, its connections closed)')
    .option('--reason <text>', 'why (with --remove)')
    .option('--job <id>', 'start a job (a governed swarm runs a job only once approved)')
    .option('--policy <json>', 'change the swarm policy, e.g. \'{"rewards":{"trainer":100,"data":60}}\'')
    .option('--resolution <text>', 'a free-text resolution')
    .option('--window <seconds>', 'voting window (default 3 days, within the constitution)', (v) =>
      Number.parseInt(v, 10)
    )
    .action(async (title: string, o: Record<string, string | number | undefined>) => {
      const action = actionFromOptions(o as Record<string, string | undefined>)
      const r = await (
        await ctx.client()
      ).call<{ proposal: string }>('governance_propose', {
        title,
        action,
        ...(o.window !== undefined ? { windowSeconds: o.window } : {})
      })
      ctx.out(ctx.json(), r, () => `proposal ${r.proposal}`)
    })
  proposal
    .command('list')
    .description('proposals with their status and tally')
    .option('--status <status>', 'pending | open | passed | failed')
    .action(async (o: { status?: string }) => {
      const r = await (await ctx.client()).call<ProposalView[]>('governance_proposals', o.status ? o : {})
      ctx.out(ctx.json(), r, () =>
        r.length === 0
          ? 'no proposals'
          : r
              .map((p) => `${p.hash}  ${p.status.padEnd(7)}  ${p.yes}/${p.no}/${p.abstain}  ${p.title}`)
              .join('\n')
      )
    })
  proposal
    .command('show <hash>')
    .description('one proposal: tally, counted votes, and votes that do not count with why')
    .action(async (hash: string) => {
      const r = await (await ctx.client()).call<ProposalView>('governance_proposal', { proposal: hash })
      ctx.out(ctx.json(), r, () => show(r))
    })
  proposal
    .command('vote <hash> <choice>')
    .description('vote yes, no or abstain (a later vote replaces this one until the close)')
    .action(async (hash: string, choice: string) => {
      if (!['yes', 'no', 'abstain'].includes(choice))
        throw new GovernanceUsageError('GOVERNANCE_USAGE', 'the choice is yes, no or abstain', { choice })
      const r = await (
        await ctx.client()
      ).call<{ vote: string }>('governance_vote', { proposal: hash, choice })
      ctx.out(ctx.json(), r, () => `voted ${choice}: ${r.vote}`)
    })
  proposal
    .command('tally [hash]')
    .description('the outcome of every proposal (or one), and the log head they were computed at')
    .action(async (hash: string | undefined) => {
      const r = await (
        await ctx.client()
      ).call<{
        head: string
        tallies: Array<{ hash: string; status: string; outcome: string; title: string }>
      }>('governance_tally', hash === undefined ? {} : { proposal: hash })
      ctx.out(ctx.json(), r, () =>
        [
          ...r.tallies.map((t) => `${t.hash}  ${t.status.padEnd(7)}  ${t.title}: ${t.outcome}`),
          `head ${r.head}`
        ].join('\n')
      )
    })

  const gov = program.command('governance').description('the governance of this node’s swarm')
  gov
    .command('status')
    .description('constitution, members, removed members, policy, approved jobs, log head')
    .action(async () => {
      const r = await (await ctx.client()).call<Record<string, unknown>>('governance_status')
      ctx.out(ctx.json(), r, () => JSON.stringify(r, null, 2))
    })
  gov
    .command('found')
    .description('make this swarm governed (its creator only): sign its constitution')
    .option('--constitution <file>', 'a constitution file (JSON); defaults for what it leaves out')
    .action(async (o: { constitution?: string }) => {
      const r = await found(ctx, o.constitution)
      ctx.out(ctx.json(), r, () => `constitution ${r.constitution}`)
    })
  gov
    .command('decree <action> <did>')
    .description('a founders’ decree: admit (bootstrap) or remove (emergency), as the constitution allows')
    .action(async (action: string, did: string) => {
      if (action !== 'admit' && action !== 'remove')
        throw new GovernanceUsageError('GOVERNANCE_USAGE', 'a decree admits or removes', { action })
      const r = await (
        await ctx.client()
      ).call<{ decree: string }>('governance_decree', { action: { type: action, member: did } })
      ctx.out(ctx.json(), r, () => `decree ${r.decree}`)
    })
  gov
    .command('invite <did>')
    .description('the invite of an admitted member (any member holding its credential)')
    .action(async (did: string) => {
      const r = await (await ctx.client()).call<{ invite: string }>('governance_invite', { member: did })
      ctx.out(ctx.json(), r, () => r.invite)
    })
  gov
    .command('rejected')
    .description('documents this node holds that do not count, with the reason of each')
    .action(async () => {
      const r = await (
        await ctx.client()
      ).call<Array<{ hash: string; kind: string; author: string; reason: string; detail: string }>>(
        'governance_rejected'
      )
      ctx.out(ctx.json(), r, () =>
        r.length === 0 ? 'none' : r.map((x) => `${x.hash}  ${x.kind}  ${x.reason}: ${x.detail}`).join('\n')
      )
    })

  const ledger = program.commands.find((c) => c.name() === 'ledger')
  ledger
    ?.command('statement')
    .description('the balances (trainers, data owners) at the ledger hash, signed by this node as a JWT')
    .option('--verify <jwt>', 'verify a statement instead')
    .action(async (o: { verify?: string }) => {
      const client = await ctx.client()
      if (o.verify !== undefined) {
        const r = await client.call<Record<string, unknown>>('ledger_verify_statement', {
          statement: o.verify
        })
        ctx.out(ctx.json(), r, () => `valid statement by ${String(r.iss)} at ledger ${String(r.ledger)}`)
        return
      }
      const r = await client.call<{ jwt: string; ledger: string }>('ledger_statement')
      ctx.out(ctx.json(), r, () => r.jwt)
    })
}

/** Signs the constitution of the current swarm from an optional file (`swarm create --governed`). */
export async function found(ctx: CliContext, file: string | undefined): Promise<{ constitution: string }> {
  let constitution: unknown = {}
  if (file !== undefined) {
    try {
      constitution = JSON.parse(await readFile(file, 'utf8'))
    } catch (err) {
      throw new GovernanceUsageError(
        'GOVERNANCE_USAGE',
        `cannot read the constitution file: ${(err as Error).message}`,
        {
          file
        }
      )
    }
  }
  return (await ctx.client()).call<{ constitution: string }>('governance_found', { constitution })
}
