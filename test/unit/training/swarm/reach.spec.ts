/**
 * Reaching the holder of a model: a fetch whose provider's connection drops mid-transfer (a
 * relay that drops it, a link that dies) reaches the provider again and completes, instead of
 * waiting for blocks that nobody is asked for any more until its deadline; and with a DHT, a
 * model whose announcer is gone is fetched from another node that holds it (provider records).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { PeerReach, libp2pOptions, type P2PServices } from '../../../../src/p2p/index.js'
import { ContentStore, createHeliaNode, type ShoalHelia } from '../../../../src/storage/index.js'
import { ContentWeightStore } from '../../../../src/training/swarm/index.js'
import { seededBytes } from '../../storage/helpers.js'
import { identityOf } from './helpers.js'

/** Polls `predicate` every 25 ms (bounded by the test's timeout). */
async function waitUntil(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('swarm: reaching the holder of a model', function () {
  this.timeout(60_000)
  let dir: string
  const helias: Array<ShoalHelia<P2PServices>> = []
  const contents: ContentStore[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-reach-'))
  })

  after(async () => {
    await Promise.all(contents.map(async (c) => c.stop().catch(() => {})))
    await Promise.all(helias.map(async (h) => h.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  })

  it('the connection is cut after the first block; the node redials and fetches the rest', async () => {
    const ids = [31, 32].map((i) => identityOf(i))
    for (const [i, id] of ids.entries()) {
      const helia = await createHeliaNode({
        blocksPath: join(dir, `n${i}`, 'blocks'),
        datastorePath: join(dir, `n${i}`, 'datastore'),
        libp2p: libp2pOptions({ privateKey: id.libp2pPrivateKey, natTraversal: false })
      })
      helias.push(helia)
      contents.push(new ContentStore({ helia, identity: id }, { worker: false }))
    }
    const [a, b] = helias as [ShoalHelia<P2PServices>, ShoalHelia<P2PServices>]
    const model = seededBytes(7, 24 * 1024 * 1024)
    const cid = await new ContentWeightStore({ content: contents[0]! }).put(model)

    // B knows A's addresses (as peer exchange or identify would have told it) and that A
    // announced the model; it is not connected yet.
    await b.libp2p.peerStore.merge(a.libp2p.peerId, { multiaddrs: a.libp2p.getMultiaddrs() })
    const reach = new PeerReach({ node: b.libp2p })
    reach.noteProvider(cid, a.libp2p.peerId)

    // Cut every connection to A as soon as the first piece of the model has arrived.
    const total = (await contents[0]!.stat(CID.parse(cid))).size
    let cutAt = -1
    const inner = contents[1]!
    const cutting: Pick<ContentStore, 'add' | 'get' | 'unpin'> = {
      add: inner.add.bind(inner),
      unpin: inner.unpin.bind(inner),
      get: async function* (c, opts) {
        let got = 0
        for await (const part of inner.get(c, opts)) {
          got += part.byteLength
          if (cutAt < 0) {
            cutAt = got
            await b.libp2p.hangUp(a.libp2p.peerId)
          }
          yield part
        }
      }
    }
    const bytes = await new ContentWeightStore({ content: cutting, reach }).get(
      cid,
      AbortSignal.timeout(30_000)
    )
    assert.ok(cutAt > 0 && cutAt < total, `cut after ${cutAt} of ${total} bytes`)
    assert.deepEqual(bytes, model)
    // Reached before the fetch (connected already, or dialed), then dialed again after the cut.
    const stats = reach.stats()
    assert.equal(stats.connected + stats.dialedDirect, 2, JSON.stringify(stats))
    assert.equal(stats.reconnected, 1)
  })
  it('with a DHT, a model whose announcer is gone is fetched from a node that fetched it before', async () => {
    // A trains and announces; B fetches A's model; then A leaves. C, connected only to D (which
    // never held the model), still has A as the announcer: unreachable. B's provider record,
    // found through D, leads C to B.
    const protocol = '/shoal/1/test-reach/kad/1.0.0'
    const nodes: Array<{ helia: ShoalHelia<P2PServices>; content: ContentStore; reach: PeerReach }> = []
    for (const [i, seed] of [41, 42, 43, 44].entries()) {
      const id = identityOf(seed)
      const helia = await createHeliaNode({
        blocksPath: join(dir, `d${i}`, 'blocks'),
        datastorePath: join(dir, `d${i}`, 'datastore'),
        libp2p: libp2pOptions({ privateKey: id.libp2pPrivateKey, natTraversal: false, dhtProtocol: protocol })
      })
      helias.push(helia)
      const content = new ContentStore({ helia, identity: id }, { worker: false })
      contents.push(content)
      nodes.push({
        helia,
        content,
        reach: new PeerReach({ node: helia.libp2p }, { findProviders: true, timeoutMs: 5_000 })
      })
    }
    const [a, b, c, d] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]]
    const dial = async (x: typeof a, y: typeof a): Promise<void> => {
      await x.helia.libp2p.dial(y.helia.libp2p.getMultiaddrs()[0]!)
    }
    await dial(a, b)
    await dial(b, d)
    await dial(c, d)
    const tableSize = (x: typeof a): number =>
      (x.helia.libp2p.services as unknown as { dht: { routingTable: { size: number } } }).dht.routingTable
        .size
    for (const x of nodes) await waitUntil(() => tableSize(x) > 0, 'a routing table entry')

    const model = seededBytes(9, 3 * 1024 * 1024)
    const cid = await new ContentWeightStore({ content: a.content, reach: a.reach }).put(model)
    b.reach.noteProvider(cid, a.helia.libp2p.peerId)
    assert.deepEqual(await new ContentWeightStore({ content: b.content, reach: b.reach }).get(cid), model)
    await waitUntil(() => b.reach.stats().provided >= 1, 'B’s provider record published')

    await a.helia.stop()
    c.reach.noteProvider(cid, a.helia.libp2p.peerId)
    // The DHT's own upkeep may have connected C to B: not what this test is about.
    await c.helia.libp2p.hangUp(b.helia.libp2p.peerId)
    const got = await new ContentWeightStore({ content: c.content, reach: c.reach }).get(
      cid,
      AbortSignal.timeout(30_000)
    )
    assert.deepEqual(got, model)
    const stats = c.reach.stats()
    assert.equal(stats.unreachable, 1, JSON.stringify(stats))
    assert.equal(stats.fromRouting, 1, JSON.stringify(stats))
  })
})
