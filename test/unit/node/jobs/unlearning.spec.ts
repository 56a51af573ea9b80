import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ShoalError, logger } from '../../../../src/common/index.js'
import { issueReceipt, receiptHash } from '../../../../src/training/receipts/index.js'
import type { Checkpoint } from '../../../../src/training/swarm/index.js'
import { NodeDb } from '../../../../src/node/db.js'
import { JobUnlearning, jobLineage, type UnlearningRuns } from '../../../../src/node/jobs/index.js'
import type { CheckpointRecord } from '../../../../src/node/records.js'
import { fakeCid, grantFor, honestInput, identity, shardCid } from '../../training/receipts/helpers.js'

const JOB = 'job-1'
const alice = identity(41)
const carol = identity(43)

/** The runs as unlearning sees them, recording every call. */
class FakeRuns implements UnlearningRuns {
  readonly calls: string[] = []
  retrainError: Error | undefined
  constructor(private readonly participating: boolean) {}
  async halt(job: string): Promise<boolean> {
    this.calls.push(`halt ${job}`)
    return this.participating
  }
  async retrain(job: string): Promise<void> {
    this.calls.push(`retrain ${job}`)
    if (this.retrainError !== undefined) throw this.retrainError
  }
  async revoked(job: string): Promise<void> {
    this.calls.push(`revoked ${job}`)
  }
}

