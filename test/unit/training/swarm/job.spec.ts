/** Jobs: signed by their creator, verified offline, with content-addressed ids. */
import assert from 'node:assert/strict'
import { hasCode } from '../../../../src/common/index.js'
import { MODELS } from '../../../../src/training/graph/index.js'
import {
  createJob,
  JobError,
  jobAnnouncement,
  jobIdOf,
  parseJobSpec,
  rawCid,
  updatesTopic,
  UpdateAnnouncementSchema,
  verifyJob,
  verifyJobAnnouncement,
  type JobInvalidReason
} from '../../../../src/training/swarm/index.js'
import { CREATOR, identityOf, jobInput } from './helpers.js'

function refused(reason: JobInvalidReason): (err: unknown) => boolean {
  return (err: unknown) => err instanceof JobError && hasCode(err, 'JOB_INVALID') && err.reason === reason
}

/** The JWT with its payload replaced by `edit(payload)` (the signature left as it was). */
function tamper(jwt: string, edit: (payload: Record<string, unknown>) => void): string {
  const [h, p, s] = jwt.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
  edit(payload)
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
}

describe('swarm: jobs', () => {
  it('signs and verifies a job; the id is the CID of the JWT and stable for it', async () => {
    const job = await createJob(CREATOR, jobInput())
    assert.equal(job.spec.creator, CREATOR.did)
    assert.match(job.id, /^bafkrei[a-z2-7]{52}$/)
    assert.equal(job.id, jobIdOf(job.jwt))
    assert.equal(job.id, rawCid(new TextEncoder().encode(job.jwt)), 'the id is the raw CID of the JWT bytes')
    const verified = await verifyJob(job.jwt, { expectedId: job.id, expectedCreator: CREATOR.did })
    assert.equal(verified.id, job.id)
    assert.deepEqual(verified.spec, job.spec)
    assert.deepEqual(verified.spec.model, MODELS.mlp)
    assert.ok(verified.iat > 0)
    assert.equal((await verifyJob(job.jwt)).id, job.id, 'the same JWT always has the same id')
    // The id fits a topic name.
    assert.ok(updatesTopic('swarm-1', job.id).topic.endsWith(`/job/${job.id}/updates`))
  })

  it('refuses a tampered job, a wrong id, a wrong creator and a foreign document', async () => {
    const job = await createJob(CREATOR, jobInput())
    const changed = tamper(job.jwt, (p) => {
      ;(p.job as { hyper: { lr: number } }).hyper.lr = 5
    })
    await assert.rejects(verifyJob(changed), refused('signature'))
    assert.notEqual(jobIdOf(changed), job.id)
    await assert.rejects(verifyJob(job.jwt, { expectedId: jobIdOf(changed) }), refused('id'))
    await assert.rejects(verifyJob(job.jwt, { expectedCreator: identityOf(3).did }), refused('creator'))
    await assert.rejects(verifyJob('not a jwt'), refused('malformed'))
    await assert.rejects(verifyJob(`${job.jwt}x`.repeat(1_000)), refused('malformed'))
    const other = await CREATOR.signJwt({ kind: 'receipt', job: job.spec })
    await assert.rejects(verifyJob(other), refused('kind'))
    // Signed by someone else than the creator it names.
    const impostor = identityOf(4)
    const forged = await impostor.signJwt({ kind: 'shoal-job', v: 1, job: job.spec })
    await assert.rejects(verifyJob(forged), refused('creator'))
    // A validly signed document whose spec breaks the schema.
    const broken = await CREATOR.signJwt({ kind: 'shoal-job', v: 1, job: { ...job.spec, maxNorm: -1 } })
    await assert.rejects(verifyJob(broken), refused('schema'))
  })

  it('checks the spec: model, optimizer, hyper-parameters, creator', async () => {
    await assert.rejects(createJob(CREATOR, jobInput({ creator: identityOf(5).did })), refused('creator'))
    const bad: Array<[string, Record<string, unknown>]> = [
      ['model', { model: { ...MODELS.mlp, classes: 1 } }],
      ['model', { model: { ...MODELS.mlp, layers: [{ type: 'dense', units: 7 }] } }],
      ['optimizer', { optimizer: { type: 'rmsprop' } }],
      ['hyper.H', { hyper: { lr: 0.1, batchSize: 32, H: 0, k: 1 } }],
      ['hyper.lr', { hyper: { lr: -1, batchSize: 32, H: 1, k: 1 } }],
      ['aggregation', { aggregation: 'max' }],
      ['compression', { compression: 'top-k' }],
      ['dataset', { dataset: 'not a cid!' }],
      ['privacy.clipNorm', { privacy: { clipNorm: 0, noiseMultiplier: 1 } }],
      ['seed', { seed: -1 }],
      ['extra', { extra: true }]
    ]
    for (const [path, change] of bad) {
      await assert.rejects(
        createJob(CREATOR, { ...jobInput(), ...change } as Parameters<typeof createJob>[1]),
        (err: unknown) =>
          refused('schema')(err) && (err as JobError).fields.path === (path === 'extra' ? '' : path),
        path
      )
    }
    const spec = parseJobSpec({
      ...jobInput({ privacy: { clipNorm: 1, noiseMultiplier: 1.1 } }),
      creator: CREATOR.did
    })
    assert.deepEqual(spec.privacy, { clipNorm: 1, noiseMultiplier: 1.1 })
  })

  it('two signings of one spec are two jobs', async () => {
    const a = await createJob(CREATOR, jobInput())
    await new Promise((r) => setTimeout(r, 1_100)) // iat has a resolution of one second
    const b = await createJob(CREATOR, jobInput())
    assert.notEqual(a.id, b.id)
    assert.deepEqual(a.spec, b.spec)
  })

  it('job announcements carry the JWT and are checked against their id', async () => {
    const job = await createJob(CREATOR, jobInput())
    const msg = jobAnnouncement(job)
    assert.deepEqual(msg, { type: 'job', jobId: job.id, jwt: job.jwt })
    assert.equal((await verifyJobAnnouncement(msg)).id, job.id)
    const other = await createJob(identityOf(6), jobInput())
    await assert.rejects(verifyJobAnnouncement({ ...msg, jwt: other.jwt }), refused('id'))
    await assert.rejects(verifyJobAnnouncement({ type: 'job', jobId: job.id }), refused('schema'))
  })

  it('update announcements: the p2p fields plus samples and loss', () => {
    const ok = {
      type: 'update',
      job: 'job-1',
      round: 3,
      weightsCid: rawCid(Uint8Array.of(1)),
      samples: 320,
      loss: 0.5
    }
    assert.ok(UpdateAnnouncementSchema.safeParse(ok).success)
    assert.ok(UpdateAnnouncementSchema.safeParse({ ...ok, loss: undefined }).success)
    assert.ok(!UpdateAnnouncementSchema.safeParse({ ...ok, samples: -1 }).success)
    assert.ok(!UpdateAnnouncementSchema.safeParse({ ...ok, round: 1.5 }).success)
    assert.ok(!UpdateAnnouncementSchema.safeParse({ ...ok, loss: Infinity }).success)
    assert.ok(!UpdateAnnouncementSchema.safeParse({ ...ok, weightsCid: 'x' }).success)
  })
})
