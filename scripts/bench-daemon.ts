/**
 * Storage through the shipped daemon, as a user runs it: `shoal daemon` started from
 * bin/shoal.js (not the library under `node --import tsx`), `shoal add` / `shoal get` through
 * the CLI and the RPC's streaming endpoints, encrypted and plain, and a second daemon fetching
 * the plain object from the first over bitswap. Before each figure it checks with node_info that
 * large streams ran in the crypto worker (the library benchmarks measured a worker the daemon
 * did not start until it was fixed).
 *
 *   npm run bench:daemon                 # 256 MiB
 *   npm run bench:daemon -- --size 64
 *
 * Prints a Markdown table: MiB/s of each operation (whole CLI command, process start included)
 * and the encrypted/plain ratio of the same run.
 */
import { randomFillSync } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { RpcClient } from '../src/node/rpc/index.js'
import { exited, shoal, startDaemon, type Daemon } from './lib/processes.js'

const { values } = parseArgs({ options: { size: { type: 'string', default: '256' } } })
const sizeMiB = Number(values.size)
const MiB = 1_048_576

const root = await mkdtemp(join(tmpdir(), 'shoal-bench-daemon-'))
const daemons: Daemon[] = []
try {
  const homes = [join(root, 'a'), join(root, 'b')]
  for (const h of homes) {
    const r = await shoal(h, ['init'])
    if (r.code !== 0) throw new Error(r.stderr)
    daemons.push(await startDaemon(h))
  }
  const [a, b] = homes as [string, string]
  const file = join(root, 'data.bin')
  const buf = Buffer.alloc(sizeMiB * MiB)
  for (let o = 0; o < buf.length; o += 65536) randomFillSync(buf, o, Math.min(65536, buf.length - o))
  await writeFile(file, buf)

  const timed = async (home: string, args: string[]): Promise<{ s: number; stdout: string }> => {
    const t0 = process.hrtime.bigint()
    const r = await shoal(home, args)
    if (r.code !== 0) throw new Error(`shoal ${args.join(' ')}: ${r.stderr}`)
    return { s: Number(process.hrtime.bigint() - t0) / 1e9, stdout: r.stdout }
  }
  const rate = (s: number): string => (sizeMiB / s).toFixed(1)

  const plainAdd = await timed(a, ['add', '--plain', file, '--json'])
  const encAdd = await timed(a, ['add', file, '--json'])
  const plainCid = (JSON.parse(plainAdd.stdout) as { cid: string }).cid
  const encCid = (JSON.parse(encAdd.stdout) as { cid: string }).cid
  const plainGet = await timed(a, ['get', plainCid, '-o', join(root, 'p.out')])
  const encGet = await timed(a, ['get', encCid, '-o', join(root, 'e.out')])
  const info = JSON.parse((await shoal(a, ['id', '--json'])).stdout) as {
    crypto: { worker: string; workerStreams: number; mainThreadStreams: number }
    listenAddresses: string[]
    peerId: string
  }
  if (info.crypto.worker !== 'running' || info.crypto.mainThreadStreams > 0) {
    throw new Error(`the crypto worker did not run: ${JSON.stringify(info.crypto)}`)
  }
  const addr = info.listenAddresses.find((x) => x.includes('/tcp/') && !x.includes('p2p-circuit'))!
  const rpcB = new RpcClient(daemons[1]!.api, (await readFile(join(b, 'rpc.cookie'), 'utf8')).trim())
  await rpcB.call('peers_connect', { addr: addr.includes('/p2p/') ? addr : `${addr}/p2p/${info.peerId}` })
  const remote = await timed(b, ['get', plainCid, '-o', join(root, 'r.out')])

  const rows = [
    ['add (CLI → daemon)', rate(encAdd.s), rate(plainAdd.s), (plainAdd.s / encAdd.s).toFixed(2)],
    ['get (daemon → CLI)', rate(encGet.s), rate(plainGet.s), (plainGet.s / encGet.s).toFixed(2)],
    ['node-to-node get (bitswap, plain)', '—', rate(remote.s), '—']
  ]
  console.log(
    `\n${sizeMiB} MiB through bin/shoal.js daemons on ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ` +
      `${new Date().toISOString().slice(0, 10)}; crypto worker ${info.crypto.worker}, ` +
      `${info.crypto.workerStreams} streams in the worker, ${info.crypto.mainThreadStreams} on the main thread\n`
  )
  console.log('| operation | encrypted MiB/s | plain MiB/s | encrypted/plain |')
  console.log('| --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.join(' | ')} |`)
} finally {
  for (const d of daemons) {
    d.child.kill('SIGTERM')
    await exited(d.child)
  }
  await rm(root, { recursive: true, force: true })
}
