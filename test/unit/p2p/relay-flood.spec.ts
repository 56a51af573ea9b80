/**
 * Reservation floods at a member relay of a private swarm: outsiders asking for reservations get
 * none (the swarm's gater refuses them) and take no slot from members; members beyond the relay's
 * `maxReservations` are refused while the members that hold one keep it and stay reachable
 * through the relay.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { createSwarm } from '../../../src/p2p/index.js'
import {
  identityOf,
  startMember,
  startNode,
  stopAll,
  waitFor,
  type TestMember,
  type TestNode
} from './helpers.js'

interface Circuit {
  reservations: { size: number; has(peer: unknown): boolean }
}

describe('p2p: reservation floods at a member relay', function () {
  this.timeout(60_000)
  const { swarm, founder } = createSwarm({ name: 'flood', private: true })
  const started: Array<{ stop(): Promise<void> | void }> = []
  after(async () => stopAll(started))

  /** A member of the swarm; `serve`: a member relay with that many reservations. */
  const member = async (seed: number, serve?: number): Promise<TestMember> =>
    startMember(
      { swarm, founder, started },
      seed,
      {},
      serve === undefined ? undefined : { serve: true, unlimited: true, maxReservations: serve }
    )

  const circuitAddrs = (node: TestNode): string[] =>
    node
      .getMultiaddrs()
      .map((a) => a.toString())
      .filter((a) => a.includes('/p2p-circuit'))

  it('outsiders get no reservation and take no slot; members past the limit are refused, the others keep theirs', async () => {
    const relay = await member(150, 2)
    const circuit = (relay.node.services as unknown as { relay: Circuit }).relay
    const relayAddr = relay.node.getMultiaddrs()[0]!

    // Ten outsiders (no credential) dial the relay at once, each looking for a relay to reserve on.
    const outsiders = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const o = await startNode(identityOf(160 + i))
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
