/**
 * A fetch whose provider's connection drops mid-transfer (a relay that drops it, a link that
 * dies): the node reaches the provider again and the fetch completes, instead of waiting for
 * blocks that nobody is asked for any more until its deadline.
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

describe('swarm: a provider lost mid-fetch is reached again', function () {
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
})
