import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hasCode, logger } from '../../../../src/common/index.js'
import { swarmTopics, type JobMessage, type TopicSpec } from '../../../../src/p2p/index.js'
import { createJob, jobAnnouncement } from '../../../../src/training/swarm/index.js'
import { NodeDb } from '../../../../src/node/db.js'
import { JobCatalog, JobRequestError } from '../../../../src/node/jobs/index.js'
import type { VerifiedJob } from '../../../../src/training/swarm/index.js'
import { CREATOR, identityOf, jobInput } from '../../training/swarm/helpers.js'

/** Gossip on one topic, by hand: `deliver` calls the subscriber, `published` keeps what was sent. */
class FakeJobsGossip {
  handler: ((msg: JobMessage) => void) | undefined
  readonly published: JobMessage[] = []
  async publish(_topic: TopicSpec<JobMessage>, msg: JobMessage): Promise<void> {
    this.published.push(msg)
  }
  subscribe(_topic: TopicSpec<JobMessage>, handler: (msg: JobMessage) => void): () => void {
    this.handler = handler
    return () => {
      this.handler = undefined
    }
  }
}

describe('node/jobs: the job catalog', () => {
  let dir: string
  let db: NodeDb
  let gossip: FakeJobsGossip
  let catalog: JobCatalog
  const topic = swarmTopics('swarm-1').jobs
  const models = new Map<string, Uint8Array>()

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-catalog-'))
    db = new NodeDb(join(dir, 'db'))
    await db.start()
    gossip = new FakeJobsGossip()
    catalog = new JobCatalog({
      identity: CREATOR,
      db,
      gossip,
      log: logger('test:catalog'),
      models: {
        get: async (cid) => models.get(cid) ?? Promise.reject(new Error(`no ${cid}`)),
        put: async (bytes) => {
          const cid = `model-${models.size}`
          models.set(cid, bytes)
          return cid
        }
      }
    })
  })

  afterEach(async () => {
    catalog.detach()
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates a signed job, records it, and announces it once attached to a swarm', async () => {
    const quiet = await catalog.create(jobInput({ name: 'before attaching' }))
    assert.equal(gossip.published.length, 0, 'no swarm, no announcement')
    catalog.attach(topic, async () => {})
    const rec = await catalog.create(jobInput({ name: 'attached' }))
    assert.equal(rec.creator, CREATOR.did)
    assert.equal(rec.name, 'attached')
    assert.deepEqual(gossip.published, [jobAnnouncement(rec)])
    assert.deepEqual((await catalog.list()).map((j) => j.id).sort(), [quiet.id, rec.id].sort())
    assert.equal((await catalog.spec(rec.id))?.name, 'attached')
    assert.equal((await catalog.verified(rec.id)).id, rec.id)
    assert.equal(await catalog.spec('bafkreiunknown'), undefined)
    await assert.rejects(
      catalog.require('bafkreiunknown'),
      (err: unknown) => err instanceof JobRequestError && hasCode(err, 'JOB_NOT_FOUND')
    )
  })

  it('records and hands on verified announcements; refuses forged ones and keeps listening', async () => {
    const seen: VerifiedJob[] = []
    const onJob = async (job: VerifiedJob): Promise<void> => {
      seen.push(job)
    }
    const other = await createJob(
      identityOf(7),
      jobInput({ creator: identityOf(7).did, name: 'from a peer' })
    )
    const forged = { ...jobAnnouncement(other), jwt: `${other.jwt.slice(0, -4)}AAAA` }
    await assert.rejects(catalog.receive(forged, onJob), (err: unknown) => hasCode(err, 'JOB_INVALID'))
    assert.deepEqual(seen, [])
    assert.deepEqual(await catalog.list(), [], 'a refused announcement is not recorded')
    // Through the topic: the listener survives a refused message and hands on the next one.
    const arrived = new Promise<VerifiedJob>((resolve) => catalog.attach(topic, async (job) => resolve(job)))
    gossip.handler!(forged)
    gossip.handler!(jobAnnouncement(other))
    assert.equal((await arrived).id, other.id)
    assert.equal((await catalog.get(other.id))?.name, 'from a peer')
  })

  it('refuses an init that is not a checkpoint of this node with the job’s model', async () => {
    await assert.rejects(
      catalog.create(jobInput({ init: 'bafkreinotacheckpoint' })),
      (err: unknown) =>
        err instanceof JobRequestError &&
        hasCode(err, 'JOB_INIT_INVALID') &&
        /not a checkpoint/.test(err.message)
    )
    assert.deepEqual(await catalog.list(), [], 'nothing recorded')
  })
})
