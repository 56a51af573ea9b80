/**
 * Faulty peers: models that must be rejected, a peer whose model never arrives, a node that
 * stalls. The honest nodes go on in every case.
 */
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { Rng } from '../../../../src/common/rng.js'
import { encodeCompressed } from '../../../../src/training/aggregate/index.js'
import { compileModel, initParams } from '../../../../src/training/graph/index.js'
import {
  MemoryHub,
  MemoryWeightStore,
  type RejectReason,
  type RoundStats,
  type SwarmTrainer,
  type WeightStore
} from '../../../../src/training/swarm/index.js'
import { identityOf, makeNode, testJob, swarmSuite } from './helpers.js'

const JOB = 'job-test'

/** Announces, for each round an honest node announces, a model of its own from `cidFor(round)`. */
function shadowPeer(hub: MemoryHub, did: string, cidFor: (round: number) => string): void {
  const seen = new Set<number>()
  hub.bus(did).subscribe((msg) => {
    if (seen.has(msg.round)) return
    seen.add(msg.round)
    void hub.publish(did, {
      type: 'update',
      job: JOB,
      round: msg.round,
      weightsCid: cidFor(msg.round),
      samples: 1000
    })
  })
}

/**
 * A store whose `get` answers `delayMs` late for some CIDs — never, for Infinity — ignoring its
 * signal, as a peer that stalls mid-transfer does.
 */
class SlowStore implements WeightStore {
  constructor(
    private readonly inner: MemoryWeightStore,
    private readonly slow: Set<string>,
    private readonly delayMs: number
  ) {}

  async put(bytes: Uint8Array, signal?: AbortSignal): Promise<string> {
    return this.inner.put(bytes, signal)
  }

  async get(cid: string, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.slow.has(cid)) {
      if (!Number.isFinite(this.delayMs)) return new Promise<Uint8Array>(() => {})
      await new Promise((r) => setTimeout(r, this.delayMs))
    }
    return this.inner.get(cid, signal)
  }
}

