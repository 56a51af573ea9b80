/**
 * The gossip keeper (src/p2p/keeper.ts): gossipsub forgets a peer whose stream failed while a
 * connection to it stays open (the order of events after a move to another network), and
 * nothing in libp2p reports that connection again; the keeper hands it back.
 */
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import type { PeerId, Startable } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { GossipKeeper, type GossipKeeperComponents } from '../../../src/p2p/index.js'
import { canSend, identityOf, startNode, connect, waitFor, internals, type TestNode } from './helpers.js'

const TOPIC = 'keeper-test'

/**
 * What a connection that died under the gossip streams does inside gossipsub on both sides
 * (`handlePeerReadStreamError`: the peer is dropped), while another connection between them
 * stays open.
 */
function streamsFailed(a: TestNode, b: TestNode): void {
  const drop = (n: TestNode, p: PeerId): void =>
    (n.services.pubsub as unknown as { onPeerDisconnected(p: PeerId): void }).onPeerDisconnected(p)
  drop(a, b.peerId)
  drop(b, a.peerId)
}

/** Gossipsub knows `peer` and can send to it. */
function knows(node: TestNode, peer: TestNode): boolean {
  const ps = node.services.pubsub as unknown as { peers: Map<string, unknown> }
  return ps.peers.has(peer.peerId.toString()) && canSend(node, peer)
}

async function pair(intervalMs: number): Promise<{ a: TestNode; b: TestNode; got: string[] }> {
  const keeper = { intervalMs, closeDelayMs: 50 }
  const a = await startNode(identityOf(71), { keeper })
  const b = await startNode(identityOf(72), { keeper })
  const got: string[] = []
  b.services.pubsub.addEventListener('message', (e) => got.push(new TextDecoder().decode(e.detail.data)))
  for (const n of [a, b]) n.services.pubsub.subscribe(TOPIC)
  await connect(a, b)
  await waitFor(() => internals(a).getMeshPeers(TOPIC).length === 1, 10_000, 'a mesh')
  await waitFor(() => internals(b).getMeshPeers(TOPIC).length === 1, 10_000, 'b mesh')
  // An identify push (sent when a node's own addresses change, e.g. as peers report how they
  // see it) also makes libp2p report the connection to gossipsub again; nothing changes after
  // the failure in these tests, so pushes are stopped to keep them out of the picture.
  for (const n of [a, b])
    await (n.services as unknown as { identifyPush: { stop(): Promise<void> } }).identifyPush.stop()
  return { a, b, got }
}

