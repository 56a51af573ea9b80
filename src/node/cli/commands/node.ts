/** `shoal init`, `shoal daemon` (both act on the data dir) and `shoal id`. */
import { Option, type Command } from 'commander'
import { Repo } from '../../repo/index.js'
import { readPassphrase, renderValue, type CliContext } from './context.js'

/** Registers init, daemon, id on `program`. */
export function registerNodeCommands(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the data dir and this node’s Ed25519 identity')
    .option('--force', 're-initialise an existing data dir (the old key is moved aside, never deleted)')
    .option(
      '--passphrase-file <file>',
      'seal the key with the passphrase in this file (or set SHOAL_PASSPHRASE)'
    )
    .action(async (opts: { force?: boolean; passphraseFile?: string }) => {
      const { home, json } = ctx.globals()
      const repo = new Repo(home)
      const passphrase = await readPassphrase(opts.passphraseFile)
      const { movedAside } = await repo.create({ force: opts.force })
      const { Keystore } = await import('../../../identity/index.js')
      const id = await Keystore.init(repo.keystoreDir, { passphrase, force: opts.force })
      ctx.out(
        json === true,
        { home, did: id.did, peerId: id.peerId.toString(), sealed: passphrase !== undefined, movedAside },
        () =>
          [
            `initialised ${home}`,
            `did:     ${id.did}`,
            `peer id: ${id.peerId.toString()}`,
            passphrase !== undefined
              ? 'key sealed with a passphrase'
              : 'key not sealed (use --passphrase-file to seal)',
            ...(movedAside !== undefined ? [`previous keystore and config moved to ${movedAside}`] : []),
            'start the node with: shoal daemon'
          ].join('\n')
      )
    })

  program
    .command('daemon')
    .description('run the node (Ctrl-C stops it cleanly)')
    .addOption(
      new Option('--set <path=value...>', 'override a config value, e.g. --set rpc.port=5001').default([])
    )
    .option('--passphrase-file <file>', 'passphrase of a sealed key (or set SHOAL_PASSPHRASE)')
    .action(async (opts: { set: string[]; passphraseFile?: string }) => {
      const { home } = ctx.globals()
      const { runDaemon } = await import('../../daemon.js')
      await runDaemon({
        home,
        sets: opts.set,
        passphrase: await readPassphrase(opts.passphraseFile),
        onReady: (node) => {
          process.stdout.write(
            [
              `Shoal daemon ${node.version} ready`,
              `did:     ${node.identity.did}`,
              `rpc:     ${node.rpcUrl.href}  (token in ${node.repo.cookiePath})`,
              ...node.helia.libp2p.getMultiaddrs().map((a) => `listen:  ${a.toString()}`)
            ].join('\n') + '\n'
          )
        }
      })
    })

  program
    .command('id')
    .description("show this node's DID, peer id and addresses")
    .action(async () => {
      const info = await (await ctx.client()).call<Record<string, unknown>>('node_info')
      const providers = (info.providers ?? []) as Array<{
        provider: string
        available: boolean
        detail: string
      }>
      ctx.out(ctx.json(), info, () =>
        [
          ...Object.entries(info)
            .filter(([k]) => k !== 'providers')
            .map(([k, v]) => `${k.padEnd(20)} ${renderValue(v)}`),
          ...providers.map(
            (p) =>
              `${`provider ${p.provider}`.padEnd(20)} ${p.available ? 'works' : 'unavailable'}: ${p.detail}`
          )
        ].join('\n')
      )
    })
}
