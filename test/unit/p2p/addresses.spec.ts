import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { advertisable, dialableFrom, ipScope, parseExchangeAnswer } from '../../../src/p2p/index.js'

const m = (s: string): ReturnType<typeof multiaddr> => multiaddr(s)

describe('p2p addresses', () => {
  it('classifies IP scopes', () => {
    assert.equal(ipScope('127.0.0.1'), 'loopback')
    assert.equal(ipScope('0.0.0.0'), 'unspecified')
    assert.equal(ipScope('169.254.1.2'), 'link-local')
    assert.equal(ipScope('10.1.2.3'), 'private')
    assert.equal(ipScope('100.64.0.1'), 'private')
    assert.equal(ipScope('192.168.1.1'), 'private')
    assert.equal(ipScope('198.18.0.7'), 'public')
    assert.equal(ipScope('fe80::1'), 'link-local')
    assert.equal(ipScope('fd00::1'), 'private')
    assert.equal(ipScope('::1'), 'loopback')
  })

  it('dials loopback only from loopback, private only on a shared LAN, never link-local', () => {
    const lan = { own: [m('/ip4/10.0.1.2/tcp/4001')] }
    const loop = { own: [m('/ip4/127.0.0.1/tcp/4001')] }
    const pub = { own: [m('/ip4/198.18.0.2/tcp/4001'), m('/ip4/127.0.0.1/tcp/4001')] }
    assert.equal(
      dialableFrom(m('/ip4/127.0.0.1/tcp/5/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'), loop),
      true
    )
    assert.equal(dialableFrom(m('/ip4/127.0.0.1/tcp/5'), pub), false)
    assert.equal(dialableFrom(m('/ip4/10.0.1.9/tcp/5'), lan), true)
    assert.equal(dialableFrom(m('/ip4/10.0.1.9/tcp/5'), { ...lan, allowPrivate: false }), false)
    assert.equal(dialableFrom(m('/ip4/10.7.1.9/tcp/5'), lan), false)
    assert.equal(dialableFrom(m('/ip4/192.168.1.9/tcp/5'), pub), false)
    assert.equal(dialableFrom(m('/ip4/169.254.3.3/tcp/5'), lan), false)
    assert.equal(dialableFrom(m('/ip4/198.18.0.9/tcp/5'), lan), true)
    assert.equal(
      dialableFrom(
        m('/ip4/198.18.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit'),
        lan
      ),
      true
    )
    assert.equal(dialableFrom(m('/dns4/example.org/tcp/5'), lan), true)
  })

  it('advertises loopback only when there is nothing else', () => {
    assert.deepEqual(
      advertisable([m('/ip4/127.0.0.1/tcp/1'), m('/ip4/198.18.0.2/tcp/1'), m('/ip4/169.254.0.1/tcp/1')]).map(
        String
      ),
      ['/ip4/198.18.0.2/tcp/1']
    )
    assert.deepEqual(advertisable([m('/ip4/127.0.0.1/tcp/1')]).map(String), ['/ip4/127.0.0.1/tcp/1'])
  })

  it('parses exchange answers defensively', () => {
    const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
    assert.throws(() => parseExchangeAnswer(new TextEncoder().encode('{')), { code: 'EXCHANGE_MALFORMED' })
    assert.throws(() => parseExchangeAnswer(enc({ v: 2, peers: [] })), { code: 'EXCHANGE_MALFORMED' })
    const many = Array.from({ length: 100 }, (_, i) => ({
      id: `p${i}`,
      addrs: Array(40).fill('/ip4/1.2.3.4/tcp/1')
    }))
    const parsed = parseExchangeAnswer(enc({ v: 1, peers: [...many, { id: 7, addrs: [] }] }))
    assert.equal(parsed.length, 64)
    assert.equal(parsed[0]!.addrs.length, 16)
  })
})
