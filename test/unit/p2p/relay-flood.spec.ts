/**
 * Reservation floods at a member relay of a private swarm: outsiders asking for reservations get
 * none (the swarm's gater refuses them) and take no slot from members; members beyond the relay's
 * `maxReservations` are refused while the members that hold one keep it and stay reachable
 * through the relay.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import {
  PeerAccessList,
  PeerExchange,
  SwarmMembership,
  createSwarm,
  issueCredential,
  libp2pOptions
} from '../../../src/p2p/index.js'
import { FAST_GOSSIP, identityOf, stopAll, waitFor, type TestNode } from './helpers.js'

interface Circuit {
  reservations: { size: number; has(peer: unknown): boolean }
}

describe('p2p: reservation floods at a member relay', function () {
  this.timeout(60_000)
  const { swarm, founder } = createSwarm({ name: 'flood', private: true })
  const started: Array<{ stop(): Promise<void> | void }> = []
  after(async () => stopAll(started))

  /**
   * A member of the swarm: `serve`, a member relay with that many reservations; else it looks for
   * a relay among the peers it connects to, as a daemon does (`/p2p-circuit`).
   */
  async function member(
    seed: number,
    opts: { serve?: number } = {}
  ): Promise<{ node: TestNode; membership: SwarmMembership }> {
    const identity = identityOf(seed)
    const access = new PeerAccessList()
    const node = await createLibp2p(
      libp2pOptions({
        privateKey: identity.libp2pPrivateKey,
        gossip: FAST_GOSSIP,
        connectionGater: access.gater,
        natTraversal: false,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        ...(opts.serve !== undefined
          ? { relay: { serve: true, unlimited: true, maxReservations: opts.serve } }
          : {})
      })
    )
    const credential = await issueCredential(founder, swarm, identity.did, { expiresIn: 3600 })
    const membership = new SwarmMembership({ node, access }, { swarm, credential, handshakeTimeoutMs: 2_000 })
    await membership.start()
    const exchange = new PeerExchange({ node, members: membership }, { intervalMs: 0, rejoinMs: 0 })
    await exchange.start()
    started.push(exchange, membership, node)
    return { node, membership }
  }

  const circuitAddrs = (node: TestNode): string[] =>
    node
      .getMultiaddrs()
      .map((a) => a.toString())
      .filter((a) => a.includes('/p2p-circuit'))

  it('outsiders get no reservation and take no slot; members past the limit are refused, the others keep theirs', async () => {
    const relay = await member(150, { serve: 2 })
    const circuit = (relay.node.services as unknown as { relay: Circuit }).relay
    const relayAddr = relay.node.getMultiaddrs()[0]!

    // Ten outsiders (no credential) dial the relay at once, each looking for a relay to reserve on.
    const outsiders = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const o = await createLibp2p(
          libp2pOptions({ privateKey: identityOf(160 + i).libp2pPrivateKey, natTraversal: false })
        )
        started.push(o)
        await o.dial(relayAddr).catch(() => {}) // refused or not: no reservation either way
        return o
      })
    )
    await new Promise((r) => setTimeout(r, 2_000))
    for (const o of outsiders) assert.deepEqual(circuitAddrs(o), [], 'an outsider has a relayed address')
    assert.equal(circuit.reservations.size, 0, 'an outsider holds a reservation')

    // Members: two get the relay's two slots, a third is refused; the first two keep theirs.
    const a = await member(151)
    const b = await member(152)
    await a.node.dial(relayAddr)
    await b.node.dial(relayAddr)
    await waitFor(() => circuit.reservations.size === 2, 20_000, 'two members reserved')
    await waitFor(
      () => circuitAddrs(a.node).length > 0 && circuitAddrs(b.node).length > 0,
      20_000,
      'relayed addresses'
    )
    const c = await member(153)
    await c.node.dial(relayAddr)
    await waitFor(() => c.membership.isMember(relay.node.peerId), 10_000, 'c verified the relay')
    await new Promise((r) => setTimeout(r, 2_000))
    assert.deepEqual(circuitAddrs(c.node), [], 'a member past the limit holds no relayed address')
    assert.equal(circuit.reservations.size, 2)
    assert.ok(circuit.reservations.has(a.node.peerId) && circuit.reservations.has(b.node.peerId))

    // The relay still carries members: c reaches a through it.
    const conn = await c.node.dial(multiaddr(circuitAddrs(a.node)[0]!), { force: true })
    assert.ok(conn.remoteAddr.toString().includes('/p2p-circuit'))
    assert.equal(conn.status, 'open')
  })
})
