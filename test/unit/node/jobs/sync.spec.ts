/**
 * Jobs by anti-entropy (src/node/jobs/sync.ts): two real job catalogs, one that heard of jobs
 * and one that missed their announcements; the items of one bring the other to the union, each
 * through the announcement path (verified, recorded, handed on), and nothing else gets in.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '../../../../src/common/index.js'
import type { ItemSource, JobMessage, TopicSpec } from '../../../../src/p2p/index.js'
import { createJob, verifyJob, type VerifiedJob } from '../../../../src/training/swarm/index.js'
import { NodeDb } from '../../../../src/node/db.js'
import { JobCatalog, jobSyncSource } from '../../../../src/node/jobs/index.js'
import { CREATOR, identityOf, jobInput } from '../../training/swarm/helpers.js'

const noGossip = {
  publish: async (_t: TopicSpec<JobMessage>, _m: JobMessage): Promise<void> => {},
  subscribe: (_t: TopicSpec<JobMessage>, _h: (m: JobMessage) => void) => () => {}
}

describe('node/jobs: jobs by anti-entropy', () => {
  let dir: string
  const dbs: NodeDb[] = []
  const from = peerIdFromString(identityOf(9).libp2pPrivateKey.publicKey.toString())

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-job-sync-'))
  })
  after(async () => {
    for (const db of dbs) await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  async function node(
    name: string
  ): Promise<{ catalog: JobCatalog; source: ItemSource; handed: VerifiedJob[] }> {
    const db = new NodeDb(join(dir, name))
    await db.start()
    dbs.push(db)
    const catalog = new JobCatalog({
      identity: CREATOR,
      db,
      gossip: noGossip,
      log: logger('test:job-sync'),
      models: { get: async () => new Uint8Array(), put: async () => 'unused' }
    })
    const handed: VerifiedJob[] = []
    const source = jobSyncSource({
      list: async () => catalog.list(),
      receive: async (msg) =>
        catalog.receive(msg, async (job) => {
          handed.push(job)
        }),
      log: logger('test:job-sync')
    })
    return { catalog, source, handed }
  }

  it('a node that missed two announcements takes them in; duplicates and forgeries are not counted', async () => {
    const a = await node('a')
    const b = await node('b')
    const other = identityOf(77)
    const jobs = [
      await createJob(CREATOR, jobInput({ name: 'one' })),
      await createJob(CREATOR, jobInput({ name: 'two' })),
      await createJob(other, { ...jobInput({ name: 'three' }), creator: other.did })
    ]
    for (const j of jobs) await a.catalog.record(await verifyJob(j.jwt))
    await b.catalog.record(await verifyJob(jobs[0]!.jwt))

    // Grouped by creator: one group differs (CREATOR: 2 vs 1 jobs), one is missing on b.
    const da = await a.source.digests()
    const db = await b.source.digests()
    assert.deepEqual([...da.keys()].sort(), [CREATOR.did, other.did].sort())
    assert.notDeepEqual(da.get(CREATOR.did), db.get(CREATOR.did))
    assert.equal(db.get(other.did), undefined)

    const items = await a.source.get([
      ...(await a.source.ids(CREATOR.did)),
      ...(await a.source.ids(other.did))
    ])
    assert.equal(items.length, 3)
    for (const jwt of items) assert.equal(a.source.idOf!(jwt), jobs.find((j) => j.jwt === jwt)!.id)
    // A forged job (a signature that does not verify) and a non-JWT are refused, not counted.
    const [h, p] = jobs[1]!.jwt.split('.') as [string, string, string]
    const forged = `${h}.${p}.${'A'.repeat(86)}`
    assert.equal(await b.source.accept([...items, forged, 'not a job'], from), 2)
    assert.deepEqual(
      b.handed.map((j) => j.id).sort(),
      [jobs[1]!.id, jobs[2]!.id].sort(),
      'each new job handed to the runner as an announcement would be'
    )
    assert.deepEqual(await b.source.digests(), await a.source.digests())
    // Again: nothing new.
    assert.equal(await b.source.accept(items, from), 0)
  })
})
