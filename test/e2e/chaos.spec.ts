/**
 * Kill-and-restart chaos across processes: 4 trainers run a job while a driver SIGKILLs a trainer
 * (a seeded choice among those running) when the swarm reaches rounds 2 and 5, and
 * restarts it on its data dir at once. Every node ends done; each restart resumed from its checkpoint (not round 0); no
 * round was signed twice by one node; every receipt a trainer issued is held by every node and
 * still pinned where it was issued, as is each trainer's last checkpoint; the ledgers are equal and
 * exclude nobody; the swarm's accuracy stays near a run of the same job without kills. The long version
 * (6 trainers, 30 rounds, a kill every 10–20 s, 5 runs) is `npm run bench:chaos`.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkChaos, startChaos } from '../../scripts/lib/chaos.js'
import { LocalSwarm } from '../../scripts/lib/swarm.js'

const ROUNDS = 12
const JOB = { model: 'mlp', rounds: ROUNDS, H: 20, k: 3, lr: 0.05, batchSize: 32, seed: 1 }
const SEED = Number(process.env.CHAOS_SEED ?? 7)

describe('chaos: trainers SIGKILLed and restarted mid-job', function () {
  this.timeout(600_000)
  let swarm: LocalSwarm

  before(async () => {
    swarm = new LocalSwarm({ root: await mkdtemp(join(tmpdir(), 'shoal-e2e-chaos-')), trainers: 4 })
    await swarm.start()
    await swarm.form()
  })
  after(async () => {
    await swarm.stop()
    await rm(swarm.root, { recursive: true, force: true })
  })

  it('finishes with every receipt, pin and ledger intact, resumed from checkpoints', async () => {
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    // The reference: the same job with no kills.
    const ref = await swarm.createJob({ name: 'chaos-reference', dataset: ds.manifestCid, ...JOB })
    const refStatuses = await swarm.waitDone(ref)
    const reference = [...refStatuses.values()].map((s) => s.accuracy ?? NaN)

    const job = await swarm.createJob({ name: 'chaos', dataset: ds.manifestCid, ...JOB })
    const log: string[] = []
    const chaos = startChaos(swarm, job, { seed: SEED, at: [2, 5], log: (s) => log.push(s) })
    await swarm.waitDone(job)
    // Every trainer, restarted ones included, ends the job.
    await chaos.stop()
    await swarm.waitDone(job)
    const c = await checkChaos(swarm, job)
    const trace = `seed ${SEED}: ${log.join('; ')}`

    assert.ok(chaos.kills.length >= 2, `fewer than two kills (${trace})`)
    for (const [name, s] of c.statuses)
      assert.equal(s.state, 'done', `${name}: ${JSON.stringify(s.error)} (${trace})`)
    for (const k of chaos.kills) {
      if (k.resumedAt === undefined) continue
      assert.ok(
        k.resumedAt > 0 && k.resumedAt >= k.roundAtKill,
        `${k.victim} killed after round ${k.roundAtKill} restarted at round ${k.resumedAt} (${trace})`
      )
    }
    assert.deepEqual(c.duplicateRounds, [], `rounds signed twice (${trace})`)
    assert.deepEqual(c.missingReceipts, [], `receipts lost (${trace})`)
    assert.deepEqual(c.missingPins, [], `pins lost (${trace})`)
    assert.deepEqual(c.excluded, [], `DIDs excluded from the ledger (${trace})`)
    assert.equal(new Set(c.ledgerHashes).size, 1, `ledgers differ: ${c.ledgerHashes.join(', ')} (${trace})`)
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    console.log(
      `    ${trace}; ${c.receiptsIssued} receipts; accuracy ${c.accuracy.map((a) => (a * 100).toFixed(1)).join(', ')} vs ${(mean(reference) * 100).toFixed(1)} without kills`
    )
    // Trainers never killed learn as well as without kills (within 3 points); restarted ones catch
    // up within 6. (A restart can outlast the rest of a 12-round job on a quiet machine: the
    // victim then catches up from the others' last models.)
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!
    const killed = new Set(chaos.kills.map((k) => k.victim))
    for (const [i, t] of swarm.trainers.entries())
      if (!killed.has(t.name))
        assert.ok(
          c.accuracy[i]! >= median(reference) - 0.03,
          `${t.name} (never killed) ${c.accuracy[i]} vs ${median(reference)} without kills (${trace})`
        )
    for (const a of c.accuracy)
      assert.ok(a >= median(reference) - 0.06, `${a} vs ${median(reference)} without kills (${trace})`)
  })
})
