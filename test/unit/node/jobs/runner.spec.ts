/**
 * The job runner on its own: a real `JobRunner` (real NodeDb, SwarmTrainer, ContentWeightStore
 * and resume points) over fakes of the catalog, gossip, data and receipts.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hasCode, logger, rawCid } from '../../../../src/common/index.js'
import type { GossipHandler, GossipMeta, TopicSpec } from '../../../../src/p2p/index.js'
import type { GrantInfo } from '../../../../src/storage/index.js'
import {
  ContentWeightStore,
  createJob,
  updatesTopic,
  verifyJob,
  type JobSpecInput,
  type VerifiedJob
} from '../../../../src/training/swarm/index.js'
import type { ReceiptInput } from '../../../../src/training/index.js'
import { loadConfig, type ShoalConfig } from '../../../../src/node/config/index.js'
import { NodeDb } from '../../../../src/node/db.js'
import { JobRequestError, JobRunner, imageJobData } from '../../../../src/node/jobs/index.js'
import { CREATOR, DATASET_CID, identityOf, jobInput } from '../../training/swarm/helpers.js'
import { memoryContent, syntheticImages, until } from './helpers.js'

const ME = identityOf(61).did
const PEER = identityOf(62).did
const SWARM = 'test-swarm'
const SHARD = rawCid('runner-spec shard 0')
const GRANT = 'grant-runner-spec'
const OTHER_DATASET = rawCid('a dataset this node holds no grant for')
const SAMPLES = 96

/** Gossip by hand: `published` keeps what was sent, `deliver` plays a peer on a topic. */
class FakeGossip {
  readonly published: Array<{ topic: string; msg: unknown }> = []
  readonly handlers = new Map<string, Set<GossipHandler<unknown>>>()
  subscriptions = 0
  /** Called on each message published (after it is recorded). */
  onPublish: ((topic: string, msg: unknown) => void) | undefined

  async publish<T>(topic: string | TopicSpec<T>, msg: T): Promise<{ recipients: never[] }> {
    const name = typeof topic === 'string' ? topic : topic.topic
    this.published.push({ topic: name, msg: structuredClone(msg) })
    this.onPublish?.(name, msg)
    return { recipients: [] }
  }

  subscribe<T>(topic: string | TopicSpec<T>, handler: GossipHandler<T>): () => void {
    const name = typeof topic === 'string' ? topic : topic.topic
    const set = this.handlers.get(name) ?? new Set()
    this.handlers.set(name, set)
    const h = handler as GossipHandler<unknown>
    set.add(h)
    this.subscriptions++
    return () => {
      set.delete(h)
    }
  }

  listeners(topic: string): number {
    return this.handlers.get(topic)?.size ?? 0
  }

  async deliver(topic: string, msg: unknown, did: string): Promise<void> {
    for (const h of this.handlers.get(topic) ?? []) await h(structuredClone(msg), { did } as GossipMeta)
  }
}

