/** `shoal add|get|pins|unpin|stat|gc`: clients of the storage_* RPC methods and the add/get streams. */
import type { Command } from 'commander'
import { addFile, getFile } from '../transfer.js'
import type { CliContext } from './context.js'

/** Registers add, get, pins, unpin, stat, gc on `program`. */
export function registerStorageCommands(program: Command, ctx: CliContext): void {
  program
    .command('add <file>')
    .description('add a file (encrypted for this node unless --plain); prints its CID')
    .option('--plain', 'store unencrypted (public data)')
    .option('--name <name>', 'a name recorded in the envelope')
    .action(async (file: string, opts: { plain?: boolean; name?: string }) => {
      const r = await addFile(await ctx.client(), file, opts)
      ctx.out(ctx.json(), r, () => `added ${r.cid} (${r.size} bytes, ${r.encrypted ? 'encrypted' : 'plain'})`)
    })

  program
    .command('get <cid>')
    .description('fetch and decrypt a CID to a file (or stdout)')
    .option('-o, --output <file>', 'write here (default: stdout)')
    .action(async (cid: string, opts: { output?: string }) => {
      const n = await getFile(await ctx.client(), cid, opts.output ?? process.stdout)
      if (opts.output !== undefined) {
        ctx.out(ctx.json(), { cid, path: opts.output, size: n }, () => `wrote ${n} bytes to ${opts.output}`)
      }
    })

  program
    .command('pins')
    .description('list pinned objects')
    .action(async () => {
      const pins = await (await ctx.client()).call<Array<{ cid: string }>>('storage_pins')
      ctx.out(ctx.json(), pins, () => pins.map((p) => p.cid).join('\n'))
    })

  program
    .command('unpin <cid>')
    .description('unpin an object (blocks are removed by gc)')
    .action(async (cid: string) => {
      const r = await (await ctx.client()).call('storage_unpin', { cid })
      ctx.out(ctx.json(), r, () => `unpinned ${cid}`)
    })

  program
    .command('stat <cid>')
    .description('describe a stored object')
    .action(async (cid: string) => {
      const s = await (await ctx.client()).call<Record<string, unknown>>('storage_stat', { cid })
      ctx.out(ctx.json(), s, () =>
        Object.entries(s)
          .map(([k, v]) => `${k.padEnd(14)} ${String(v)}`)
          .join('\n')
      )
    })

  program
    .command('gc')
    .description('delete blocks no pin references')
    .action(async () => {
      const r = await (await ctx.client()).call('storage_gc')
      ctx.out(ctx.json(), r, () => 'gc done')
    })
}
