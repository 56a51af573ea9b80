/**
 * The protocol over the real stack: three in-process nodes (libp2p 3 + gossipsub on
 * loopback, Helia 7 with bitswap) running a signed job for three rounds.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GossipService, libp2pOptions, type P2PServices } from '../../../../src/p2p/index.js'
import { ContentStore, createHeliaNode, type ShoalHelia } from '../../../../src/storage/index.js'
import {
  ContentWeightStore,
  createJob,
  gossipUpdateBus,
  MemoryCheckpointStore,
  SwarmTrainer,
  updatesTopic,
  verifyJob,
  type RoundStats
} from '../../../../src/training/swarm/index.js'
import { CREATOR, identityOf, jobInput, smallTask } from './helpers.js'

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('swarm: over libp2p gossipsub and Helia bitswap', function () {
  this.timeout(60_000)
  let dir: string
  const helias: Array<ShoalHelia<P2PServices>> = []
  const gossips: GossipService[] = []
  const contents: ContentStore[] = []
  const nodes: SwarmTrainer[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-swarm-net-'))
  })

  after(async () => {
    await Promise.all(nodes.map(async (n) => n.stop().catch(() => {})))
    for (const g of gossips) g.stop()
    await Promise.all(contents.map(async (c) => c.stop().catch(() => {})))
    await Promise.all(helias.map(async (h) => h.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  })

  it('three nodes train a signed job for three rounds, exchanging models by CID', async () => {
    const task = await smallTask(3, { trainCount: 300, testCount: 100 })
    const job = await createJob(
      CREATOR,
      jobInput({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 2, rounds: 3 } })
    )
    const ids = [1, 2, 3].map((i) => identityOf(i))
    for (const [i, id] of ids.entries()) {
      helias.push(
        await createHeliaNode({
          blocksPath: join(dir, `n${i}`, 'blocks'),
          datastorePath: join(dir, `n${i}`, 'datastore'),
          libp2p: libp2pOptions({ privateKey: id.libp2pPrivateKey, gossip: { heartbeatInterval: 100 } })
        })
      )
    }
    const addr = (i: number): ReturnType<ShoalHelia['libp2p']['getMultiaddrs']>[number] =>
      helias[i]!.libp2p.getMultiaddrs()[0]!
    await helias[0]!.libp2p.dial(addr(1))
    await helias[0]!.libp2p.dial(addr(2))
    await helias[1]!.libp2p.dial(addr(2))

    const topic = updatesTopic('test-swarm', job.id)
    const stats: RoundStats[][] = [[], [], []]
    for (const [i, helia] of helias.entries()) {
      // Each node checks the job it was handed before training on it.
      const { spec } = await verifyJob(job.jwt, { expectedId: job.id })
      const gossip = new GossipService({ pubsub: helia.libp2p.services.pubsub }, { topics: [topic] })
      gossip.start()
      gossips.push(gossip)
      const content = new ContentStore({ helia, identity: ids[i]! }, { worker: false })
      contents.push(content)
      nodes.push(
        new SwarmTrainer(
          {
            bus: gossipUpdateBus(gossip, topic),
            store: new ContentWeightStore({ content }),
            checkpoints: new MemoryCheckpointStore(),
            train: task.shards[i]!,
            test: task.test
          },
          {
            job: spec,
            jobId: job.id,
            did: ids[i]!.did,
            deterministic: true,
            joinWaitMs: 0,
            peerWaitMs: 5_000,
            fetchTimeoutMs: 10_000
          }
        )
      )
    }
    await Promise.all(nodes.map(async (n) => n.start()))
    await waitFor(
      () => helias.every((h) => h.libp2p.services.pubsub.getSubscribers(topic.topic).length === 2),
      10_000,
      'topic subscriptions'
    )

    const results = await Promise.all(
      nodes.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) }))
    )
    for (const [i, result] of results.entries()) {
      assert.equal(result.stopped, 'done')
      assert.equal(result.nextRound, 3)
      const list = stats[i]!
      assert.deepEqual(
        list.map((s) => s.round),
        [0, 1, 2]
      )
      for (const s of list) {
        assert.equal(s.rejected.length, 0)
        assert.equal(s.unavailable.length, 0)
        assert.equal(s.peersUsed, 2, `node ${i} round ${s.round} used ${s.peersUsed} peers`)
        for (const p of s.peers) assert.ok(ids.some((id) => id.did === p.from))
      }
      const counters = nodes[i]!.counters
      assert.ok(counters.bytesReceived >= 2 * 3 * 400_000, `received ${counters.bytesReceived} bytes`)
      assert.equal(gossips[i]!.stats()[topic.topic]!.published, 3)
      assert.ok(gossips[i]!.stats()[topic.topic]!.delivered >= 6)
    }
    console.log(
      `      accuracy ${results.map((r) => r.accuracy!.toFixed(3)).join(' ')}; ` +
        `net ms per round ${stats[0]!.map((s) => Math.round(s.netMs)).join(', ')}`
    )
  })
})