describe('node/jobs: the job runner', function () {
  this.timeout(30_000)
  let dir: string
  let db: NodeDb
  let gossip: FakeGossip
  let runner: JobRunner
  let training: ShoalConfig['training']
  const jobs = new Map<string, VerifiedJob>()
  const issued: ReceiptInput[] = []
  const finished: string[] = []
  const shardReads: Array<{ cid: string; job: string }> = []
  const announcers: Array<{ cid: string; did: string }> = []

  const grant: GrantInfo = {
    id: GRANT,
    dataset: DATASET_CID,
    shards: [SHARD],
    grantee: ME,
    purpose: 'any',
    iat: Math.floor(Date.now() / 1000) - 60,
    owner: identityOf(63).did,
    shardSizes: { [SHARD]: SAMPLES }
  }

  /** A signed, verified job of the small MLP, known to the fake catalog. */
  async function job(name: string, overrides: Partial<JobSpecInput> = {}): Promise<VerifiedJob> {
    const signed = await createJob(CREATOR, jobInput({ name, seed: 5, ...overrides }))
    const verified = await verifyJob(signed.jwt, { expectedId: signed.id })
    jobs.set(verified.id, verified)
    return verified
  }

  /** Resolves when the runner reports the job finished here. */
  async function finishedOf(jobId: string): Promise<void> {
    await until(() => finished.includes(jobId), `job ${jobId} to finish`)
  }

  async function checkpointsOf(jobId: string): Promise<Array<{ cid: string; round?: number }>> {
    return (await db.list('checkpoints'))
      .filter((c) => c.job === jobId)
      .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
  }

  before(async () => {
    training = (await loadConfig({ env: {}, overrides: { training: { threads: 1 } } })).training
    assert.equal(training.verifiable, true, 'deterministic CPU training')
    assert.equal(training.dutyCycle, 1, 'no duty cycle')
  })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-runner-'))
    db = new NodeDb(join(dir, 'db'))
    await db.start()
    gossip = new FakeGossip()
    jobs.clear()
    issued.length = 0
    finished.length = 0
    shardReads.length = 0
    announcers.length = 0
    runner = new JobRunner({
      did: ME,
      db,
      catalog: {
        verified: async (id) => jobs.get(id) ?? Promise.reject(new Error(`unknown job ${id}`))
      },
      swarm: {
        gossip,
        swarmId: () => SWARM,
        noteAnnouncer: (cid, did) => void announcers.push({ cid, did })
      },
      data: {
        grants: async (dataset) => (dataset === grant.dataset ? [grant] : []),
        budget: async () => undefined,
        readShard: async (cid, jobId) => {
          shardReads.push({ cid, job: jobId })
          return syntheticImages(SAMPLES, 17)
        },
        prep: imageJobData
      },
      models: new ContentWeightStore({ content: memoryContent() }),
      receipts: {
        issue: async (input) => {
          issued.push(input)
          return `eyJhbGciOiJFZERTQSJ9.eyJyb3VuZCI6${input.round}fQ.fake-signature`
        }
      },
      spent: async () => new Map(),
      excludedGrants: async () => [],
      finished: async (jobId) => {
        finished.push(jobId)
      },
      training,
      checkpointsDir: join(dir, 'checkpoints'),
      log: logger('test:runner')
    })
  })

  afterEach(async () => {
    await runner.stop()
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('runs a joined k = 0 job to done: rounds, loss, a checkpoint and a receipt per round, contributions', async () => {
    const j = await job('runner: to done', { hyper: { lr: 0.05, batchSize: 16, H: 4, k: 0, rounds: 3 } })
    const done = finishedOf(j.id)
    assert.deepEqual(await runner.join(j.id), { job: j.id, shards: 1 })
    assert.deepEqual(shardReads, [{ cid: SHARD, job: j.id }])
    assert.deepEqual(await db.get('joined', j.id), { id: j.id })
    await done
    assert.equal(runner.state(j.id), 'done')
    assert.deepEqual(finished, [j.id])

    const cps = await checkpointsOf(j.id)
    assert.deepEqual(
      cps.map((c) => c.round),
      [0, 1, 2],
      'one checkpoint per round'
    )
    assert.equal(new Set(cps.map((c) => c.cid)).size, 3)
    for (const c of await db.list('checkpoints')) {
      assert.equal(c.source, 'job')
      assert.deepEqual(c.lineage, [j.id])
      assert.equal(c.maxInputRound, c.round, 'k = 0: no peer model aggregated')
    }
    assert.deepEqual(await db.get('latest', j.id), {
      cid: cps[2]!.cid,
      round: 2,
      accuracy: (await db.get('checkpoints', cps[2]!.cid))?.accuracy
    })
    assert.equal(await db.get('joined', j.id), undefined, 'a finished job is not resumed after a restart')

    const status = runner.status(j.id, cps)
    assert.equal(status.state, 'done')
    assert.equal(status.held, false)
    assert.equal(status.round, 2)
    assert.equal(status.rounds, 3)
    assert.equal(typeof status.loss, 'number')
    assert.ok(Number.isFinite(status.loss as number))
    assert.equal(typeof status.accuracy, 'number', 'evaluated on the held-out digits')
    assert.equal(status.receipts, 3)
    assert.deepEqual(status.shards, [{ cid: SHARD, grant: GRANT }])
    assert.equal(status.isolated, false, 'k = 0 trains alone by design')
    assert.equal(status.error, null)
    assert.equal(status.stopped, null)
    assert.equal(status.allowance, null, 'no privacy budget: unbounded')
    assert.deepEqual(status.checkpoints, cps)
    assert.deepEqual(
      (status.history as Array<{ round: number; samples: number }>).map((h) => h.round),
      [0, 1, 2]
    )

    assert.deepEqual(
      issued.map((r) => [r.job, r.round]),
      [
        [j.id, 0],
        [j.id, 1],
        [j.id, 2]
      ],
      'one receipt per round'
    )
    for (const [i, r] of issued.entries()) {
      assert.deepEqual(r.shards, [{ cid: SHARD, grant: GRANT }])
      assert.equal(r.steps, 4)
      assert.equal(r.samples, 4 * 16)
      assert.equal(r.seed !== undefined, true)
      if (i > 0) assert.equal(r.baseCid, cps[i - 1]!.cid, 'each round starts from the last checkpoint')
    }

    const topic = updatesTopic(SWARM, j.id).topic
    const updates = gossip.published
      .filter((p) => p.topic === topic)
      .map((p) => p.msg as Record<string, unknown>)
    assert.deepEqual(
      updates.slice(0, 3).map((m) => [m.round, m.receipt]),
      [0, 1, 2].map((r) => [r, `eyJhbGciOiJFZERTQSJ9.eyJyb3VuZCI6${r}fQ.fake-signature`]),
      'each round is announced with its receipt'
    )

    const mine = runner.contributions()[j.id] as Record<string, unknown>
    assert.equal(mine.state, 'done')
    assert.equal(mine.rounds, 3)
    assert.equal(mine.samples, 3 * 4 * 16)
    assert.equal(mine.receipts, 3)
    assert.ok((mine.bytesSent as number) > 0)
  })

  it('refuses a job whose dataset this node holds no grant for (JOB_NO_DATA), and runs nothing', async () => {
    const j = await job('runner: no data', {
      dataset: OTHER_DATASET,
      hyper: { lr: 0.05, batchSize: 16, H: 2, k: 0, rounds: 2 }
    })
    await assert.rejects(
      runner.join(j.id),
      (err: unknown) =>
        err instanceof JobRequestError &&
        hasCode(err, 'JOB_NO_DATA') &&
        err.fields.dataset === OTHER_DATASET &&
        err.fields.job === j.id
    )
    assert.deepEqual(shardReads, [])
    assert.equal(gossip.subscriptions, 0, 'no trainer started')
    assert.equal(runner.state(j.id), 'known')
    assert.equal(runner.status(j.id, []).state, 'known')
    assert.deepEqual(runner.contributions(), {})
    assert.deepEqual(await db.list('joined'), [])
    assert.deepEqual(issued, [])
    // An announcement of it does not start anything either.
    await runner.announced(j)
    assert.equal(runner.state(j.id), 'known')
    assert.deepEqual(shardReads, [])
  })

  it('pause holds the trainer (held, no round completes) until resume; then the job finishes', async () => {
    const j = await job('runner: pause', { hyper: { lr: 0.05, batchSize: 16, H: 4, k: 0, rounds: 3 } })
    const topic = updatesTopic(SWARM, j.id).topic
    // Paused as round 0 is announced: round 0 completes, round 1 is held before its first step.
    gossip.onPublish = (name, msg) => {
      if (name === topic && (msg as { round: number }).round === 0 && !runner.isPaused) runner.pauseAll()
    }
    const done = finishedOf(j.id)
    await runner.join(j.id)
    await until(() => runner.status(j.id, []).held === true, 'the trainer to hold')
    assert.equal(runner.isPaused, true)
    assert.equal(runner.state(j.id), 'paused')
    const announced = (): Array<Record<string, unknown>> =>
      gossip.published.filter((p) => p.topic === topic).map((p) => p.msg as Record<string, unknown>)
    const before = announced().length
    assert.equal(before, 1, 'round 0 was announced')
    // While paused, the node re-announces its latest model (lingering): time passes, no round.
    await until(() => announced().length > before, 'a re-announcement while paused', 10_000)
    assert.deepEqual(announced().at(-1), announced()[0], 'the same announcement again')
    assert.equal(runner.status(j.id, []).held, true)
    assert.equal(runner.status(j.id, []).round, 0, 'no round completed while paused')
    assert.deepEqual(
      (await checkpointsOf(j.id)).map((c) => c.round),
      [0]
    )
    assert.equal(issued.length, 1)
    assert.deepEqual(finished, [])

    runner.resumeAll()
    assert.equal(runner.isPaused, false)
    assert.equal(runner.state(j.id), 'running')
    await done
    assert.equal(runner.state(j.id), 'done')
    assert.equal(runner.status(j.id, []).held, false)
    assert.deepEqual(
      (await checkpointsOf(j.id)).map((c) => c.round),
      [0, 1, 2]
    )
    assert.deepEqual(
      issued.map((r) => r.round),
      [0, 1, 2]
    )
  })

  it('gives its trainers the config’s fetch deadline (training.fetchTimeoutSeconds)', async () => {
    assert.equal(training.fetchTimeoutSeconds, 10, 'the default')
    training.fetchTimeoutSeconds = 2.5 // the runner reads its config when it starts a trainer
    try {
      const j = await job('runner: fetch deadline', {
        hyper: { lr: 0.05, batchSize: 16, H: 2, k: 0, rounds: 1000 }
      })
      await runner.join(j.id)
      const { runs } = runner as unknown as {
        runs: Map<string, { trainer: { options: { fetchTimeoutMs: number } } }>
      }
      assert.equal(runs.get(j.id)!.trainer.options.fetchTimeoutMs, 2_500)
      await runner.leave(j.id)
    } finally {
      training.fetchTimeoutSeconds = 10
    }
  })

  it('joining twice starts one trainer; leaving a running job stops it (left)', async () => {
    const j = await job('runner: join twice, leave', {
      hyper: { lr: 0.05, batchSize: 16, H: 2, k: 0, rounds: 1000 }
    })
    const [a, b] = await Promise.all([runner.join(j.id), runner.join(j.id)])
    assert.deepEqual(a, { job: j.id, shards: 1 })
    assert.deepEqual(b, a)
    assert.equal(shardReads.length, 1, 'one join prepared the data')
    await until(async () => (await checkpointsOf(j.id)).length > 0, 'a first round')
    const topic = updatesTopic(SWARM, j.id).topic
    assert.equal(gossip.subscriptions, 1, 'one trainer subscribed to the job’s updates')
    assert.equal(gossip.listeners(topic), 1)
    assert.equal(runner.state(j.id), 'running')
    await assert.rejects(
      runner.join(j.id),
      (err: unknown) => err instanceof JobRequestError && hasCode(err, 'JOB_ALREADY_RUNNING')
    )
    assert.equal(shardReads.length, 1)

    // A peer's announcement on the job's topic: its announcer is noted (its fetch dials it).
    const cid = rawCid('a peer model')
    await gossip.deliver(topic, { type: 'update', job: j.id, round: 0, weightsCid: cid, samples: 32 }, PEER)
    assert.deepEqual(announcers, [{ cid, did: PEER }])

    await runner.leave(j.id)
    assert.equal(runner.state(j.id), 'left')
    assert.equal(runner.status(j.id, []).state, 'left')
    assert.equal(gossip.listeners(topic), 0, 'the trainer stopped and unsubscribed')
    assert.equal(await db.get('joined', j.id), undefined)
    assert.deepEqual(await db.get('left', j.id), { id: j.id })
    assert.deepEqual(finished, [], 'a left job is not finished')
    const rounds = issued.length
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(issued.length, rounds, 'no round after leaving')
    assert.equal((runner.contributions()[j.id] as Record<string, unknown>).state, 'left')
    // Announcing it again does not rejoin a job this node left.
    await runner.announced(j)
    assert.equal(runner.state(j.id), 'left')
    assert.equal(shardReads.length, 1)
  })
})
