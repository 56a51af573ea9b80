import assert from 'node:assert/strict'
import { hasCode } from '../../../../src/common/index.js'
import type { GrantInfo } from '../../../../src/storage/grants/index.js'
import { parseJobSpec, type RoundStats, type VerifiedJob } from '../../../../src/training/swarm/index.js'
import type { TensorDataset } from '../../../../src/training/index.js'
import {
  JobRequestError,
  PauseControl,
  PreparedShards,
  grantedShards,
  rollbackPlan
} from '../../../../src/node/jobs/index.js'
import { budgetAllowance } from '../../../../src/node/jobs/budget.js'
import { HISTORY, isolatedRun, recordRound, type JobRun } from '../../../../src/node/jobs/run.js'
import type { CheckpointRecord } from '../../../../src/node/records.js'
import { CREATOR, jobInput } from '../../training/swarm/helpers.js'

const NOW = 1_800_000_000
const grant = (id: string, shards: string[], extra: Partial<GrantInfo> = {}): GrantInfo => ({
  id,
  dataset: 'ds',
  shards,
  grantee: 'did:key:me',
  purpose: 'any',
  iat: NOW - 100,
  owner: 'did:key:owner',
  ...extra
})

describe('node/jobs: granted shards, rollback, budget, run records, pause, prepared shards', () => {
  it('grantedShards: valid grants of the dataset to this DID, each shard once under its first grant', () => {
    const got = grantedShards(
      [
        grant('g1', ['s1', 's2']),
        grant('g2', ['s2', 's3']),
        grant('revoked', ['s4'], { revokedAt: NOW - 10 }),
        grant('expired', ['s5'], { exp: NOW }),
        grant('other-dataset', ['s6'], { dataset: 'other' }),
        grant('other-grantee', ['s7'], { grantee: 'did:key:else' })
      ],
      'ds',
      'did:key:me',
      NOW
    )
    assert.deepEqual(got, [
      { cid: 's1', grant: 'g1' },
      { cid: 's2', grant: 'g1' },
      { cid: 's3', grant: 'g2' }
    ])
  })

  it('rollbackPlan drops what a round ≥ fromRound influenced (directly or through a peer model) and keeps the newest clean one', () => {
    const cp = (cid: string, round: number, maxInputRound = round, job = 'j'): CheckpointRecord => ({
      cid,
      spec: {},
      source: 'job',
      job,
      round,
      maxInputRound,
      lineage: [job],
      createdAt: ''
    })
    const cps = [cp('c0', 0), cp('c1', 1), cp('c2', 2, 3), cp('c3', 3), cp('c4', 4), cp('x3', 3, 3, 'other')]
    const { dropped, target } = rollbackPlan(cps, 'j', 3)
    assert.deepEqual(dropped.map((c) => c.cid).sort(), ['c2', 'c3', 'c4'])
    assert.equal(target?.cid, 'c1', 'c2 aggregated a round-3 peer model: not clean')
    assert.equal(rollbackPlan(cps, 'j', 0).target, undefined, 'back to the initial weights')
  })

  it('budgetAllowance: no budget → every shard, unbounded; a budget and a noiseless job → JOB_PRIVACY_BUDGET', async () => {
    const spec = parseJobSpec({ ...jobInput(), creator: CREATOR.did })
    const shards = [
      { cid: 's1', grant: 'g1' },
      { cid: 's2', grant: 'g2' }
    ]
    const free = await budgetAllowance({ spec, shards, spent: new Map(), budget: async () => undefined })
    assert.deepEqual(free, { shards, rounds: Infinity, refused: [] })
    const mixed = await budgetAllowance({
      spec,
      shards,
      spent: new Map(),
      budget: async (g) => (g === 'g2' ? { epsMax: 1, delta: 1e-5 } : undefined)
    })
    assert.deepEqual(mixed.shards, [shards[0]], 'a noiseless job may not train on budgeted data')
    assert.deepEqual(mixed.refused, ['s2'])
    await assert.rejects(
      budgetAllowance({ spec, shards, spent: new Map(), budget: async () => ({ epsMax: 1, delta: 1e-5 }) }),
      (err: unknown) =>
        err instanceof JobRequestError &&
        hasCode(err, 'JOB_PRIVACY_BUDGET') &&
        /adds no DP noise/.test(err.message)
    )
  })

  it('recordRound keeps a bounded history; isolatedRun says when a k > 0 run never aggregated a peer', () => {
    const spec = parseJobSpec({ ...jobInput(), creator: CREATOR.did })
    const run = { job: { spec } as VerifiedJob, history: [], rejected: [], aggregated: 0 } as Pick<
      JobRun,
      'job' | 'history' | 'rejected' | 'aggregated'
    >
    assert.equal(isolatedRun(run), false, 'no round yet')
    const stats = (round: number, peersUsed: number): RoundStats =>
      ({
        round,
        nextRound: round + 1,
        peersUsed,
        samples: 10,
        peers: [],
        rejected: [{ from: 'did:key:x', reason: 'NON_FINITE' }],
        unavailable: []
      }) as unknown as RoundStats
    for (let r = 0; r < HISTORY + 5; r++) recordRound(run as JobRun, stats(r, 0))
    assert.equal(run.history.length, HISTORY)
    assert.equal(run.history[0]!.round, 5)
    assert.equal(run.history[0]!.rejected, 1)
    assert.equal(run.rejected.length, HISTORY)
    assert.equal(isolatedRun(run), true)
    recordRound(run as JobRun, stats(HISTORY + 5, 2))
    assert.equal(run.aggregated, 2)
    assert.equal(isolatedRun(run), false)
  })

  it('PauseControl: the user’s pause wins over the duty cycle, which alternates active and idle windows', async () => {
    const states: boolean[] = []
    let waiter: { n: number; resolve: () => void } | undefined
    const control: PauseControl = new PauseControl(() => {
      states.push(control.paused)
      if (waiter !== undefined && states.length >= waiter.n) waiter.resolve()
    })
    const changes = async (n: number): Promise<void> =>
      new Promise((resolve) => {
        if (states.length >= n) resolve()
        else waiter = { n, resolve }
      })
    control.pauseUser()
    assert.equal(control.paused, true)
    control.resumeUser()
    assert.equal(control.paused, false)
    control.startDutyCycle(0.5, 20)
    await changes(5) // user pause, resume, then active, idle, active
    assert.deepEqual(states.slice(0, 5), [true, false, false, true, false])
    control.pauseUser()
    await changes(8) // the user's pause, then two more windows: paused through both
    control.stop()
    assert.deepEqual(states.slice(5, 8), [true, true, true])
    const off = new PauseControl(() => assert.fail('a duty cycle of 1 never pauses'))
    off.startDutyCycle(1, 20)
    off.stop()
  })

  it('PreparedShards keeps the most recently used sets and drops them all when a grant ends', async () => {
    const cache = new PreparedShards(2)
    let loads = 0
    const load = async (): Promise<TensorDataset> => {
      loads++
      return { count: loads } as unknown as TensorDataset
    }
    await cache.get('j', ['a'], load)
    await cache.get('j', ['b'], load)
    await cache.get('j', ['a'], load) // hit: a is now the most recent
    await cache.get('j', ['c'], load) // evicts b
    assert.equal(loads, 3)
    await cache.get('j', ['a'], load)
    assert.equal(loads, 3, 'a was kept')
    await cache.get('j', ['b'], load)
    assert.equal(loads, 4, 'b was evicted')
    await cache.get('other-job', ['a'], load)
    assert.equal(loads, 5, 'keyed by job too')
    cache.clear()
    assert.equal(cache.size, 0)
  })
})
