import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { receiptHash } from '../../../src/training/receipts/index.js'
import { NodeDb } from '../../../src/node/db.js'
import { NodeReceipts } from '../../../src/node/receipts.js'
import { ItemSync, RECEIPT_SYNC_PROTOCOL, groupDigest, type ItemSource } from '../../../src/p2p/index.js'
import { FakeSwarm } from './fake-swarm.js'
import { connect, identityOf, startNode, stopAll, type TestNode } from '../p2p/helpers.js'
import {
  MemoryGrants,
  grantFor,
  honestChain,
  identity,
  payloadText,
  withPayload
} from '../training/receipts/helpers.js'

describe('node/receipts: anti-entropy of receipts between nodes', function () {
  this.timeout(60_000)
  const alice = identity(161)
  const bob = identity(162)
  const carol = identity(163)
  const grants = new MemoryGrants()
    .add(grantFor('g-alice', alice, [0, 1]))
    .add(grantFor('g-bob', bob, [2]))
    .add(grantFor('g-carol', carol, [3], { purpose: 'any' }))
  let dir: string
  const dbs: NodeDb[] = []
  const started: Array<{ stop(): Promise<void> | void }> = []
  let chains: { alice: string[]; bob: string[]; carol: string[] }

  interface Member {
    receipts: NodeReceipts
    swarm: FakeSwarm
    node: TestNode
    sync: ItemSync
  }

  async function member(seed: number, fed: string[]): Promise<Member> {
    const db = new NodeDb(join(dir, `node-${seed}`))
    await db.start()
    dbs.push(db)
    const swarm = new FakeSwarm()
    const receipts = new NodeReceipts({ db, swarm, grants, identity: identity(seed) })
    await receipts.start()
    swarm.enter()
    await swarm.deliver(fed)
    const node = await startNode(identityOf(seed))
    const sync = new ItemSync(
      { node, source: receipts.syncSource() },
      { protocol: RECEIPT_SYNC_PROTOCOL, intervalMs: 0 }
    )
    await sync.start()
    started.push(sync, node, receipts)
    return { receipts, swarm, node, sync }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-receipts-sync-'))
    chains = {
      alice: await honestChain(alice, 'g-alice', [0, 1], 4),
      bob: await honestChain(bob, 'g-bob', [2], 3),
      carol: await honestChain(carol, 'g-carol', [3], 2)
    }
  })

  after(async () => {
    await stopAll(started)
    for (const db of dbs) await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('two nodes that saw different receipts reach the same ledger hash after a sync', async () => {
    // One missed the end of alice's chain and carol's; the other the start of alice's and bob's.
    const x = await member(170, [...chains.alice.slice(0, 2), ...chains.bob])
    const y = await member(171, [...chains.alice.slice(1), ...chains.carol])
    const all = await member(172, [...chains.alice, ...chains.bob, ...chains.carol])
    const before = await Promise.all([x, y].map(async (m) => m.receipts.ledger()))
    assert.notEqual(before[0]!.hash, before[1]!.hash)

    const digests = await x.receipts.syncSource().digests()
    assert.deepEqual(digests.get(bob.did), groupDigest(chains.bob.map((j) => receiptHash(j))))

    await connect(x.node, y.node)
    assert.ok((await x.sync.syncWith(y.node.peerId)).ok)
    assert.ok((await y.sync.syncWith(x.node.peerId)).ok)

    const [lx, ly, lall] = await Promise.all([x, y, all].map(async (m) => m.receipts.ledger()))
    assert.equal(lx!.receipts, 9)
    assert.equal(lx!.verified, 9)
    assert.equal(lx!.hash, ly!.hash)
    assert.equal(lx!.hash, lall!.hash)
    assert.deepEqual(lx!.balances, lall!.balances)
    // x lacked alice 2–3 and carol's two; y lacked alice 0 and bob's three: each arrived once.
    assert.equal(x.sync.stats().accepted, 4)
    assert.equal(y.sync.stats().accepted, 4)
    assert.equal(x.sync.stats().received + y.sync.stats().received, 8)
    assert.equal(x.receipts.stats().accepted, 2 + 3 + 4)
    assert.equal(x.receipts.stats().duplicates, 0)
    // The digests (indexed once, then kept up to date by every stored receipt) now agree, and
    // agree with a node that read all nine from its db.
    const [dx, dy, dall] = await Promise.all([x, y, all].map(async (m) => m.receipts.syncSource().digests()))
    assert.deepEqual(dx, dy)
    assert.deepEqual(dx, dall)
    assert.deepEqual(
      (await x.receipts.syncSource().ids(alice.did)).sort(),
      chains.alice.map((j) => receiptHash(j)).sort()
    )
  })

  it('a receipt that fails its checks is refused as from gossip', async () => {
    const honest = chains.carol[0]!
    const tampered = withPayload(honest, payloadText(honest).replace('"samples":1280', '"samples":12800'))
    const id = receiptHash(tampered)
    // A peer whose source serves the tampered receipt under carol's DID.
    const liar: ItemSource = {
      digests: async () => new Map([[carol.did, groupDigest([id])]]),
      ids: async () => [id],
      get: async (ids) => (ids.includes(id) ? [tampered] : []),
      accept: async (_items: string[], _from: PeerId) => 0
    }
    const node = await startNode(identityOf(175))
    const sync = new ItemSync({ node, source: liar }, { protocol: RECEIPT_SYNC_PROTOCOL, intervalMs: 0 })
    await sync.start()
    started.push(sync, node)
    const z = await member(176, [...chains.bob])
    const before = await z.receipts.ledger()
    await connect(z.node, node)
    const r = await z.sync.syncWith(node.peerId)
    assert.ok(r.ok)
    assert.equal(r.accepted, 0)
    // It travelled (maybe twice: the sync on connect, then this one) and was refused each time.
    const received = z.sync.stats().received
    assert.ok(received >= 1)
    assert.deepEqual(z.receipts.stats().rejected, { 'bad-signature': received })
    assert.equal(await z.receipts.get(id), undefined)
    assert.equal((await z.receipts.ledger()).hash, before.hash)
  })
})