describe('node/jobs: unlearning and lineage', () => {
  let dir: string
  let db: NodeDb
  const unpinned: string[] = []
  const resets: Array<{ job: string; cp?: Checkpoint }> = []

  /** Alice trains rounds 0–5 on g-alice; Carol joins at round 3 with g-carol. Checkpoints of rounds 0–5 on this node. */
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-unlearn-'))
    db = new NodeDb(join(dir, 'db'))
    await db.start()
    unpinned.length = 0
    resets.length = 0
    let prevA: string | null = null
    let prevC: string | null = null
    for (let r = 0; r < 6; r++) {
      prevA = await issueReceipt(alice, honestInput({ round: r, grant: 'g-alice', shards: [0] }), prevA)
      await db.put('receipts', receiptHash(prevA), {
        hash: receiptHash(prevA),
        jwt: prevA,
        job: JOB,
        round: r,
        issuer: alice.did
      })
      if (r >= 3) {
        prevC = await issueReceipt(carol, honestInput({ round: r, grant: 'g-carol', shards: [2] }), prevC)
        await db.put('receipts', receiptHash(prevC), {
          hash: receiptHash(prevC),
          jwt: prevC,
          job: JOB,
          round: r,
          issuer: carol.did
        })
      }
      const cid = fakeCid(`checkpoint-${r}`)
      const rec: CheckpointRecord = {
        cid,
        spec: {},
        source: 'job',
        job: JOB,
        round: r,
        // round 2 aggregated a peer model of round 3 (a straggler's view): influenced too
        maxInputRound: r === 2 ? 3 : r,
        accuracy: 0.5 + r / 20,
        lineage: [JOB],
        createdAt: ''
      }
      await db.put('checkpoints', cid, rec)
    }
  })

  afterEach(async () => {
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const unlearning = (runs: UnlearningRuns): JobUnlearning =>
    new JobUnlearning({
      db,
      store: { unpin: async (cid) => unpinned.push(cid.toString()) },
      resume: { reset: async (job, cp) => void resets.push({ job, ...(cp !== undefined ? { cp } : {}) }) },
      runs,
      log: logger('test:unlearning')
    })

  it('rolls back before the grant’s first round, records the exclusion, retrains, and finishes', async () => {
    const runs = new FakeRuns(true)
    const u = unlearning(runs)
    await u.grantEnded({ id: 'g-carol' }, 'revoked')
    assert.deepEqual(runs.calls, [`halt ${JOB}`, `retrain ${JOB}`])
    const left = (await db.list('checkpoints')).map((c) => c.round).sort()
    assert.deepEqual(left, [0, 1], 'rounds ≥ 3, and round 2 (built from a round-3 model), are dropped')
    assert.equal(unpinned.length, 4)
    assert.deepEqual(resets, [{ job: JOB, cp: { job: JOB, round: 1, weightsCid: fakeCid('checkpoint-1') } }])
    assert.equal((await db.get('latest', JOB))?.cid, fakeCid('checkpoint-1'))
    const rec = await u.exclusions(JOB)
    assert.deepEqual(rec?.grants, ['g-carol'])
    assert.equal(rec?.events.length, 1)
    assert.deepEqual(
      { ...rec!.events[0]!, startedAt: 'x' },
      {
        grant: 'g-carol',
        how: 'revoked',
        fromRound: 3,
        rolledBackTo: 1,
        checkpointsDropped: 4,
        retrain: 'retraining',
        startedAt: 'x'
      }
    )
    await u.finished(JOB)
    const done = (await u.exclusions(JOB))!.events[0]!
    assert.equal(done.retrain, 'done')
    assert.ok(done.ms !== undefined && done.ms >= 0)
    // The same grant ending again (its expiry after its revocation) changes nothing.
    await u.grantEnded({ id: 'g-carol' }, 'expired')
    assert.equal(runs.calls.length, 2)
    assert.equal((await u.exclusions(JOB))!.events.length, 1)
    // A grant no receipt names touches no job.
    await u.grantEnded({ id: 'g-unused' }, 'revoked')
    assert.equal(runs.calls.length, 2)
  })

  it('a node whose only data was revoked stops; one that does not train the job only rolls back', async () => {
    const runs = new FakeRuns(true)
    runs.retrainError = new ShoalError('JOB_NO_DATA', 'no grant left', {})
    await unlearning(runs).grantEnded({ id: 'g-alice' }, 'revoked')
    assert.deepEqual(runs.calls, [`halt ${JOB}`, `retrain ${JOB}`, `revoked ${JOB}`])
    const ev = (await db.get('job-exclusions', JOB))!.events[0]!
    assert.equal(ev.retrain, 'no-data')
    assert.equal(ev.rolledBackTo, null, 'g-alice trained round 0: back to the initial weights')
    assert.deepEqual(resets, [{ job: JOB }])
    assert.equal(await db.get('latest', JOB), undefined)

    const bystander = new FakeRuns(false)
    await unlearning(bystander).grantEnded({ id: 'g-carol' }, 'expired')
    assert.deepEqual(bystander.calls, [`halt ${JOB}`], 'not taking part: no retraining')
    assert.equal((await db.get('job-exclusions', JOB))!.events[1]!.retrain, 'not-training')
  })

  it('jobLineage names each grant’s rounds, trainers and status, and the checkpoints it influenced', async () => {
    const grants = new Map([
      ['g-alice', { ...grantFor('g-alice', alice, [0]), iat: 0 }],
      ['g-carol', { ...grantFor('g-carol', carol, [2], { revokedAt: 1 }), iat: 0 }]
    ])
    const lineage = async () =>
      jobLineage({
        job: JOB,
        receipts: await db.list('receipts'),
        checkpoints: await db.list('checkpoints'),
        exclusions: await db.get('job-exclusions', JOB),
        grant: async (id) => grants.get(id)
      })
    const l = await lineage()
    assert.deepEqual(
      l.grants.map((g) => [
        g.grant,
        g.status,
        g.firstRound,
        g.lastRound,
        g.receipts,
        g.trainers,
        g.unlearned
      ]),
      [
        ['g-alice', 'valid', 0, 5, 6, [alice.did], false],
        ['g-carol', 'revoked', 3, 5, 3, [carol.did], false]
      ]
    )
    assert.deepEqual(
      l.checkpoints.map((c) => [c.round, c.influencedBy]),
      [
        [0, ['g-alice']],
        [1, ['g-alice']],
        [2, ['g-alice', 'g-carol']],
        [3, ['g-alice', 'g-carol']],
        [4, ['g-alice', 'g-carol']],
        [5, ['g-alice', 'g-carol']]
      ]
    )
    assert.equal(shardCid(2), grants.get('g-carol')!.shards[0])
    await unlearning(new FakeRuns(false)).grantEnded({ id: 'g-carol' }, 'revoked')
    const after = await lineage()
    assert.deepEqual(after.excluded, ['g-carol'])
    assert.notEqual(after.epoch, l.epoch, 'a new lineage epoch')
    assert.ok(after.grants.find((g) => g.grant === 'g-carol')!.unlearned)
    assert.ok(after.checkpoints.every((c) => !c.influencedBy.includes('g-carol')))
  })
})
