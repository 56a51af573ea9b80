/**
 * What a node does with accountable peers: a model must be announced with its issuer's receipt
 * for this job and round and (models exchanged exactly) hash to the receipt's result; a DID
 * convicted elsewhere (exclusions) is not aggregated at all.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { Identity } from '../../../../src/identity/index.js'
import { encodeCompressed } from '../../../../src/training/aggregate/index.js'
import { encodeWeights } from '../../../../src/training/export/index.js'
import { compileModel, initParams } from '../../../../src/training/graph/index.js'
import { issueReceipt } from '../../../../src/training/receipts/index.js'
import {
  MemoryHub,
  MemoryWeightStore,
  type RoundReceiptSigner,
  type RoundStats,
  type UpdateBus
} from '../../../../src/training/swarm/index.js'
import { DATASET_CID, identityOf, makeNode, testJob, swarmSuite } from './helpers.js'

/** Signs receipts as a node does: resultHash = sha-256 of the SHOALWT1 weights after the local steps. */
function signer(id: Identity, params: ReturnType<typeof compileModel>['params']): RoundReceiptSigner {
  let prev: string | null = null
  return {
    sign: async (r) => {
      const jwt = await issueReceipt(
        id,
        {
          job: r.job,
          round: r.round,
          baseCid: r.baseCid,
          shards: [{ cid: DATASET_CID, grant: `g-${id.did.slice(-6)}` }],
          hyper: r.hyper,
          seed: r.seed,
          samples: r.samples,
          steps: r.steps,
          resultHash: createHash('sha256').update(encodeWeights(r.weights, params)).digest('hex'),
          lossBefore: r.lossBefore,
          lossAfter: r.lossAfter,
          ep: r.ep
        },
        prev
      )
      prev = jwt
      return jwt
    }
  }
}

describe('swarm: receipts bind announced models; convicted DIDs are excluded', function () {
  this.timeout(120_000)
  const suite = swarmSuite(3, { trainCount: 600, testCount: 300 })
  const nodes = suite.nodes

  it('rejects a model that is not the one its receipt commits to, and a receipt that is not the announcer’s', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 3, rounds: 4 } })
    const compiled = compileModel(job.model, job.optimizer)
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const ids = [identityOf(1), identityOf(2), identityOf(3)]
    // Node 2 trains for real and signs a real receipt, but announces random weights with it.
    const random = await store.put(encodeCompressed(initParams(compiled, 999), 'none', compiled.params))
    const lying = (did: string): UpdateBus => {
      const bus = hub.bus(did)
      return { publish: async (msg) => bus.publish({ ...msg, weightsCid: random }), subscribe: bus.subscribe }
    }
    // A replayer announces node 0's models with node 0's receipts under its own DID.
    const replayer = identityOf(9).did
    hub.bus(replayer)
    const seen = new Set<number>()
    hub.bus('observer').subscribe((msg, from) => {
      if (from.did !== ids[0]!.did || seen.has(msg.round)) return
      seen.add(msg.round)
      void hub.publish(replayer, { ...msg })
    })
    const stats: RoundStats[][] = [[], [], []]
    const trainers = ids.map((id, i) =>
      makeNode(
        {
          bus: i === 2 ? lying(id.did) : hub.bus(id.did),
          store,
          train: suite.task.shards[i]!,
          test: suite.task.test,
          receipts: signer(id, compiled.params)
        },
        { job, did: id.did, requireReceipts: true }
      )
    )
    nodes.push(...trainers)
    await Promise.all(trainers.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))
    for (const i of [0, 1]) {
      const reasons = stats[i]!.flatMap((s) =>
        s.rejected.map(
          (r) => `${r.from === ids[2]!.did ? 'liar' : r.from === replayer ? 'replayer' : r.from}:${r.reason}`
        )
      )
      assert.ok(reasons.includes('liar:RESULT_MISMATCH'), reasons.join(', '))
      if (i === 1) assert.ok(reasons.includes('replayer:RECEIPT_MISMATCH'), reasons.join(', '))
      for (const s of stats[i]!) {
        assert.ok(!s.peers.some((p) => p.from === ids[2]!.did || p.from === replayer))
      }
      // The honest peers' models were used: they hash to their receipts.
      assert.ok(stats[i]!.some((s) => s.peers.some((p) => p.from === ids[1 - i]!.did)))
    }
  })

  it('a model announced without a receipt is refused when receipts are required', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 2 } })
    const compiled = compileModel(job.model, job.optimizer)
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const [a, b] = [identityOf(11), identityOf(12)]
    const stats: RoundStats[] = []
    const strict = makeNode(
      { bus: hub.bus(a.did), store, train: suite.task.shards[0]!, receipts: signer(a, compiled.params) },
      { job, did: a.did, requireReceipts: true }
    )
    const silent = makeNode({ bus: hub.bus(b.did), store, train: suite.task.shards[1]! }, { job, did: b.did })
    nodes.push(strict, silent)
    await Promise.all([strict.run({ onRound: (s) => void stats.push(s) }), silent.run()])
    assert.ok(stats.every((s) => s.peersUsed === 0))
    assert.ok(stats.some((s) => s.rejected.some((r) => r.reason === 'RECEIPT_MISSING')))
  })

  it('ignores every announcement of an excluded DID from the moment it is convicted', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 4 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const ids = [identityOf(21), identityOf(22), identityOf(23)]
    const convicted = new Set<string>([ids[2]!.did])
    const exclusions = { excluded: (did: string): boolean => convicted.has(did) }
    const stats: RoundStats[][] = [[], [], []]
    const trainers = ids.map((id, i) =>
      makeNode(
        { bus: hub.bus(id.did), store, train: suite.task.shards[i]!, exclusions },
        { job, did: id.did }
      )
    )
    nodes.push(...trainers)
    await Promise.all(trainers.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))
    for (const i of [0, 1]) {
      assert.equal(stats[i]!.length, 4)
      for (const s of stats[i]!) assert.ok(!s.peers.some((p) => p.from === ids[2]!.did))
      assert.ok(
        stats[i]!.every((s) => s.peersUsed === 1),
        'the other honest node is still used'
      )
      assert.ok(trainers[i]!.counters.excluded >= 1)
    }
  })
})
