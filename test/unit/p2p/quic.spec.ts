/**
 * The QUIC transport (`@chainsafe/libp2p-quic`) in Shoal's libp2p options, and what
 * `netinfo` reports about reachability (a verified public address, and private listen
 * addresses that libp2p marks verified without testing them).
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { libp2pOptions, type P2PServices } from '../../../src/p2p/libp2p.js'
import { isQuic } from '../../../src/p2p/quic.js'
import { NetInfo, type NetInfoComponents } from '../../../src/p2p/netinfo.js'
import { identityOf } from './helpers.js'

describe('p2p: QUIC transport', function () {
  this.timeout(30_000)
  const nodes: Array<Libp2p<P2PServices>> = []
  after(async () => {
    for (const n of nodes) await n.stop()
  })

  it('is added when a listen address is QUIC (or on request), and absent otherwise', () => {
    assert.ok(isQuic('/ip6/3fff::2/udp/4001/quic-v1'))
    assert.ok(isQuic('/ip4/127.0.0.1/udp/0/quic-v1/p2p/12D3KooW'))
    assert.ok(!isQuic('/ip4/127.0.0.1/tcp/4001'))
    assert.ok(!isQuic('/ip4/127.0.0.1/udp/4001/quic'), 'draft-29 QUIC is not supported')
    const key = identityOf(70).libp2pPrivateKey
    assert.equal(libp2pOptions({ privateKey: key }).transports?.length, 2, 'tcp and relay')
    assert.equal(
      libp2pOptions({ privateKey: key, listen: ['/ip4/127.0.0.1/udp/0/quic-v1'] }).transports?.length,
      3
    )
    assert.equal(libp2pOptions({ privateKey: key, quic: true }).transports?.length, 3)
  })

  it('two nodes listening on QUIC connect and ping over it', async () => {
    for (let i = 0; i < 2; i++) {
      nodes.push(
        await createLibp2p(
          libp2pOptions({
            privateKey: identityOf(71 + i).libp2pPrivateKey,
            listen: ['/ip4/127.0.0.1/udp/0/quic-v1'],
            relay: { reserve: false },
            natTraversal: false
          })
        )
      )
    }
    const [a, b] = nodes as [Libp2p<P2PServices>, Libp2p<P2PServices>]
    const addr = b.getMultiaddrs().find((m) => isQuic(m.toString()))
    assert.ok(addr !== undefined, `b listens on QUIC: ${b.getMultiaddrs().join(', ')}`)
    const conn = await a.dial(addr)
    assert.ok(isQuic(conn.remoteAddr.toString()), `a QUIC connection: ${conn.remoteAddr.toString()}`)
    assert.ok((await a.services.ping.ping(b.peerId)) >= 0)
  })
})

describe('p2p: netinfo reachability', () => {
  const PEER = '12D3KooWP35oae73w8AoNUeDMHqebY4yykPAo4gUQwNMncYdWmpH'
  function info(addrs: Array<{ addr: string; type: string; verified: boolean }>): NetInfo {
    const metadata = addrs.map((a) => ({
      multiaddr: multiaddr(a.addr),
      type: a.type,
      verified: a.verified,
      expires: 0
    }))
    const components = {
      peerId: { toString: () => PEER },
      addressManager: {
        getAddressesWithMetadata: () => metadata,
        getAddresses: () => metadata.filter((m) => m.verified).map((m) => m.multiaddr),
        getListenAddrs: () => [],
        getObservedAddrs: () => []
      },
      events: { addEventListener: () => {}, removeEventListener: () => {} }
    } as unknown as NetInfoComponents
    return new NetInfo(components)
  }
  const circuit =
    '/ip6/3fff::2/udp/4001/quic-v1/p2p/12D3KooWP35oae73w8AoNUeDMHqebY4yykPAo4gUQwNMncYdWmpH/p2p-circuit'

  it('advertised: a public listen address not verified yet is handed out (invites name it), with the peer id', () => {
    const r = info([
      { addr: '/ip6/3fff::2/tcp/4001', type: 'transport', verified: false },
      { addr: '/ip4/127.0.0.1/tcp/4001', type: 'transport', verified: true },
      { addr: '/ip6/3fff::9/tcp/50123', type: 'observed', verified: false },
      { addr: circuit, type: 'transport', verified: true }
    ])
    assert.deepEqual(
      r.advertised().sort(),
      [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, `/ip6/3fff::2/tcp/4001/p2p/${PEER}`, circuit].sort()
    )
  })

  it('advertised: a verified observed address is handed out once', () => {
    const r = info([
      { addr: `/ip4/198.18.0.7/tcp/4001/p2p/${PEER}`, type: 'observed', verified: true },
      { addr: '/ip4/198.18.0.7/tcp/4001', type: 'transport', verified: true }
    ])
    assert.deepEqual(r.advertised(), [`/ip4/198.18.0.7/tcp/4001/p2p/${PEER}`])
  })

  it('public: a public listen address that AutoNAT verified', () => {
    const r = info([{ addr: '/ip6/3fff::2/tcp/4001', type: 'transport', verified: true }])
    assert.equal(r.reachability().reachability, 'public')
  })

  it('public: a verified observed address', () => {
    const r = info([
      { addr: '/ip6/fd00::2/udp/4001/quic-v1', type: 'transport', verified: true },
      { addr: '/ip6/3fff::3/udp/4001/quic-v1', type: 'observed', verified: true }
    ])
    assert.equal(r.reachability().reachability, 'public')
  })

  it('private: a relay address and private listen addresses (verified by libp2p without a test)', () => {
    const r = info([
      { addr: '/ip6/fd00:0:0:1::2/udp/4001/quic-v1', type: 'transport', verified: true },
      { addr: '/ip4/198.19.1.2/tcp/4001', type: 'transport', verified: true },
      { addr: circuit, type: 'transport', verified: true },
      { addr: '/ip6/3fff::3/udp/57253/quic-v1', type: 'observed', verified: false }
    ])
    assert.equal(r.reachability().reachability, 'private')
    assert.deepEqual(r.reachability().relay, [circuit])
  })

  it('unknown: a public listen address not (yet) verified, and no relay', () => {
    const r = info([
      { addr: '/ip6/3fff::2/tcp/4001', type: 'transport', verified: false },
      { addr: '/ip4/127.0.0.1/tcp/4001', type: 'transport', verified: true }
    ])
    assert.equal(r.reachability().reachability, 'unknown')
  })
})
