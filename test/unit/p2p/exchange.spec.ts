import assert from 'node:assert/strict'
import { PeerAccessList, type ExchangeInit, createSwarm } from '../../../src/p2p/index.js'
import { connect, identityOf, startMember, startNode, stopAll, waitFor, type TestMember } from './helpers.js'

describe('p2p: peer exchange among members', function () {
  this.timeout(30_000)
  const { swarm, founder } = createSwarm({ name: 'pex', private: true })
  const started: Array<{ stop(): Promise<void> | void }> = []

  const member = async (seed: number, init: ExchangeInit = {}): Promise<TestMember> =>
    startMember({ swarm, founder, started }, seed, init)

  after(async () => stopAll(started))

  it('two members that only know a third find and connect to each other', async () => {
    const hub = await member(90)
    const a = await member(91)
    const b = await member(92)
    await connect(a.node, hub.node)
    await waitFor(() => a.membership.isMember(hub.node.peerId), 5_000, 'a verified')
    await connect(b.node, hub.node)
    await waitFor(() => b.node.getConnections(a.node.peerId).length > 0, 10_000, 'b connected to a')
    await waitFor(() => b.membership.isMember(a.node.peerId), 5_000, 'b verified a')
    assert.ok(b.exchange.stats().learned >= 1)
    assert.ok(hub.exchange.stats().served >= 2)
    // The hub's answer names verified members with their addresses.
    const known = await hub.exchange.knownPeers()
    assert.deepEqual(
      new Set(known.map((p) => p.id)),
      new Set([a.node.peerId.toString(), b.node.peerId.toString()])
    )
    assert.ok(known.every((p) => p.addrs.length > 0))
  })

  it('a member that lost every connection rejoins: through the members it knew, else its seeds', async () => {
    const hub = await member(95)
    const seedAddr = hub.node.getMultiaddrs()[0]!.toString()
    // Knew the hub, then every connection dropped (a network change): nothing else redials it.
    const a = await member(96, { rejoinMs: 200, seeds: [] })
    await connect(a.node, hub.node)
    await waitFor(() => a.membership.isMember(hub.node.peerId), 5_000, 'a verified the hub')
    await a.node.hangUp(hub.node.peerId)
    assert.equal(a.node.getConnections().length, 0)
    await waitFor(() => a.membership.isMember(hub.node.peerId), 10_000, 'a back with the hub')
    assert.ok(a.exchange.stats().rejoined >= 1)
    // Never connected to anyone: only the seeds (an invite's bootstrap) are left.
    const b = await member(97, { rejoinMs: 200, seeds: [seedAddr] })
    await waitFor(() => b.membership.isMember(hub.node.peerId), 10_000, 'b joined through its seed')
    assert.ok(b.exchange.stats().rejoined >= 1)
    // A member with nowhere to go keeps trying, backing off, and never throws.
    const c = await member(98, {
      rejoinMs: 100,
      seeds: ['/ip4/127.0.0.1/tcp/9/p2p/' + hub.node.peerId.toString()]
    })
    await waitFor(() => c.exchange.stats().rejoins >= 2, 10_000, 'c tried more than once')
    assert.equal(c.exchange.stats().rejoined, 0)
  })

  it('a member redials the members it lost while others stay connected (a partition heals)', async () => {
    const hub = await member(99, { rejoinMs: 200, timeoutMs: 2_000 })
    const a = await member(100, { rejoinMs: 200, timeoutMs: 2_000 })
    const b = await member(101, { rejoinMs: 200, timeoutMs: 2_000 })
    await connect(a.node, hub.node)
    await waitFor(() => a.membership.isMember(hub.node.peerId), 5_000, 'a verified the hub')
    await connect(b.node, hub.node)
    await waitFor(() => a.membership.isMember(b.node.peerId), 10_000, 'a and b found each other')
    // The link between a and b drops; both still have the hub, whose answers name only the
    // members it is connected to — so nothing but a redial brings them back together.
    await a.node.hangUp(b.node.peerId)
    await b.node.hangUp(a.node.peerId)
    // (A redial that races the hang-up can fail its handshake: that peer is then denied for
    // DENY_TRANSIENT_TTL_MS only, not shut out, and the redial succeeds after it.)
    await waitFor(
      () => a.exchange.stats().redialed + b.exchange.stats().redialed >= 1,
      40_000,
      'a or b redialed the other'
    )
    await waitFor(() => a.node.getConnections(b.node.peerId).length > 0, 40_000, 'a and b reconnected')
    assert.equal(a.exchange.stats().rejoins, 0, 'never without a member')
  })

  it('a relay serves reservations and relayed connections for verified members only', async () => {
    const relay = await member(93)
    const m = await member(94)
    await connect(m.node, relay.node)
    await waitFor(() => relay.membership.isMember(m.node.peerId), 5_000, 'member verified')
    const gater = relay.access.gater
    assert.equal(await gater.denyInboundRelayReservation!(m.node.peerId), false)
    const outsider = await startNode(identityOf(95))
    started.push(outsider)
    assert.equal(await gater.denyInboundRelayReservation!(outsider.peerId), true)
    assert.equal(await gater.denyOutboundRelayedConnection!(outsider.peerId, m.node.peerId), true)
    // With no private swarm enforced, a member relay (limits lifted) serves nobody.
    const bare = new PeerAccessList()
    assert.equal(await bare.gater.denyInboundRelayReservation!(m.node.peerId), true)
  })
})
