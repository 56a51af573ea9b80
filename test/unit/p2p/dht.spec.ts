/**
 * kad-dht in a private swarm: members find each other and each other's provider records beyond
 * their connections (private and loopback addresses kept, as on a LAN), and an outsider who
 * speaks the swarm's DHT protocol neither enters a member's routing table nor gets answers.
 */
import assert from 'node:assert/strict'
import type { PeerId } from '@libp2p/interface'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import {
  PeerAccessList,
  SwarmMembership,
  createSwarm,
  issueCredential,
  libp2pOptions,
  type DhtGuardStats
} from '../../../src/p2p/index.js'
import { FAST_GOSSIP, connect, identityOf, stopAll, waitFor, type TestNode } from './helpers.js'

type DhtNode = TestNode & { services: { dht: SingleKadDHT } }

/** The routing table's lookup (public on the class, absent from its interface). */
async function inTable(node: DhtNode, peer: PeerId): Promise<boolean> {
  const table = node.services.dht.routingTable as unknown as { find(p: PeerId): Promise<unknown> }
  return (await table.find(peer)) !== undefined
}

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('p2p: kad-dht among the members of a private swarm', function () {
  this.timeout(60_000)
  const { swarm, founder } = createSwarm({ name: 'dht', private: true })
  const protocol = `/shoal/1/${swarm.id}/kad/1.0.0`
  const started: Array<{ stop(): Promise<void> | void }> = []

  async function member(
    seed: number
  ): Promise<{ node: DhtNode; access: PeerAccessList; membership: SwarmMembership; stats: DhtGuardStats }> {
    const identity = identityOf(seed)
    const access = new PeerAccessList()
    const stats: DhtGuardStats = { refusedInbound: 0, refusedTopology: 0, refusedOutbound: 0 }
    const node = (await createLibp2p(
      libp2pOptions({
        privateKey: identity.libp2pPrivateKey,
        gossip: FAST_GOSSIP,
        connectionGater: access.gater,
        natTraversal: false,
        dhtProtocol: protocol,
        dhtAdmits: async (peer) => access.admits(peer),
        dhtStats: stats
      })
    )) as DhtNode
    const credential = await issueCredential(founder, swarm, identity.did, { expiresIn: 3600 })
    const membership = new SwarmMembership({ node, access }, { swarm, credential, handshakeTimeoutMs: 2_000 })
    await membership.start()
    started.push(membership, node)
    return { node, access, membership, stats }
  }

  /** A node that knows the swarm's DHT protocol but holds no credential: a plain, unguarded DHT. */
  async function outsider(seed: number): Promise<DhtNode> {
    const node = (await createLibp2p(
      libp2pOptions({
        privateKey: identityOf(seed).libp2pPrivateKey,
        gossip: FAST_GOSSIP,
        natTraversal: false,
        dhtProtocol: protocol
      })
    )) as DhtNode
    started.push(node)
    return node
  }

  after(async () => stopAll(started))

  it('a member finds another it is not connected to, and its provider records, through a third', async () => {
    const a = await member(120)
    const b = await member(121)
    const c = await member(122)
    await connect(a.node, b.node)
    await connect(c.node, b.node)
    for (const [x, y] of [
      [a, b],
      [c, b]
    ] as const) {
      await waitFor(() => x.membership.isMember(y.node.peerId), 5_000, 'verified')
      await waitFor(() => x.node.services.dht.routingTable.size > 0, 10_000, 'a routing table entry')
    }
    assert.equal(a.node.getConnections(c.node.peerId).length, 0)

    // Peer routing: A learns C's addresses (loopback ones: the default mapper would drop them).
    const found = await a.node.peerRouting.findPeer(c.node.peerId, { signal: AbortSignal.timeout(20_000) })
    assert.ok(found.id.equals(c.node.peerId))
    assert.ok(
      found.multiaddrs.some((m) => m.toString().startsWith('/ip4/127.0.0.1/tcp/')),
      `C's loopback address kept: ${found.multiaddrs.map(String).join(', ')}`
    )

    // Content routing: C provides a CID; A finds C as its provider.
    const cid = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('a model of round 3')))
    await c.node.contentRouting.provide(cid, { signal: AbortSignal.timeout(20_000) })
    const providers = await drain(
      a.node.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(20_000) })
    )
    assert.ok(
      providers.some((p) => p.id.equals(c.node.peerId)),
      `providers: ${providers.map((p) => p.id.toString()).join(', ')}`
    )
    for (const m of [a, b, c])
      assert.deepEqual(m.stats, { refusedInbound: 0, refusedTopology: 0, refusedOutbound: 0 })
  })

  it('an outsider on the swarm’s DHT protocol never enters a routing table and gets no answer', async () => {
    const a = await member(125)
    const b = await member(126)
    await connect(a.node, b.node)
    await waitFor(() => a.membership.isMember(b.node.peerId), 5_000, 'a verified b')
    await waitFor(() => a.node.services.dht.routingTable.size > 0, 10_000, 'a routing table entry')

    const o = await outsider(127)
    // It dials a member and asks the DHT right away, racing the membership handshake.
    await connect(o, a.node).catch(() => {})
    const cid = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('poison')))
    await o.contentRouting.provide(cid, { signal: AbortSignal.timeout(5_000) }).catch(() => {})
    await drain(
      o.peerRouting.getClosestPeers(a.node.peerId.toMultihash().bytes, { signal: AbortSignal.timeout(5_000) })
    ).catch(() => [])
    await waitFor(() => a.access.denial(o.peerId) !== undefined, 10_000, 'the outsider denied')
    // The member denied it, left it out of its routing table, and refused its DHT streams.
    assert.equal(await inTable(a.node, o.peerId), false)
    assert.ok(a.stats.refusedInbound + a.stats.refusedTopology > 0, JSON.stringify(a.stats))
    assert.equal(await inTable(a.node, b.node.peerId), true)
    // Its provider record reached no member.
    const providers = await drain(
      b.node.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(5_000) })
    ).catch(() => [])
    assert.ok(!providers.some((p) => p.id.equals(o.peerId)), 'the outsider’s provider record was stored')
  })
})
