/**
 * A node far behind its peers (restarted after they moved on) catches up on their models alone:
 * its own model is rounds stale. Found by the chaos test (test/e2e/chaos.spec.ts): averaged in,
 * the stale model cost trainers restarted near a job's end 5–8 points of final accuracy.
 */
import assert from 'node:assert/strict'
import { encodeCompressed, mean } from '../../../../src/training/aggregate/index.js'
import { decodeWeights, encodeWeights } from '../../../../src/training/export/index.js'
import { compileModel, initParams } from '../../../../src/training/graph/index.js'
import {
  MemoryCheckpointStore,
  MemoryHub,
  MemoryWeightStore,
  SwarmTrainer,
  type RoundStats
} from '../../../../src/training/swarm/index.js'
import { swarmSuite, testJob } from './helpers.js'

describe('swarm: catching up', function () {
  this.timeout(120_000)
  const suite = swarmSuite(1, { trainCount: 200, testCount: 100 })

  it('a node whose peers are rounds ahead takes their models alone, not its stale one', async () => {
    const job = testJob({ maxNorm: 1000, hyper: { lr: 0.05, batchSize: 32, H: 2, k: 2, rounds: 6 } })
    const compiled = compileModel(job.model, job.optimizer)
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const checkpoints = new MemoryCheckpointStore()
    // The node's resume point: round 0. Its peers are at round 4 with the same model P.
    const stale = initParams(compiled, job.seed)
    await checkpoints.save({
      job: 'job-test',
      round: 0,
      weightsCid: await store.put(encodeWeights(stale, compiled.params))
    })
    const ahead = [initParams(compiled, 98), initParams(compiled, 99)]
    const cids = await Promise.all(
      ahead.map(async (m) => store.put(encodeCompressed(m, 'none', compiled.params)))
    )
    const announce = (): void => {
      for (const [i, did] of ['did:key:p1', 'did:key:p2'].entries())
        void hub.publish(did, {
          type: 'update',
          job: 'job-test',
          round: 4,
          weightsCid: cids[i]!,
          samples: 64
        })
    }
    const node = new SwarmTrainer(
      { bus: hub.bus('did:key:restarted'), store, checkpoints, train: suite.task.shards[0]! },
      {
        job,
        jobId: 'job-test',
        did: 'did:key:restarted',
        deterministic: true,
        joinWaitMs: 0,
        peerWaitMs: 5_000
      }
    )
    suite.nodes.push(node)
    const stats: RoundStats[] = []
    const running = node.run({ onRound: (s) => void stats.push(s) })
    setTimeout(announce, 50)
    await running
    const first = stats[0]!
    assert.equal(first.round, 1)
    assert.equal(first.peersUsed, 2)
    assert.equal(first.nextRound, 5, 'caught up with the peers')
    // The aggregate of the round is the peers' mean, without the node's stale model.
    const expected = mean(ahead)
    const cp = decodeWeights(await store.get(first.checkpointCid))
    for (const [name, t] of expected) assert.deepEqual([...cp.get(name)!], [...t], name)
  })
})
