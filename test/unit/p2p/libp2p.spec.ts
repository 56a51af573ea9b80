import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as raw from 'multiformats/codecs/raw'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHeliaNode } from '../../../src/storage/index.js'
import type { ShoalHelia } from '../../../src/storage/index.js'
import {
  GossipService,
  gossipOptions,
  gossipRejectionTap,
  libp2pOptions,
  swarmTopics
} from '../../../src/p2p/index.js'
import type { JobMessage, P2PServices } from '../../../src/p2p/index.js'
import { FAST_GOSSIP, identityOf, meshHas, waitFor } from './helpers.js'

describe('p2p: libp2p options', function () {
  this.timeout(30_000)

  it('defaults to loopback, StrictSign, no discovery; bootstrap and mDNS are switches', () => {
    const id = identityOf(60)
    const plain = libp2pOptions({ privateKey: id.libp2pPrivateKey })
    assert.deepEqual(plain.addresses?.listen, ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'])
    assert.equal(plain.peerDiscovery?.length, 0)
    assert.equal(plain.connectionProtector, undefined, 'no pnet')
    assert.equal(plain.transports?.length, 2, 'tcp and the circuit relay transport')
    assert.deepEqual(Object.keys(plain.services ?? {}).sort(), [
      'autoNAT',
      'dcutr',
      'gossipKeeper',
      'identify',
      'identifyPush',
      'liveness',
      'netinfo',
      'ping',
      'pubsub'
    ])
    const internet = libp2pOptions({
      privateKey: id.libp2pPrivateKey,
      relay: { serve: true, reserve: false, unlimited: true },
      natTraversal: false,
      upnp: true,
      dhtProtocol: '/shoal/1/abc/kad/1.0.0'
    })
    assert.deepEqual(internet.addresses?.listen, ['/ip4/127.0.0.1/tcp/0'])
    assert.deepEqual(Object.keys(internet.services ?? {}).sort(), [
      'dht',
      'gossipKeeper',
      'identify',
      'identifyPush',
      'liveness',
      'netinfo',
      'ping',
      'pubsub',
      'relay',
      'upnp'
    ])
    const g = gossipOptions({ heartbeatInterval: 50, scoreParams: { topicScoreCap: 5 } })
    assert.equal(g.globalSignaturePolicy, 'StrictSign')
    assert.equal(g.heartbeatInterval, 50)
    assert.equal(g.scoreParams?.topicScoreCap, 5)
    assert.ok(g.scoreParams?.IPColocationFactorWhitelist?.has('127.0.0.1'))

    const full = libp2pOptions({
      privateKey: id.libp2pPrivateKey,
      listen: ['/ip4/127.0.0.1/tcp/4999'],
      announce: ['/ip4/203.0.113.7/tcp/4999'],
      bootstrap: [`/ip4/127.0.0.1/tcp/4001/p2p/${identityOf(61).peerId.toString()}`],
      mdns: true
    })
    assert.equal(full.peerDiscovery?.length, 2)
    assert.deepEqual(full.addresses?.announce, ['/ip4/203.0.113.7/tcp/4999'])
  })

  describe('as Helia libp2p options', () => {
    let dir: string
    const nodes: Array<ShoalHelia<P2PServices>> = []

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'shoal-p2p-'))
      for (let i = 0; i < 2; i++) {
        nodes.push(
          await createHeliaNode({
            blocksPath: join(dir, `n${i}`, 'blocks'),
            datastorePath: join(dir, `n${i}`, 'datastore'),
            libp2p: libp2pOptions({ privateKey: identityOf(62 + i).libp2pPrivateKey, gossip: FAST_GOSSIP })
          })
        )
      }
    })

    after(async () => {
      for (const n of nodes) await n.stop().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    })

    it('keeps gossipsub (with its rejection tap) beside bitswap, and both work', async () => {
      const [a, b] = nodes as [ShoalHelia<P2PServices>, ShoalHelia<P2PServices>]
      assert.ok(a.libp2p.peerId.equals(identityOf(62).peerId), 'the identity key is the node key')
      assert.ok(gossipRejectionTap(a.libp2p.services.pubsub) !== undefined)

      const topics = swarmTopics('bhelia')
      const ga = new GossipService({ pubsub: a.libp2p.services.pubsub }, { topics: [topics.jobs] })
      const gb = new GossipService({ pubsub: b.libp2p.services.pubsub }, { topics: [topics.jobs] })
      ga.start()
      gb.start()
      const got: JobMessage[] = []
      ga.subscribe(topics.jobs, () => {})
      gb.subscribe(topics.jobs, (m) => {
        got.push(m)
      })
      await a.libp2p.dial(b.libp2p.getMultiaddrs().find((m) => !m.toString().includes('p2p-circuit'))!)
      // In a's mesh, not only among its subscribers: a's subscriber list can name b before a's
      // own stream to b is open, and a message published then never reaches b (seen under load).
      await waitFor(
        () => meshHas(a.libp2p, topics.jobs.topic, [b.libp2p]),
        20_000, // a deadline for a busy machine, not a timing claim
        "b in a's mesh"
      )
      await ga.publish(topics.jobs, { type: 'announce', jobId: 'h-1' })
      await waitFor(() => got.length === 1, 20_000, 'gossip over helia')

      const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff)
      const cid = CID.createV1(raw.code, await sha256.digest(bytes))
      await a.blockstore.put(cid, bytes)
      const parts: Uint8Array[] = []
      for await (const part of b.blockstore.get(cid, { signal: AbortSignal.timeout(10_000) }))
        parts.push(part)
      const fetched = Buffer.concat(parts)
      assert.equal(fetched.length, bytes.length)
      assert.ok(fetched.equals(bytes), 'bitswap returned the same bytes')
      ga.stop()
      gb.stop()
    })
  })
})
