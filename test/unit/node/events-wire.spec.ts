/**
 * Where the node's events come from (`wireNodeEvents`), with the sources faked: records written
 * to the node's db, grant listeners, libp2p peer events, job states, privacy budgets.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { logger } from '../../../src/common/index.js'
import { EventBus, wireNodeEvents, type NodeEvent } from '../../../src/node/events/index.js'
import type { GrantInfo } from '../../../src/storage/index.js'

const ME = 'did:key:z6MkMe'

function fakes() {
  const puts = new Set<(kind: string, key: string, value: unknown) => void>()
  const added = new Set<(g: GrantInfo) => void>()
  const ended = new Set<(g: GrantInfo, how: 'revoked' | 'expired') => void>()
  const peerListeners = new Map<string, Set<(e: { detail: unknown }) => void>>()
  const grants: GrantInfo[] = []
  let epsilon: number | null = 0
  const checks = { done: 0 }
  const jobs: Array<{ id: string; state: string }> = []
  return {
    grants,
    jobs,
    checks,
    setEpsilon: (e: number | null) => (epsilon = e),
    put: (kind: string, value: unknown) => {
      for (const l of puts) l(kind, 'k', value)
    },
    add: (g: GrantInfo) => {
      for (const l of added) l(g)
    },
    end: (g: GrantInfo, how: 'revoked' | 'expired') => {
      for (const l of ended) l(g, how)
    },
    peer: (type: string, detail: unknown) => {
      for (const l of peerListeners.get(type) ?? []) l({ detail })
    },
    peerListenerCount: () => [...peerListeners.values()].reduce((n, s) => n + s.size, 0),
    sources: {
      did: ME,
      db: {
        onPut: (fn: never) => {
          const f = fn as unknown as (kind: string, key: string, value: unknown) => void
          puts.add(f)
          return () => void puts.delete(f)
        }
      },
      datasets: {
        onGrantAdded: (fn: (g: GrantInfo) => void) => (added.add(fn), () => added.delete(fn)),
        onGrantEnded: (fn: (g: GrantInfo, how: 'revoked' | 'expired') => void) => (
          ended.add(fn),
          () => ended.delete(fn)
        ),
        grants: { list: async () => grants }
      },
      peers: {
        events: {
          addEventListener: (t: string, fn: (e: { detail: unknown }) => void) => {
            if (!peerListeners.has(t)) peerListeners.set(t, new Set())
            peerListeners.get(t)!.add(fn)
          },
          removeEventListener: (t: string, fn: (e: { detail: unknown }) => void) =>
            void peerListeners.get(t)?.delete(fn)
        },
        didOf: (p: unknown) => {
          if (String(p) === 'bad') throw new Error('not an Ed25519 peer')
          return `did:key:of-${String(p)}`
        }
      },
      jobs: { list: async () => jobs.map((j) => ({ ...j })) },
      privacy: {
        report: async () => {
          // Answered after the caller awaits: the check's publish follows in the same microtask run.
          setImmediate(() => checks.done++)
          return { epsilon }
        }
      },
      jobPollMs: 20,
      budgetCheckMs: 10,
      log: logger('test')
    }
  }
}

const grant = (id: string, extra: Partial<GrantInfo> = {}): GrantInfo => ({
  id,
  dataset: 'ds',
  shards: ['s1'],
  grantee: 'did:key:z6MkThem',
  purpose: 'any',
  iat: 1,
  owner: ME,
  ...extra
})

async function waitFor(events: NodeEvent[], pred: (e: NodeEvent) => boolean, ms = 5_000): Promise<NodeEvent> {
  const end = Date.now() + ms
  for (;;) {
    const e = events.find(pred)
    if (e !== undefined) return e
    if (Date.now() > end) throw new Error(`no such event among ${events.map((x) => x.topic).join(', ')}`)
    await sleep(5)
  }
}

describe('node events: wireNodeEvents', () => {
  it('turns records, grants, peers and job states into typed events, and unwires', async () => {
    const f = fakes()
    const bus = new EventBus()
    const events: NodeEvent[] = []
    bus.subscribe(
      () => true,
      (e) => events.push(e)
    )
    f.jobs.push({ id: 'j0', state: 'known' }, { id: 'j1', state: 'running' })
    const unwire = wireNodeEvents(bus, f.sources)

    f.put('checkpoints', {
      cid: 'c3',
      source: 'job',
      job: 'j1',
      round: 3,
      loss: 0.4,
      accuracy: 0.9,
      lineage: [],
      spec: {},
      createdAt: ''
    })
    f.put('checkpoints', { cid: 'x', source: 'local', round: 1, lineage: [], spec: {}, createdAt: '' }) // not a job round
    f.put('receipts', { hash: 'h1', jwt: 'j', job: 'j1', round: 3, issuer: ME })
    f.put('audits', {
      receipt: 'h2',
      issuer: 'did:key:z6MkThem',
      job: 'j1',
      round: 2,
      outcome: 'mismatch',
      ms: 1,
      at: ''
    })
    f.put('fraud-proofs', {
      hash: 'p',
      proof: 'jwt',
      offender: 'o',
      verifier: 'v',
      receipt: 'h2',
      job: 'j1',
      round: 2,
      checked: 'reexecution',
      at: ''
    })
    f.put('lineage-offenses', { did: 'o2', receipt: 'h3', reason: 'grant-revoked', at: '' })
    f.put('jobs', { id: 'j2' }) // a kind without an event
    f.add(grant('g1', { grantee: ME, exp: 99 }))
    f.end(grant('g1'), 'expired')
    f.peer('peer:connect', 'QmPeer')
    f.peer('peer:disconnect', 'bad')

    assert.deepEqual(
      events.map((e) => e.topic),
      [
        'round.completed',
        'receipt.accepted',
        'receipt.reexecuted',
        'fraud.proof',
        'fraud.lineage',
        'grant.issued',
        'grant.revoked',
        'peer.joined',
        'peer.left'
      ]
    )
    assert.deepEqual(events[0]!.data, { job: 'j1', round: 3, loss: 0.4, accuracy: 0.9, checkpoint: 'c3' })
    assert.equal((events[1]!.data as { mine: boolean }).mine, true)
    assert.equal((events[2]!.data as { outcome: string; mode: string | null }).outcome, 'mismatch')
    assert.deepEqual(events[5]!.data, {
      grant: 'g1',
      dataset: 'ds',
      grantee: ME,
      owner: ME,
      purpose: 'any',
      exp: 99,
      mine: true
    })
    assert.deepEqual(events[6]!.data, {
      grant: 'g1',
      dataset: 'ds',
      grantee: 'did:key:z6MkThem',
      how: 'expired'
    })
    assert.deepEqual(events[7]!.data, { peerId: 'QmPeer', did: 'did:key:of-QmPeer' })
    assert.deepEqual(events[8]!.data, { peerId: 'bad', did: '' }, 'a peer without a DID is still reported')

    // Job states: the first poll reports running jobs (a merely known one is not a change), then changes.
    const first = await waitFor(events, (e) => e.topic === 'job.state')
    assert.deepEqual(first.data, { job: 'j1', state: 'running', previous: null })
    f.jobs[1]!.state = 'done'
    const done = await waitFor(
      events,
      (e) => e.topic === 'job.state' && (e.data as { state: string }).state === 'done'
    )
    assert.deepEqual(done.data, { job: 'j1', state: 'done', previous: 'running' })
    assert.ok(!events.some((e) => e.topic === 'job.state' && (e.data as { job: string }).job === 'j0'))

    unwire()
    const n = events.length
    f.put('receipts', { hash: 'h9', jwt: 'j', job: 'j1', round: 9, issuer: ME })
    f.add(grant('g9'))
    f.peer('peer:connect', 'QmOther')
    f.jobs[1]!.state = 'left'
    await sleep(60)
    assert.equal(events.length, n, 'nothing after unwire')
    assert.equal(f.peerListenerCount(), 0)
  })

  it('reports a grant’s privacy budget crossing 50 %, 80 % and 100 % once each, after receipts', async () => {
    const f = fakes()
    const bus = new EventBus()
    const crossings: number[] = []
    bus.on('privacy.budget', (e) => crossings.push(e.data.threshold))
    f.grants.push(grant('g1', { privacy: { epsMax: 4, delta: 1e-5 } }), grant('g2')) // g2: no budget
    const unwire = wireNodeEvents(bus, f.sources)
    // Each receipt schedules one (debounced) check of the budgets: wait until it has run.
    const receipt = async (eps: number | null): Promise<void> => {
      f.setEpsilon(eps)
      const before = f.checks.done
      f.put('receipts', { hash: `h${String(eps)}`, jwt: 'j', job: 'j', round: 0, issuer: 'x' })
      while (f.checks.done === before) await sleep(2)
    }
    await receipt(1) // 25 %: nothing
    await receipt(2.1) // 52 %
    await receipt(2.5) // still 62 %: nothing new
    await receipt(3.3) // 82 %
    await receipt(null) // unbounded: 100 %
    await receipt(null)
    assert.deepEqual(crossings, [0.5, 0.8, 1])
    unwire()
  })
})