describe('swarm: faulty peers', function () {
  this.timeout(120_000)
  const suite = swarmSuite(3, { trainCount: 600, testCount: 300 })
  const nodes = suite.nodes

  it('rejects wrong shapes, NaN, huge norms and garbage with their reason; the others go on', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 3, rounds: 5 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const compiled = compileModel(job.model, job.optimizer)
    const init = initParams(compiled, job.seed)
    const copy = (): Map<string, Float32Array> => new Map([...init].map(([n, t]) => [n, t.slice()]))
    const [first, last] = [compiled.params[0]!.name, compiled.params[compiled.params.length - 1]!.name]
    const shapes = copy()
    shapes.set(first, shapes.get(first)!.subarray(0, 100))
    const nan = copy()
    nan.get(last)![3] = NaN
    const huge = copy()
    for (const t of huge.values()) t.fill(1)
    const garbage = new Uint8Array(4096)
    const rng = new Rng(5)
    for (let i = 0; i < garbage.length; i++) garbage[i] = rng.int(256)
    const bad: Array<[RejectReason, Uint8Array]> = [
      ['UPDATE_SHAPE_MISMATCH', encodeCompressed(shapes, 'none')],
      ['UPDATE_NON_FINITE', encodeCompressed(nan, 'none')],
      ['UPDATE_NORM_EXCEEDED', encodeCompressed(huge, 'int8', compiled.params)],
      ['UPDATE_DECODE_FAILED', garbage]
    ]
    const cids = await Promise.all(bad.map(async ([, bytes]) => store.put(bytes)))
    const adversary = identityOf(99).did
    shadowPeer(hub, adversary, (round) => cids[round % cids.length]!)

    const stats: RoundStats[][] = [[], [], []]
    const honest = suite.task.shards.map((shard, i) => {
      const did = identityOf(i + 1).did
      return makeNode({ bus: hub.bus(did), store, train: shard, test: suite.task.test }, { job, did })
    })
    nodes.push(...honest)
    const results = await Promise.all(
      honest.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) }))
    )

    for (let i = 0; i < honest.length; i++) {
      assert.equal(results[i]!.stopped, 'done')
      assert.equal(stats[i]!.length, 5)
      for (const s of stats[i]!) {
        const expected = bad[s.round % bad.length]![0]
        assert.equal(s.rejected.length, 1, `round ${s.round}: ${JSON.stringify(s.rejected)}`)
        assert.equal(s.rejected[0]!.from, adversary)
        assert.equal(s.rejected[0]!.reason, expected)
        assert.ok(s.rejected[0]!.detail.length > 0)
        assert.equal(s.peersUsed, 2, 'both honest peers are still used')
        assert.ok(!s.peers.some((p) => p.from === adversary))
      }
      const counters = honest[i]!.counters
      assert.equal(counters.rejected.UPDATE_SHAPE_MISMATCH, 2)
      assert.equal(counters.rejected.UPDATE_NON_FINITE, 1)
      assert.equal(counters.rejected.UPDATE_NORM_EXCEEDED, 1)
      assert.equal(counters.rejected.UPDATE_DECODE_FAILED, 1)
      assert.ok(results[i]!.accuracy! > 0.6, `accuracy ${results[i]!.accuracy}`)
    }
  })

  it('a peer whose model never arrives delays a round by at most fetchTimeoutMs', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 3 } })
    const hub = new MemoryHub()
    const inner = new MemoryWeightStore()
    const compiled = compileModel(job.model, job.optimizer)
    const hang = new Set<string>()
    const slowCids: string[] = []
    for (let r = 0; r < 3; r++) {
      const w = initParams(compiled, 100 + r)
      const cid = await inner.put(encodeCompressed(w, 'none', compiled.params))
      slowCids.push(cid)
      hang.add(cid)
    }
    const slow = identityOf(77).did
    shadowPeer(hub, slow, (round) => slowCids[round]!)
    const store = new SlowStore(inner, hang, Infinity)
    const fetchTimeoutMs = 400
    const stats: RoundStats[][] = [[], []]
    const honest = suite.task.shards.slice(0, 2).map((shard, i) => {
      const did = identityOf(i + 1).did
      return makeNode(
        { bus: hub.bus(did), store, train: shard },
        { job, did, fetchTimeoutMs, peerWaitMs: 1_000 }
      )
    })
    nodes.push(...honest)
    const t0 = performance.now()
    await Promise.all(honest.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))
    const elapsed = performance.now() - t0
    for (const list of stats) {
      assert.equal(list.length, 3)
      for (const s of list) {
        assert.deepEqual(
          s.unavailable.map((u) => [u.from, u.reason]),
          [[slow, 'FETCH_TIMEOUT']]
        )
        assert.equal(s.peersUsed, 1, 'the honest peer is used')
        assert.ok(
          s.netMs >= fetchTimeoutMs - 5,
          `round ${s.round} did not wait for the fetch (${s.netMs} ms)`
        )
        assert.ok(
          s.netMs < fetchTimeoutMs + 1_000 + 1_000,
          `round ${s.round} took ${s.netMs} ms in the network`
        )
      }
    }
    assert.ok(elapsed < 20_000, `3 rounds took ${elapsed} ms`)
    assert.equal(honest[0]!.counters.unavailable, 3)
  })

  it('a model slower than the fetch deadline misses every round but the last, whose deadline is LAST_ROUND_FETCH_FACTOR times longer', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 1, rounds: 3 } })
    const hub = new MemoryHub()
    const inner = new MemoryWeightStore()
    const compiled = compileModel(job.model, job.optimizer)
    const cids: string[] = []
    for (let r = 0; r < 3; r++)
      cids.push(await inner.put(encodeCompressed(initParams(compiled, 200 + r), 'none', compiled.params)))
    const slow = identityOf(78).did
    shadowPeer(hub, slow, (round) => cids[round]!)
    const fetchTimeoutMs = 300
    // The peer's model arrives 2 deadlines after it is asked for: within the last round's 3.
    const store = new SlowStore(inner, new Set(cids), 2 * fetchTimeoutMs)
    const did = identityOf(1).did
    const node = makeNode(
      { bus: hub.bus(did), store, train: suite.task.shards[0]! },
      { job, did, fetchTimeoutMs, peerWaitMs: 1_000 }
    )
    nodes.push(node)
    const stats: RoundStats[] = []
    await node.run({ onRound: (s) => void stats.push(s) })
    assert.deepEqual(
      stats.map((s) => [s.round, s.peersUsed, s.unavailable.map((u) => u.reason)]),
      [
        [0, 0, ['FETCH_TIMEOUT']],
        [1, 0, ['FETCH_TIMEOUT']],
        [2, 1, []]
      ]
    )
  })

  it('a stalled node does not hold the others back, and catches up when it resumes', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 6 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const stats: RoundStats[][] = [[], [], []]
    const trio = suite.task.shards.map((shard, i) => {
      const did = identityOf(i + 1).did
      return makeNode(
        { bus: hub.bus(did), store, train: shard, test: suite.task.test },
        { job, did, peerWaitMs: 300 }
      )
    })
    nodes.push(...trio)
    const [a, b, c] = trio as [SwarmTrainer, SwarmTrainer, SwarmTrainer]
    c.pause()
    const stalled = c.run({ onRound: (s) => void stats[2]!.push(s) })
    const t0 = performance.now()
    await Promise.all([a, b].map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))
    const elapsed = performance.now() - t0
    assert.ok(c.isPaused)
    assert.equal(stats[2]!.length, 0, 'the paused node trained nothing')
    assert.equal(c.round, 0)
    assert.ok(elapsed < 20_000, `the others took ${elapsed} ms`)
    for (const s of [...stats[0]!, ...stats[1]!]) assert.equal(s.peersUsed, 1)

    c.resume()
    const result = await stalled
    assert.equal(result.stopped, 'done')
    // Its one round took in the others' final models (round 5), and it caught up with them.
    assert.deepEqual(
      stats[2]!.map((s) => [s.round, s.nextRound]),
      [[0, 6]]
    )
    assert.equal(result.nextRound, 6)
    const peers = stats[2]![0]!.peers
    assert.equal(peers.length, 2)
    for (const p of peers) assert.equal(p.round, 5)
    const others = stats[0]![stats[0]!.length - 1]!.accuracy!
    console.log(
      `      accuracy: the others ${others.toFixed(3)}, the stalled node after catching up ${result.accuracy!.toFixed(3)}`
    )
    assert.ok(result.accuracy! > others - 0.1, `accuracy after catching up ${result.accuracy} vs ${others}`)
  })
})

