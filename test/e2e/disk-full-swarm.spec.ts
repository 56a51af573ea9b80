/**
 * A trainer whose data dir fills up in the middle of a swarm job (issue #18, chaos): an owner and
 * two trainers run a small MLP job; node-2's data dir is a small tmpfs the test mounts (needs
 * root), and after node-2's round 1 the test fills it with a ballast file. node-2 must report
 * `DISK_FULL` in `job_status` and its log (not an internal error, not a crash), keep serving RPC
 * while node-1 trains on, keep what it stored intact (its checkpoints read back, its receipts
 * verify, chain included) and sign no round twice. When the ballast is removed, node-2 resumes
 * the job by itself (docs/training-swarm.md, "A full disk") and finishes it, and every receipt
 * reaches every node.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkChaos } from '../../scripts/lib/chaos.js'
import { LocalSwarm, until, type JobStatus } from '../../scripts/lib/swarm.js'

/** Writes `path` until the file system is full, then frees `slack` bytes of it. */
async function fill(path: string, slack: number): Promise<void> {
  const f = await open(path, 'w')
  try {
    for (const chunk of [1_048_576, 65_536, 4096]) {
      const buf = Buffer.alloc(chunk, 1)
      for (;;) {
        try {
          await f.write(buf)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw err
        }
      }
    }
    const { size } = await f.stat()
    await f.truncate(Math.max(0, size - slack))
  } finally {
    await f.close()
  }
}

const JOB = { model: 'mlp', rounds: 8, H: 10, k: 1, lr: 0.05, batchSize: 32, seed: 1 }

describe('a trainer whose disk fills up mid-job', function () {
  this.timeout(300_000)
  let root: string
  let mnt: string
  let swarm: LocalSwarm
  /** node-2's last status seen (printed when the test fails). */
  let seen: JobStatus | undefined

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-e2e-diskfull-swarm-'))
    mnt = join(root, 'node-2')
    await mkdir(mnt)
    // A prerequisite, like the lab's: the test makes its own small file system, which needs root.
    assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs: it needs root (CI runs as root)')
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m', 'tmpfs', mnt])
    swarm = new LocalSwarm({ root, trainers: 2, env: { SHOAL_LOG: 'warn' } })
    await swarm.start()
    await swarm.form()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(JSON.stringify(seen), swarm.output())
  })
  after(async () => {
    await swarm?.stop()
    try {
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
    } catch {
      // not mounted
    }
    await rm(root, { recursive: true, force: true })
  })

  it('reports DISK_FULL, keeps serving and its store intact, and resumes when space returns', async () => {
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    const job = await swarm.createJob({ name: 'disk-full', dataset: ds.manifestCid, ...JOB })
    const [peer, victim] = swarm.trainers as [(typeof swarm.trainers)[0], (typeof swarm.trainers)[0]]
    await until(
      'round 1 on node-2',
      async () => ((await swarm.status(victim, job)).round ?? -1) >= 1 || undefined
    )

    // Fill node-2's disk, leaving less than one model's worth (an MLP is ~400 kB).
    const ballast = join(mnt, 'ballast')
    await fill(ballast, 64 * 1024)
    const full = await until('DISK_FULL on node-2', async () => {
      const s = await swarm.status(victim, job)
      seen = s
      return (s.error as { code?: string } | null)?.code === 'DISK_FULL' ? s : undefined
    })
    const stalledAt = full.round ?? -1
    assert.ok(stalledAt < JOB.rounds - 1, `node-2 finished (round ${stalledAt}) before its disk filled`)

    // Still serving; the peer trains on past node-2's round.
    assert.match((await swarm.call<{ did: string }>(victim, 'node_info')).did, /^did:key:z6Mk/)
    await until('node-1 to train past node-2', async () =>
      ((await swarm.status(peer, job)).round ?? -1) > stalledAt ? true : undefined
    )

    // What node-2 stored before reads back: its checkpoints (as models) and its receipts (chain valid).
    const { checkpoints } = await swarm.call<{ checkpoints: Array<{ cid: string }> }>(victim, 'job_status', {
      job
    })
    assert.ok(checkpoints.length >= 1)
    const digit = [Array.from({ length: 784 }, (_, i) => (i % 28) / 28)]
    for (const cp of checkpoints) {
      const p = await swarm.call<{ predictions: unknown[] }>(victim, 'model_predict', {
        checkpoint: cp.cid,
        inputs: digit
      })
      assert.equal(p.predictions.length, 1)
    }
    const own = await swarm.call<Array<{ hash: string; round: number }>>(victim, 'receipts_list', {
      job,
      issuer: victim.did
    })
    assert.ok(own.length >= 2, `node-2 holds ${own.length} receipts of its own`)
    for (const r of own) {
      const v = await swarm.call<{ ok: boolean; failed: string | null }>(victim, 'receipts_verify', {
        receipt: r.hash
      })
      assert.ok(v.ok, `node-2's receipt of round ${r.round} fails at ${v.failed}`)
    }

    // Space returns: node-2 resumes by itself and finishes.
    await rm(ballast)
    const statuses = await swarm.waitDone(job, undefined, 180_000)
    for (const t of swarm.trainers) {
      const s: JobStatus = statuses.get(t.name)!
      assert.equal(s.state, 'done', `${t.name}: ${JSON.stringify(s.error)}`)
    }
    const c = await checkChaos(swarm, job)
    assert.deepEqual(c.duplicateRounds, [], 'rounds signed twice')
    assert.deepEqual(c.missingReceipts, [], 'receipts lost')
    assert.deepEqual(c.missingPins, [], 'pins lost')
    assert.deepEqual(c.excluded, [], 'DIDs excluded from the ledger')
    assert.equal(new Set(c.ledgerHashes).size, 1, `ledgers differ: ${c.ledgerHashes.join(', ')}`)
    // node-2 trained again after the stall (catching up with node-1's last models when it is ahead).
    const after = c.statuses.get(victim.name)!
    assert.ok(after.history.length > full.history.length, 'node-2 trained no round after the stall')
    assert.equal(after.history.at(-1)!.nextRound, JOB.rounds)
    assert.match(victim.daemon!.output(), /DISK_FULL/, 'the log names DISK_FULL')
  })
})