describe('p2p: gossip keeper', function () {
  this.timeout(30_000)
  const nodes: TestNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async (n) => n.stop()))
  })

  it('hands a connected peer that gossipsub dropped back to it, and messages flow again', async () => {
    const { a, b, got } = await pair(100)
    nodes.push(a, b)
    streamsFailed(a, b)
    assert.equal(knows(a, b), false)
    assert.equal(a.getConnections(b.peerId).length, 1, 'the connection stays open')
    await waitFor(() => knows(a, b), 10_000, 'a to know b again')
    assert.ok(a.services.gossipKeeper.stats().repairs + b.services.gossipKeeper.stats().repairs >= 1)
    await waitFor(() => internals(a).getMeshPeers(TOPIC).length === 1, 10_000, 'a mesh again')
    await a.services.pubsub.publish(TOPIC, new TextEncoder().encode('after'))
    await waitFor(() => got.includes('after'), 10_000, 'b to receive')
  })

  it('without a check, gossipsub stays without the peer (the defect it mends)', async () => {
    const { a, b } = await pair(3_600_000)
    nodes.push(a, b)
    streamsFailed(a, b)
    // Nothing closes, so only the periodic check (an hour away here) could repair it; run
    // gossipsub's heartbeats for a while and see that it does not recover by itself.
    const beats = (a.services.pubsub as unknown as { heartbeatTicks: number }).heartbeatTicks
    await waitFor(
      () => (a.services.pubsub as unknown as { heartbeatTicks: number }).heartbeatTicks >= beats + 10,
      10_000,
      'ten heartbeats'
    )
    assert.equal(knows(a, b), false)
    assert.equal(knows(b, a), false)
    assert.equal(a.getConnections(b.peerId).length, 1)
    // One side's sweep mends both: b answers a's new stream with one of its own.
    assert.equal(await a.services.gossipKeeper.sweep(), 1, 'a sweep hands it back')
    await waitFor(() => knows(a, b) && knows(b, a), 10_000, 'both to know each other again')
    await waitFor(() => internals(b).getMeshPeers(TOPIC).length === 1, 10_000, 'b mesh again')
    const back: string[] = []
    a.services.pubsub.addEventListener('message', (e) => back.push(new TextDecoder().decode(e.detail.data)))
    await b.services.pubsub.publish(TOPIC, new TextEncoder().encode('from b'))
    await waitFor(() => back.includes('from b'), 10_000, 'a to receive')
  })

  it('hands back the newest of two connections (an older one may be the stale one)', async () => {
    const { a, b } = await pair(3_600_000)
    nodes.push(a, b)
    await a.dial(b.getMultiaddrs()[0]!, { force: true })
    await waitFor(() => a.getConnections(b.peerId).length === 2, 5_000, 'a second connection')
    const [older, newer] = [...a.getConnections(b.peerId)].sort((x, y) => x.timeline.open - y.timeline.open)
    streamsFailed(a, b)
    assert.equal(await a.services.gossipKeeper.sweep(), 1)
    const gossipOn = (c: typeof older): boolean =>
      c!.streams.some((st) => st.direction === 'outbound' && st.protocol?.startsWith('/meshsub/') === true)
    await waitFor(() => gossipOn(newer), 10_000, 'a gossip stream on the newer connection')
    assert.equal(gossipOn(older), false, 'none on the older one')
  })

  it('leaves alone peers gossipsub knows and peers that do not speak gossipsub', async () => {
    const { a, b } = await pair(3_600_000)
    nodes.push(a, b)
    assert.equal(await a.services.gossipKeeper.sweep(), 0)
    const c = await startNode(identityOf(73), { keeper: { intervalMs: 3_600_000 } })
    nodes.push(c)
    await (c.services.pubsub as unknown as Startable).stop() // unregisters the gossipsub protocols
    await connect(a, c)
    let identified = false
    await waitFor(
      () => {
        void a.peerStore.get(c.peerId).then(
          (p) => (identified = p.protocols.includes('/ipfs/id/1.0.0')),
          () => {}
        )
        return identified
      },
      5_000,
      'a to identify c'
    )
    assert.equal(await a.services.gossipKeeper.sweep(), 0, 'c does not speak gossipsub')
    assert.equal(a.services.gossipKeeper.stats().repairs, 0)
  })

  describe('the IP-colocation penalty (gossipsub score P6)', () => {
    const RELAY = '198.18.0.2'
    const RELAY_PEER = '12D3KooWHmhRcuYLnKefw2K2P4BgWstXxRFfV5AfE13zRDZDAG4A'
    const BEHIND = '12D3KooWCX9qURwTDD7mHp1RvYqLsDPTEAmvmEPu2DBJNiDMFnAt'
    interface Score {
      addPeer(id: string): void
      addIP(id: string, ip: string): void
      score(id: string): number
      scoreCache: Map<string, unknown>
    }

    /** A keeper on a real gossipsub whose score knows 16 peers that all show `ip`. */
    async function colocated(
      ip: string
    ): Promise<{ keeper: GossipKeeper; events: EventTarget; score: () => number }> {
      const node = await startNode(identityOf(74))
      nodes.push(node)
      const pubsub = node.services.pubsub
      const ps = (pubsub as unknown as { score: Score }).score
      const ids = Array.from({ length: 16 }, (_, i) => `peer-${ip}-${i}`)
      for (const id of ids) {
        ps.addPeer(id)
        ps.addIP(id, ip)
      }
      const events = new EventTarget()
      const keeper = new GossipKeeper({
        events,
        connectionManager: { getConnections: () => [] },
        peerStore: {},
        logger: defaultLogger(),
        pubsub
      } as unknown as GossipKeeperComponents)
      keeper.start()
      const score = (): number => {
        ps.scoreCache.clear()
        return ps.score(ids[0]!)
      }
      return { keeper, events, score }
    }

    const opened = (events: EventTarget, addr: string): void =>
      void events.dispatchEvent(
        new CustomEvent('connection:open', { detail: { remoteAddr: multiaddr(addr) } })
      )

    it('exempts the IP of a relay, which gossipsub takes for every peer behind it', async () => {
      const { keeper, events, score } = await colocated(RELAY)
      // 16 peers on one IP: (16 − 10)² × −5 = −180, under gossipsub's graylist threshold (−80)
      assert.equal(score(), -180)
      opened(events, `/ip4/${RELAY}/tcp/4001/p2p/${RELAY_PEER}`) // a direct connection: no change
      assert.equal(score(), -180)
      opened(events, `/ip4/${RELAY}/tcp/4001/p2p/${RELAY_PEER}/p2p-circuit/p2p/${BEHIND}`)
      assert.equal(score(), 0)
      assert.deepEqual(keeper.stats().relayIps, [RELAY])
      assert.equal(keeper.stats().colocationPenalty, true, 'still on for other IPs')
      keeper.stop()
    })

    it('is off in a private swarm (colocationPenalty(false)) and back with true', async () => {
      const { keeper, score } = await colocated('198.18.0.3')
      assert.equal(score(), -180)
      keeper.colocationPenalty(false)
      assert.equal(score(), 0)
      assert.equal(keeper.stats().colocationPenalty, false)
      keeper.colocationPenalty(true)
      assert.equal(score(), -180)
      keeper.stop()
    })
  })
})