describe('swarm: a pause from a round', function () {
  this.timeout(60_000)
  const suite = swarmSuite(1, { trainCount: 300, testCount: 100 })

  /** Resolves once `node` holds (paused and waiting before a step). */
  async function held(node: SwarmTrainer): Promise<void> {
    while (!node.isHeld) await new Promise((resolve) => setImmediate(resolve))
  }

  it('trains the rounds before it, holds before it, and a new pause moves the round', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 3, k: 0, rounds: 7 } })
    const did = identityOf(1).did
    const hub = new MemoryHub()
    const node = makeNode(
      {
        bus: hub.bus(did),
        store: new MemoryWeightStore(),
        train: suite.task.shards[0]!,
        test: suite.task.test
      },
      { job, did }
    )
    suite.nodes.push(node)
    const rounds: number[] = []
    node.pause({ fromRound: 3 })
    assert.ok(node.isPaused)
    const run = node.run({ onRound: (s) => void rounds.push(s.round) })
    await held(node)
    assert.deepEqual(rounds, [0, 1, 2], 'rounds 0–2 trained, held before round 3')
    node.pause({ fromRound: 5 })
    await new Promise((resolve) => setImmediate(resolve))
    await held(node)
    assert.deepEqual(rounds, [0, 1, 2, 3, 4], 'moved on to round 5')
    node.resume()
    assert.equal((await run).stopped, 'done')
    assert.deepEqual(rounds, [0, 1, 2, 3, 4, 5, 6])
    assert.equal(node.isHeld, false)
  })
})
