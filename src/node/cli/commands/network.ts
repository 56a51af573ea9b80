/** `shoal swarm create|invite|info`, `shoal join`, `shoal peers [connect]` and `shoal pubsub`. */
import type { Command } from 'commander'
import type { CliContext } from './context.js'
import { found } from './governance.js'

/** Registers swarm, join, peers, pubsub on `program`. */
export function registerNetworkCommands(program: Command, ctx: CliContext): void {
  const swarmCmd = program.command('swarm').description('create, inspect and invite to swarms')
  swarmCmd
    .command('create <name>')
    .description("create a swarm (a new founders' key) and join it")
    .option('--public', 'a public swarm (default: private, members only)')
    .option('--governed', 'the members decide by proposals and votes (docs/governance.md)')
    .option(
      '--constitution <file>',
      'the constitution of a governed swarm (JSON; defaults for what it leaves out)'
    )
    .action(async (name: string, opts: { public?: boolean; governed?: boolean; constitution?: string }) => {
      const d = await (
        await ctx.client()
      ).call<{ id: string; private: boolean }>('swarm_create', {
        name,
        private: opts.public !== true
      })
      const governed =
        opts.governed === true || opts.constitution !== undefined
          ? await found(ctx, opts.constitution)
          : undefined
      ctx.out(
        ctx.json(),
        governed === undefined ? d : { ...d, ...governed },
        () =>
          `created ${d.private ? 'private' : 'public'} swarm ${d.id} (${name})` +
          (governed === undefined ? '' : `, governed by constitution ${governed.constitution}`)
      )
    })
  swarmCmd
    .command('invite <did>')
    .description('issue a membership credential for a DID; prints an invite for `shoal join`')
    .option('--expires <seconds>', 'lifetime of the credential in seconds', (v) => Number.parseInt(v, 10))
    .action(async (did: string, opts: { expires?: number }) => {
      const r = await (
        await ctx.client()
      ).call<{ invite: string }>('swarm_invite', {
        did,
        ...(opts.expires !== undefined ? { expiresInSeconds: opts.expires } : {})
      })
      ctx.out(ctx.json(), r, () => r.invite)
    })
  swarmCmd
    .command('info')
    .description('the swarm this node is in, verified and refused peers')
    .action(async () => {
      const r = await (await ctx.client()).call<Record<string, unknown>>('swarm_info')
      ctx.out(ctx.json(), r, () => JSON.stringify(r, null, 2))
    })

  program
    .command('join <invite>')
    .description('join a swarm with an invite from one of its founders')
    .action(async (invite: string) => {
      const d = await (await ctx.client()).call<{ id: string; name: string }>('swarm_join', { invite })
      ctx.out(ctx.json(), d, () => `joined swarm ${d.id} (${d.name})`)
    })

  const peersCmd = program
    .command('peers')
    .description('list connected peers')
    .action(async () => {
      const r = await (
        await ctx.client()
      ).call<
        Array<{
          peerId: string
          did: string | null
          addr: string
          member: boolean | null
          relayed?: boolean
          limited?: boolean
          upgraded?: boolean
        }>
      >('peers_list')
      const path = (p: (typeof r)[number]): string =>
        p.relayed === true
          ? `relayed${p.limited === true ? ', limited' : ''}`
          : p.upgraded === true
            ? 'direct (upgraded from relay)'
            : 'direct'
      ctx.out(ctx.json(), r, () =>
        r.length === 0
          ? 'no peers'
          : r
              .map(
                (p) =>
                  `${p.addr}  ${p.did ?? p.peerId}  [${path(p)}]${p.member === false ? '  (not verified)' : ''}`
              )
              .join('\n')
      )
    })
  peersCmd
    .command('connect <multiaddr>')
    .description('dial a peer')
    .action(async (addr: string) => {
      const r = await (await ctx.client()).call<{ peerId: string }>('peers_connect', { addr })
      ctx.out(ctx.json(), r, () => `connected to ${r.peerId}`)
    })

  program
    .command('pubsub')
    .description('gossip statistics per topic: published, delivered, rejected by reason')
    .action(async () => {
      const r = await (await ctx.client()).call<Record<string, unknown>>('pubsub_stats')
      ctx.out(ctx.json(), r, () => JSON.stringify(r, null, 2))
    })
}
