/**
 * job_create gives a gpt job the warm-up + cosine schedule by default (`hyper.schedule`), with
 * the warm-up it is given, or none with `schedule: 'constant'`; a classifier job gets none.
 */
import assert from 'node:assert/strict'
import type { NodeDb } from '../../../../src/node/db.js'
import type { NodeJobs } from '../../../../src/node/jobs/index.js'
import { jobMethods } from '../../../../src/node/methods/index.js'
import type { ContentStore } from '../../../../src/storage/index.js'
import { parseJobSpec } from '../../../../src/training/swarm/index.js'

const DATASET = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const CREATOR = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'

describe('job_create: the learning-rate schedule of a gpt job', () => {
  it('warm-up + cosine by default, the given warm-up, constant on request; none for a classifier', async () => {
    const seen: Array<Record<string, unknown>> = []
    const jobs = { create: async (spec: Record<string, unknown>) => seen.push(spec) } as unknown as NodeJobs
    const m = jobMethods(jobs, {} as ContentStore, {} as NodeDb, {}).find((x) => x.name === 'job_create')!
    const call = async (params: Record<string, unknown>): Promise<unknown> =>
      m.handler(m.params.parse({ name: 'lm', dataset: DATASET, ...params }), {
        signal: new AbortController().signal
      })
    await call({ model: 'gpt' })
    await call({ model: 'gpt', warmup: 30 })
    await call({ model: 'gpt', schedule: 'constant' })
    await call({ model: 'mlp' })
    const hyper = seen.map((s) => parseJobSpec({ ...s, creator: CREATOR }).hyper)
    assert.deepEqual(hyper[0]!.schedule, { type: 'warmup-cosine' })
    assert.deepEqual(hyper[1]!.schedule, { type: 'warmup-cosine', warmupSteps: 30 })
    assert.equal(hyper[2]!.schedule, undefined)
    assert.equal(hyper[3]!.schedule, undefined)
    assert.throws(() => m.params.parse({ name: 'lm', dataset: DATASET, schedule: 'linear' }))
    // A gpt job's open rate and batch are the language model's (AdamW), not a classifier's SGD ones.
    assert.equal(hyper[0]!.lr, 2e-3)
    assert.equal(hyper[0]!.batchSize, 16)
    assert.equal(hyper[3]!.lr, 0.05)
    assert.equal(hyper[3]!.batchSize, 32)
  })
})
