/**
 * job_create fills in what the caller left out: the policy for unverifiable rounds comes from the
 * node's `receipts.unverifiable`, written into the job only when it differs from the protocol's
 * default (so jobs that do not care keep the same document and id).
 */
import assert from 'node:assert/strict'
import type { NodeDb } from '../../../../src/node/db.js'
import type { NodeJobs } from '../../../../src/node/jobs/index.js'
import { jobMethods } from '../../../../src/node/methods/index.js'
import type { ContentStore } from '../../../../src/storage/index.js'
import { DPSGD_DEFAULTS } from '../../../../src/training/index.js'

function create(
  defaults: Parameters<typeof jobMethods>[3]
): (params: Record<string, unknown>) => Promise<unknown[]> {
  const seen: unknown[] = []
  const jobs = { create: async (spec: unknown) => seen.push(spec) } as unknown as NodeJobs
  const m = jobMethods(jobs, {} as ContentStore, {} as NodeDb, defaults).find((x) => x.name === 'job_create')!
  return async (params) => {
    await m.handler(m.params.parse(params), { signal: new AbortController().signal })
    return seen
  }
}

describe('node/methods: job_create defaults', () => {
  const params = { name: 'j', dataset: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }

  it('takes the unverifiable policy from the node unless the caller gives one', async () => {
    const [spec] = (await create({ unverifiable: 'credit' })(params)) as Array<{ unverifiable?: string }>
    assert.equal(spec!.unverifiable, 'credit')
    const [given] = (await create({ unverifiable: 'credit' })({
      ...params,
      unverifiable: 'exclude'
    })) as Array<{
      unverifiable?: string
    }>
    assert.equal(given!.unverifiable, 'exclude')
  })

  it('leaves the default (no-credit) out of the job document', async () => {
    for (const defaults of [{ unverifiable: 'no-credit' as const }, {}]) {
      const [spec] = (await create(defaults)(params)) as Array<Record<string, unknown>>
      assert.ok(!('unverifiable' in spec!), JSON.stringify(spec))
    }
    assert.throws(() =>
      jobMethods({} as NodeJobs, {} as ContentStore, {} as NodeDb)[0]!.params.parse({
        ...params,
        unverifiable: 'maybe'
      })
    )
  })
  it('fills a DP-SGD job’s open lr, batch and H with the tuned DP-SGD settings, and no one else’s', async () => {
    const privacy = { mode: 'dp-sgd', clipNorm: 1, targetEpsilon: 3, delta: 1e-5 }
    type Spec = { hyper: { lr: number; batchSize: number; H: number } }
    const [dp] = (await create({})({ ...params, privacy })) as Spec[]
    assert.deepEqual(
      { lr: dp!.hyper.lr, batchSize: dp!.hyper.batchSize, H: dp!.hyper.H },
      { lr: DPSGD_DEFAULTS.lr, batchSize: DPSGD_DEFAULTS.batchSize, H: DPSGD_DEFAULTS.H }
    )
    const [given] = (await create({})({ ...params, privacy, lr: 0.01, H: 5 })) as Spec[]
    assert.deepEqual(
      [given!.hyper.lr, given!.hyper.batchSize, given!.hyper.H],
      [0.01, DPSGD_DEFAULTS.batchSize, 5]
    )
    const [plain] = (await create({})(params)) as Spec[]
    assert.deepEqual([plain!.hyper.lr, plain!.hyper.batchSize, plain!.hyper.H], [0.05, 32, 50])
  })
})
