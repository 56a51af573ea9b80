/**
 * `npm run bench:swarm`: decentralized training on local swarms of N trainer processes
 * (default N = 4 and 8; `--nodes 4,8,16`), each against the centralized curve for the same data
 * and epochs, with and without int8 compression (N = 4). Writes a Markdown section to
 * benchmarks/swarm.md: accuracy per round, bytes per node per round, wall time per round and
 * its training share, RSS per node.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { LocalSwarm, type JobStatus } from './lib/swarm.js'
import { arg } from './lib/env.js'

const NODES = arg('nodes', '4,8').split(',').map(Number)
const ROUNDS = Number(arg('rounds', '16'))
const H = 40
const BATCH = 32
const LR = 0.05

interface Run {
  n: number
  compression: 'none' | 'int8'
  statuses: Map<string, JobStatus>
  reference: number
  epochs: number
  rss: number[]
  wallS: number
}

async function runOne(n: number, compression: 'none' | 'int8'): Promise<Run> {
  const swarm = new LocalSwarm({ root: await mkdtemp(join(tmpdir(), `shoal-bench-${n}-`)), trainers: n })
  const t0 = Date.now()
  try {
    await swarm.start()
    await swarm.form()
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    const job = await swarm.createJob({
      name: `bench-${n}-${compression}`,
      dataset: ds.manifestCid,
      model: 'mlp',
      rounds: ROUNDS,
      H,
      k: Math.min(3, n - 1),
      lr: LR,
      batchSize: BATCH,
      compression,
      seed: 1
    })
    const statuses = await swarm.waitDone(job)
    const wallS = (Date.now() - t0) / 1000
    const rss = await Promise.all(
      swarm.trainers.map(async (t) => (await swarm.call<{ rssBytes: number }>(t, 'node_info')).rssBytes)
    )
    const total = ds.shards.reduce((a, s) => a + s.count, 0)
    const epochs = Math.max(1, Math.round((ROUNDS * H * BATCH * n) / total))
    const reference = await swarm.reference({ epochs, batchSize: BATCH, lr: LR })
    return { n, compression, statuses, reference, epochs, rss, wallS }
  } finally {
    await swarm.stop()
    await rm(swarm.root, { recursive: true, force: true })
  }
}

const pct = (x: number | undefined | null): string =>
  x === undefined || x === null ? '-' : `${(x * 100).toFixed(2)}%`
const runs: Run[] = []
for (const n of NODES) {
  console.error(`running N=${n} …`)
  runs.push(await runOne(n, 'none'))
}
console.error('running N=4 with int8 …')
runs.push(await runOne(4, 'int8'))

const lines: string[] = []
lines.push('## Decentralized training (scripts/bench-swarm.ts)', '')
lines.push(`Command: \`npm run bench:swarm -- --nodes ${NODES.join(',')} --rounds ${ROUNDS}\`  `)
lines.push(
  `Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; load average at the end ${loadavg()
    .map((x) => x.toFixed(1))
    .join(', ')}  `
)
lines.push(`Date: ${new Date().toISOString()}  `)
lines.push(
  `Setup: one owner + N trainer processes on 127.0.0.1, MNIST 8,000 digits in N Dirichlet(0.5) shards (one per trainer), MLP 784-128-10, SGD momentum 0.9, lr ${LR}, batch ${BATCH}, H = ${H} local steps per round, k = min(3, N−1) peers, mean aggregation, ${ROUNDS} rounds. The centralized reference trains the same MLP on all 8,000 digits for the same number of epochs (samples seen by the whole swarm ÷ 8,000). Held-out: the 2,000 digits of the seeded split.`,
  ''
)
lines.push(
  '| N | compression | final accuracy (min–max over nodes) | centralized | epochs | bytes sent per node per round | wall time | s per round | training share | RSS per node |'
)
lines.push('|---|---|---|---|---|---|---|---|---|---|')
for (const r of runs) {
  const st = [...r.statuses.values()]
  const accs = st.map((s) => s.accuracy ?? NaN)
  const rounds = st.reduce((a, s) => a + s.history.length, 0)
  const sent = st.reduce((a, s) => a + s.bytesSent, 0) / Math.max(1, rounds)
  const hist = st.flatMap((s) => s.history)
  const train = hist.reduce((a, h) => a + h.trainMs, 0)
  const all = hist.reduce((a, h) => a + h.trainMs + h.netMs + h.aggMs, 0)
  const perRound = all / Math.max(1, hist.length) / 1000
  lines.push(
    `| ${r.n} | ${r.compression} | ${pct(Math.min(...accs))} – ${pct(Math.max(...accs))} | ${pct(r.reference)} | ${r.epochs} | ${(sent / 1024).toFixed(0)} KiB | ${r.wallS.toFixed(0)} s | ${perRound.toFixed(2)} | ${((train / all) * 100).toFixed(0)}% | ${(r.rss.reduce((a, b) => a + b, 0) / r.rss.length / 2 ** 20).toFixed(0)} MiB |`
  )
}
lines.push('', 'Held-out accuracy per round (mean over nodes, after aggregation):', '')
const maxR = Math.max(...runs.map((r) => Math.max(...[...r.statuses.values()].map((s) => s.history.length))))
lines.push(`| round | ${runs.map((r) => `N=${r.n} ${r.compression}`).join(' | ')} |`)
lines.push(`|---|${runs.map(() => '---').join('|')}|`)
for (let i = 0; i < maxR; i++) {
  const cells = runs.map((r) => {
    const a = [...r.statuses.values()]
      .map((s) => s.history.find((h) => h.round === i)?.accuracy)
      .filter((x): x is number => x !== undefined)
    return a.length === 0 ? '-' : pct(a.reduce((x, y) => x + y, 0) / a.length)
  })
  lines.push(`| ${i + 1} | ${cells.join(' | ')} |`)
}
const md = lines.join('\n') + '\n'
console.log(md)
await writeFile(join(import.meta.dirname, '..', 'benchmarks', 'swarm.md'), md)
