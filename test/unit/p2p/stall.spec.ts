/**
 * Peers that dial and stall: a TCP connection that never says a word, and a member that opens
 * peer exchange and never asks. The node closes both and keeps serving everyone else.
 */
import assert from 'node:assert/strict'
import { connect as tcpConnect } from 'node:net'
import type { Stream } from '@libp2p/interface'
import { createSwarm, p2pConstants, type ExchangeInit } from '../../../src/p2p/index.js'
import { connect, startMember, stopAll, waitFor, type TestMember } from './helpers.js'

describe('p2p: peers that dial and stall', function () {
  this.timeout(60_000)
  const { swarm, founder } = createSwarm({ name: 'stall', private: true })
  const started: Array<{ stop(): Promise<void> | void }> = []

  const member = async (seed: number, init: ExchangeInit = {}): Promise<TestMember> =>
    startMember({ swarm, founder, started }, seed, init)

  after(async () => stopAll(started))

  it('a TCP connection that never speaks is closed; members connect meanwhile', async () => {
    const hub = await member(140)
    const [, host, port] = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(hub.node.getMultiaddrs()[0]!.toString())!
    const socket = tcpConnect({ host: host!, port: Number(port) })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // While it stalls, a member connects and is verified.
    const a = await member(141)
    await connect(a.node, hub.node)
    await waitFor(() => hub.membership.isMember(a.node.peerId), 5_000, 'a verified')
    // libp2p's inbound upgrade deadline (10 s) closes the silent socket.
    await closed
    assert.ok(hub.membership.isMember(a.node.peerId))
  })

  it('a member that opens peer exchange and never asks is cut off after the timeout; others are served', async () => {
    const hub = await member(145, { timeoutMs: 500 })
    const staller = await member(146)
    await connect(staller.node, hub.node)
    await waitFor(() => staller.membership.isMember(hub.node.peerId), 5_000, 'staller verified the hub')
    const stream: Stream = await staller.node.dialProtocol(
      hub.node.peerId,
      p2pConstants.PEER_EXCHANGE_PROTOCOL
    )
    const ended = new Promise<void>((resolve) => {
      if (stream.status !== 'open') resolve()
      stream.addEventListener('close', () => resolve(), { once: true })
    })
    const served = hub.exchange.stats().served
    // Another member is served while the stalled stream is open.
    const b = await member(147)
    await connect(b.node, hub.node)
    await waitFor(() => hub.exchange.stats().served > served, 10_000, 'b served')
    await ended
    assert.notEqual(stream.status, 'open')
    assert.ok(hub.node.getConnections(staller.node.peerId).length > 0, 'the member itself stays connected')
  })
})
