/**
 * `npm run bench:chaos`: kill-and-restart chaos, the long version of test/e2e/chaos.spec.ts. Each
 * run forms a fresh local swarm (owner + N trainers, Dirichlet(0.5) MNIST shards), runs a job,
 * and a driver SIGKILLs a trainer drawn by a seeded generator every 10–20 s (uniform) and
 * restarts it on its data dir at once (scripts/lib/chaos.ts). Per run: kills, the rounds the
 * victims resumed at, every node done, receipts issued and lost, (issuer, round) pairs signed
 * twice, pins lost, DIDs excluded from the ledger, whether the ledger hashes agree, accuracy;
 * the first run's swarm also runs the same job without kills, as the reference.
 *
 * Flags: --runs 5  --trainers 6  --rounds 30  --H 20  --every 10,20 (seconds)  --seed 1  --no-reference
 * Writes benchmarks/chaos.md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { checkChaos, startChaos, type ChaosChecks, type Kill } from './lib/chaos.js'
import { LocalSwarm } from './lib/swarm.js'
import { arg } from './lib/env.js'

const RUNS = Number(arg('runs', '5'))
const TRAINERS = Number(arg('trainers', '6'))
const ROUNDS = Number(arg('rounds', '30'))
const H = Number(arg('H', '20'))
const [EVERY_LO, EVERY_HI] = arg('every', '10,20').split(',').map(Number) as [number, number]
const SEED = Number(arg('seed', '1'))
/** --no-reference: skip the run without kills (e.g. to add runs with other seeds). */
const REFERENCE = !process.argv.includes('--no-reference')
const JOB = { model: 'mlp', rounds: ROUNDS, H, k: 3, lr: 0.05, batchSize: 32, seed: 1 }

interface Run {
  seed: number
  kills: Kill[]
  checks: ChaosChecks
  reference?: number[]
  wallS: number
}

const t0 = Date.now()
const say = (s: string): void => console.error(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${s}`)

async function runOnce(i: number): Promise<Run> {
  const seed = SEED + i
  const swarm = new LocalSwarm({
    root: await mkdtemp(join(tmpdir(), `shoal-chaos-${i}-`)),
    trainers: TRAINERS
  })
  try {
    await swarm.start()
    await swarm.form()
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    let reference: number[] | undefined
    if (i === 0 && REFERENCE) {
      const ref = await swarm.createJob({ name: 'chaos-reference', dataset: ds.manifestCid, ...JOB })
      reference = [...(await swarm.waitDone(ref, undefined, 3_600_000)).values()].map(
        (s) => s.accuracy ?? NaN
      )
      say(`reference: ${reference.map((a) => (a * 100).toFixed(1)).join(', ')}`)
    }
    const start = Date.now()
    const job = await swarm.createJob({ name: `chaos-${i}`, dataset: ds.manifestCid, ...JOB })
    const chaos = startChaos(swarm, job, {
      seed,
      every: [EVERY_LO * 1000, EVERY_HI * 1000],
      log: (s) => say(`run ${i + 1}: ${s}`)
    })
    await swarm.waitDone(job, undefined, 3_600_000)
    // Restarts in progress finish, and the restarted trainers end the job too.
    await chaos.stop()
    await swarm.waitDone(job, undefined, 600_000)
    const wallS = (Date.now() - start) / 1000
    const checks = await checkChaos(swarm, job)
    return { seed, kills: chaos.kills, checks, ...(reference !== undefined ? { reference } : {}), wallS }
  } finally {
    await swarm.stop()
    await rm(swarm.root, { recursive: true, force: true })
  }
}

const runs: Run[] = []
for (let i = 0; i < RUNS; i++) {
  say(`run ${i + 1} of ${RUNS}`)
  const r = await runOnce(i)
  runs.push(r)
  const c = r.checks
  say(
    `run ${i + 1}: ${r.kills.length} kills, done ${[...c.statuses.values()].filter((s) => s.state === 'done').length}/${TRAINERS}, ` +
      `receipts ${c.receiptsIssued}, lost ${c.missingReceipts.length}, twice ${c.duplicateRounds.length}, pins lost ${c.missingPins.length}, ` +
      `excluded ${c.excluded.length}, ledgers ${new Set(c.ledgerHashes).size === 1 ? 'equal' : 'DIFFER'}`
  )
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
const pct = (x: number): string => (x * 100).toFixed(1)
const reference = runs[0]?.reference ?? []
const lines: string[] = []
lines.push('## Kill/restart chaos (scripts/bench-chaos.ts)', '')
lines.push(
  `Command: \`npm run bench:chaos -- --runs ${RUNS} --trainers ${TRAINERS} --rounds ${ROUNDS} --H ${H} --every ${EVERY_LO},${EVERY_HI} --seed ${SEED}\`  `
)
lines.push(
  `Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, shared with other sessions; load average at the end ${loadavg()
    .map((x) => x.toFixed(1))
    .join(', ')}  `
)
lines.push(
  `Date: ${new Date().toISOString()}; total wall time ${((Date.now() - t0) / 60000).toFixed(1)} min  `
)
lines.push(
  `Setup: per run a fresh swarm of one owner + ${TRAINERS} trainer processes on 127.0.0.1, MNIST in Dirichlet(0.5) shards, MLP, H = ${H}, k = 3, ${ROUNDS} rounds, deterministic CPU rounds with receipts (the owner re-executes 10%). A trainer drawn by a seeded generator among those running is SIGKILLed every ${EVERY_LO}–${EVERY_HI} s and restarted at once on its data dir. Reference: the first swarm ran the same job without kills: ${reference.map(pct).join(', ')} % (mean ${pct(mean(reference))} %).`,
  ''
)
lines.push(
  '| run | seed | kills | resumed at (killed after) | done | receipts issued | lost | rounds signed twice | pins lost | excluded | ledgers | accuracy min–max | wall |'
)
lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const [i, r] of runs.entries()) {
  const c = r.checks
  const acc = c.accuracy
  lines.push(
    `| ${i + 1} | ${r.seed} | ${r.kills.length} | ${r.kills.map((k) => `${k.victim.replace('node-', 'n')}: ${k.resumedAt ?? 'done'} (${k.roundAtKill})`).join(', ')} | ${[...c.statuses.values()].filter((s) => s.state === 'done').length}/${TRAINERS} | ${c.receiptsIssued} | ${c.missingReceipts.length} | ${c.duplicateRounds.length} | ${c.missingPins.length} | ${c.excluded.length} | ${new Set(c.ledgerHashes).size === 1 ? 'equal' : 'DIFFER'} | ${pct(Math.min(...acc))}–${pct(Math.max(...acc))} % | ${r.wallS.toFixed(0)} s |`
  )
}
const md = lines.join('\n') + '\n'
console.log(md)
await writeFile(join(import.meta.dirname, '..', 'benchmarks', 'chaos.md'), md)
