/** Restarts and late joiners: where a node starts from, and that it catches up with the swarm. */
import assert from 'node:assert/strict'
import { compileModel, initParams } from '../../../../src/training/graph/index.js'
import {
  MemoryCheckpointStore,
  type Checkpoint,
  MemoryHub,
  MemoryWeightStore,
  type RoundStats,
  type SwarmTrainer
} from '../../../../src/training/swarm/index.js'
import { distance, identityOf, makeNode, testJob, swarmSuite } from './helpers.js'

describe('swarm: restarts and late joiners', function () {
  this.timeout(120_000)
  const suite = swarmSuite(3, { trainCount: 600, testCount: 300 })
  const nodes = suite.nodes

  it('a restarted node resumes from its checkpoint round, not round 0, and catches up', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 8 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const dids = [1, 2, 3].map((i) => identityOf(i).did)
    const checkpoints = dids.map(() => new MemoryCheckpointStore())
    const make = (i: number): SwarmTrainer => {
      const node = makeNode(
        {
          bus: hub.bus(dids[i]!),
          store,
          checkpoints: checkpoints[i]!,
          train: suite.task.shards[i]!,
          test: suite.task.test
        },
        { job, did: dids[i]!, peerWaitMs: 500 }
      )
      nodes.push(node)
      return node
    }
    const [a, b, c] = [make(0), make(1), make(2)]
    const stop = new AbortController()
    const before: RoundStats[] = []
    const others = Promise.all([a.run(), b.run()])
    const first = await c.run({
      signal: stop.signal,
      onRound: (s) => {
        before.push(s)
        if (s.round === 2) stop.abort()
      }
    })
    assert.equal(first.stopped, 'aborted')
    assert.equal(first.nextRound, 3)
    await c.stop()
    assert.equal((await checkpoints[2]!.latest('job-test'))?.round, 2)

    // A new process for the same node: same identity, same store and checkpoints.
    const again = make(2)
    const after: RoundStats[] = []
    const second = await again.run({ onRound: (s) => void after.push(s) })
    assert.deepEqual(again.startedFrom, { source: 'checkpoint', round: 3 })
    assert.equal(second.stopped, 'done')
    assert.equal(second.nextRound, 8)
    assert.equal(after[0]!.round, 3, 'resumed at the round after its checkpoint')
    assert.ok(after.every((s) => s.round >= 3))
    // It caught up: its first round took in the others' newer models.
    assert.ok(after[0]!.peersUsed >= 1)
    await others

    const init = initParams(compileModel(job.model, job.optimizer), job.seed)
    const [wa, wc] = [a.weights()!, again.weights()!]
    const apart = distance(wa, wc)
    const moved = distance(wa, init)
    console.log(
      `      resumed at 3, rounds ${after.map((s) => s.round).join(',')}; accuracy ${second.accuracy?.toFixed(3)}; ` +
        `distance to a peer ${apart.toFixed(3)} (moved ${moved.toFixed(3)})`
    )
    assert.ok(second.accuracy! > 0.6, `accuracy ${second.accuracy}`)
    assert.ok(apart < 0.5 * moved, 'the restarted node is far from its peers')
    assert.equal(before.length, 3)
  })

  it('a late joiner starts from the newest announced peer models that validate', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 12 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const dids = [1, 2, 3].map((i) => identityOf(i).did)
    const make = (i: number, joinWaitMs = 0): SwarmTrainer => {
      const node = makeNode(
        { bus: hub.bus(dids[i]!), store, train: suite.task.shards[i]!, test: suite.task.test },
        { job, did: dids[i]!, peerWaitMs: 300, joinWaitMs }
      )
      nodes.push(node)
      return node
    }
    const [a, b] = [make(0), make(1)]
    let joiner:
      | Promise<{ node: SwarmTrainer; stats: RoundStats[]; result: Awaited<ReturnType<SwarmTrainer['run']>> }>
      | undefined
    const early = Promise.all([
      a.run({
        onRound: (s) => {
          if (s.round === 2 && joiner === undefined) {
            joiner = (async () => {
              const node = make(2, 5_000)
              const stats: RoundStats[] = []
              const result = await node.run({ onRound: (x) => void stats.push(x) })
              return { node, stats, result }
            })()
          }
        }
      }),
      b.run()
    ])
    await early
    const { node, stats, result } = await joiner!
    const start = node.startedFrom!
    assert.equal(start.source, 'peers')
    assert.ok(start.round >= 3, `joined at round ${start.round}`)
    assert.ok(start.peers!.length >= 1)
    assert.equal(Math.max(...start.peers!.map((p) => p.round)), start.round - 1)
    assert.equal(result.stopped, 'done')
    if (stats.length > 0) assert.equal(stats[0]!.round, start.round)
    console.log(
      `      joined at round ${start.round} from ${start.peers!.length} peer(s); accuracy ${result.accuracy?.toFixed(3)}`
    )
  })

  it('a restarted node of a job with an outer optimizer goes on with its momentum: bit for bit the uninterrupted run', async () => {
    const job = testJob({
      hyper: { lr: 0.05, batchSize: 32, H: 3, k: 1, rounds: 4 },
      outer: { lr: 0.7, momentum: 0.9 }
    })
    const did = identityOf(1).did
    const alone = (store: MemoryWeightStore, checkpoints: MemoryCheckpointStore): SwarmTrainer => {
      const node = makeNode(
        { bus: new MemoryHub().bus(did), store, checkpoints, train: suite.task.shards[0]! },
        { job, did, peerWaitMs: 0, joinWaitMs: 0 }
      )
      nodes.push(node)
      return node
    }
    // Uninterrupted: 4 rounds.
    const whole = alone(new MemoryWeightStore(), new MemoryCheckpointStore())
    assert.equal((await whole.run()).stopped, 'done')
    const expected = whole.weights()!

    // Stopped after round 1, in a store and checkpoints of its own: the checkpoint names the momentum.
    const stoppedAfterRound1 = async (): Promise<{
      store: MemoryWeightStore
      checkpoints: MemoryCheckpointStore
      cp: Checkpoint
    }> => {
      const store = new MemoryWeightStore()
      const checkpoints = new MemoryCheckpointStore()
      const first = alone(store, checkpoints)
      const stop = new AbortController()
      await first.run({
        signal: stop.signal,
        onRound: (s) => {
          if (s.round === 1) stop.abort()
        }
      })
      await first.stop()
      const cp = (await checkpoints.latest('job-test'))!
      assert.equal(cp.round, 1)
      return { store, checkpoints, cp }
    }
    const restarted = async (edit?: (c: Checkpoint, store: MemoryWeightStore) => Promise<Checkpoint>) => {
      const { store, checkpoints, cp } = await stoppedAfterRound1()
      if (edit !== undefined) await checkpoints.save(await edit(cp, store))
      const node = alone(store, checkpoints)
      assert.equal((await node.run()).stopped, 'done')
      assert.deepEqual(node.startedFrom, { source: 'checkpoint', round: 2 })
      return { cp, weights: node.weights()! }
    }

    const kept = await restarted()
    assert.ok(kept.cp.momentumCid !== undefined, 'the checkpoint names the outer momentum')
    assert.equal(distance(kept.weights, expected), 0, 'the restarted run is the uninterrupted one')

    // The same checkpoint without its momentum (as before it was kept): the run goes elsewhere.
    const zeros = await restarted(async (cp) => ({ ...cp, momentumCid: undefined }))
    assert.ok(distance(zeros.weights, expected) > 0, 'momentum restarted from zeros changes nothing')

    // A momentum object that does not fit the model: a warning, zeros, and the run goes on.
    const bad = await restarted(async (cp, store) => ({
      ...cp,
      momentumCid: await store.put(new TextEncoder().encode('not weights'))
    }))
    assert.equal(distance(bad.weights, zeros.weights), 0)
  })

  it('ignores a checkpoint it cannot verify and starts afresh', async () => {
    const job = testJob()
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const checkpoints = new MemoryCheckpointStore()
    const did = identityOf(1).did
    // A checkpoint naming an object that is not in the store, then one that is not weights.
    await checkpoints.save({
      job: 'job-test',
      round: 4,
      weightsCid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    })
    const first = makeNode(
      { bus: hub.bus(did), store, checkpoints, train: suite.task.shards[0]! },
      { job, did }
    )
    nodes.push(first)
    await first.start()
    assert.deepEqual(first.startedFrom, { source: 'initial', round: 0 })
    const junk = await store.put(new TextEncoder().encode('not weights'))
    await checkpoints.save({ job: 'job-test', round: 4, weightsCid: junk })
    const second = makeNode(
      { bus: hub.bus(did), store, checkpoints, train: suite.task.shards[0]! },
      { job, did }
    )
    nodes.push(second)
    await second.start()
    assert.deepEqual(second.startedFrom, { source: 'initial', round: 0 })
  })
})
