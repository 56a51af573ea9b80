/**
 * A job whose node runs out of disk mid-round (issue #18): the runner reports `DISK_FULL` (not
 * the store's internal error) with the state `stalled`, releases the trainer, and resumes the
 * job from its checkpoint once space returns — the round cut short is trained again exactly as
 * before (so the receipt already signed for it stands: NodeReceipts reuses it). A real `JobRunner`, NodeDb and SwarmTrainer over a store that can be full.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { logger, rawCid } from '../../../../src/common/index.js'
import type { GrantInfo } from '../../../../src/storage/index.js'
import {
  ContentWeightStore,
  createJob,
  verifyJob,
  type VerifiedJob
} from '../../../../src/training/swarm/index.js'
import type { ReceiptInput } from '../../../../src/training/index.js'
import { loadConfig } from '../../../../src/node/config/index.js'
import { NodeDb } from '../../../../src/node/db.js'
import { JobRunner, imageJobData } from '../../../../src/node/jobs/index.js'
import { freeBytes, waitForSpace } from '../../../../src/node/jobs/space.js'
import { CREATOR, DATASET_CID, identityOf, jobInput } from '../../training/swarm/helpers.js'
import { memoryContent, syntheticImages, until } from './helpers.js'

const ME = identityOf(71).did
const SHARD = rawCid('disk-full spec shard')
const GRANT = 'grant-disk-full-spec'

describe('node/jobs: a full disk mid-job', function () {
  this.timeout(30_000)
  let dir: string
  let db: NodeDb
  let runner: JobRunner
  let job: VerifiedJob
  /** Whether the disk is full: model writes fail with ENOSPC, and no space is free. */
  let full: boolean
  /** The round whose receipt fills the disk (its checkpoint write then fails). */
  let fillAt: number
  const issued: ReceiptInput[] = []
  const finished: string[] = []

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-disk-full-'))
    db = new NodeDb(join(dir, 'db'))
    await db.start()
    full = false
    fillAt = 1
    issued.length = 0
    finished.length = 0
    const grant: GrantInfo = {
      id: GRANT,
      dataset: DATASET_CID,
      shards: [SHARD],
      grantee: ME,
      purpose: 'any',
      iat: Math.floor(Date.now() / 1000) - 60,
      owner: identityOf(72).did,
      shardSizes: { [SHARD]: 64 }
    }
    const signed = await createJob(
      CREATOR,
      jobInput({ name: 'disk full', seed: 5, hyper: { lr: 0.05, batchSize: 16, H: 3, k: 0, rounds: 4 } })
    )
    job = await verifyJob(signed.jwt, { expectedId: signed.id })
    runner = new JobRunner({
      did: ME,
      db,
      catalog: { verified: async () => job },
      swarm: {
        gossip: { publish: async () => ({ recipients: [] }), subscribe: () => () => {} },
        swarmId: () => 'disk-full-swarm',
        noteAnnouncer: () => {}
      },
      data: {
        grants: async () => [grant],
        budget: async () => undefined,
        readShard: async () => syntheticImages(64, 3),
        prep: imageJobData
      },
      models: new ContentWeightStore({ content: memoryContent(() => full) }),
      receipts: {
        issue: async (input) => {
          issued.push(input)
          if (input.round === fillAt) full = true
          return `eyJhbGciOiJFZERTQSJ9.eyJyb3VuZCI6${input.round}fQ.fake-signature`
        }
      },
      spent: async () => new Map(),
      excludedGrants: async () => [],
      finished: async (id) => void finished.push(id),
      training: (await loadConfig({ env: {}, overrides: { training: { threads: 1 } } })).training,
      checkpointsDir: join(dir, 'checkpoints'),
      freeSpace: async () => (full ? 0 : Infinity),
      log: logger('test:disk-full')
    })
  })

  afterEach(async () => {
    await runner.stop()
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('stalls with DISK_FULL, then resumes from its checkpoint when space returns and finishes', async () => {
    await runner.join(job.id)
    await until(() => runner.state(job.id) === 'stalled', 'the stall')
    const stalled = runner.status(job.id, [])
    assert.deepEqual((stalled.error as { code: string }).code, 'DISK_FULL')
    assert.deepEqual(
      (stalled.history as Array<{ round: number }>).map((h) => h.round),
      [0],
      'round 1 did not complete'
    )
    assert.deepEqual(
      issued.map((r) => r.round),
      [0, 1]
    )
    assert.deepEqual(
      await db.get('joined', job.id),
      { id: job.id },
      'still joined: resumed after a restart too'
    )

    fillAt = -1
    full = false
    await until(() => finished.includes(job.id), 'the job to finish')
    const done = runner.status(job.id, [])
    assert.equal(done.state, 'done')
    assert.equal(done.error, null)
    assert.deepEqual(
      (done.history as Array<{ round: number }>).map((h) => h.round),
      [0, 1, 2, 3],
      'the history carries over the stall'
    )
    assert.equal(done.receipts, 5)
    assert.deepEqual(
      issued.map((r) => r.round),
      [0, 1, 1, 2, 3]
    )
    // Round 1 again from the round-0 checkpoint, bit for bit: the receipt signed before stands.
    assert.deepEqual(issued[2], issued[1])
  })

  it('waitForSpace looks until the space is there, and gives up when its signal aborts', async () => {
    const seen: number[] = [0, 10, 1_000_000]
    let calls = 0
    await waitForSpace(dir, 1000, {
      signal: new AbortController().signal,
      everyMs: 1,
      free: async () => seen[calls++]!
    })
    assert.equal(calls, 3)
    const ac = new AbortController()
    const waiting = waitForSpace(dir, 1000, {
      signal: ac.signal,
      everyMs: 1,
      free: async () => {
        ac.abort(new Error('left'))
        return 0
      }
    })
    await assert.rejects(waiting, { name: 'AbortError' })
    const free = await freeBytes(dir)
    assert.ok(free > 0 && Number.isFinite(free), `free bytes of a real dir: ${free}`)
  })
})
