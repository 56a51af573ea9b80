import assert from 'node:assert/strict'
import type { PeerId } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import {
  ItemSync,
  PeerAccessList,
  SwarmMembership,
  createSwarm,
  groupDigest,
  issueCredential,
  type GroupDigest,
  type ItemSource,
  type ItemSyncInit
} from '../../../src/p2p/index.js'
import { connect, identityOf, startNode, stopAll, waitFor, type TestNode } from './helpers.js'

const PROTOCOL = '/shoal/1/test-sync/1.0.0'
const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))

/** Items `payload(<group>:<n>)` with id `<group>:<n>`; `accept` refuses anything else. */
class MemorySource implements ItemSource {
  readonly items = new Map<string, string>()
  /** Every id `get` was asked for (what this node sent or was about to send). */
  readonly requested: string[] = []

  constructor(ids: string[] = []) {
    for (const id of ids) this.items.set(id, `payload(${id})`)
  }

  async digests(): Promise<Map<string, GroupDigest>> {
    const groups = new Map<string, string[]>()
    for (const id of this.items.keys()) {
      const g = id.split(':')[0]!
      groups.set(g, [...(groups.get(g) ?? []), id])
    }
    return new Map([...groups].map(([g, ids]) => [g, groupDigest(ids)]))
  }

  async ids(group: string): Promise<string[]> {
    return [...this.items.keys()].filter((id) => id.startsWith(`${group}:`))
  }

  async get(ids: readonly string[]): Promise<string[]> {
    this.requested.push(...ids)
    return ids.flatMap((id) => {
      const item = this.items.get(id)
      return item === undefined ? [] : [item]
    })
  }

  async accept(items: string[], _from: PeerId): Promise<number> {
    let n = 0
    for (const item of items) {
      const id = this.idOf(item)
      if (!/^payload\([a-z0-9]+:\d+\)$/.test(item) || this.items.has(id)) continue
      this.items.set(id, item)
      n++
    }
    return n
  }

  idOf(item: string): string {
    return item.replace(/^payload\((.*)\)$/, '$1')
  }

  sorted(): string[] {
    return [...this.items.keys()].sort()
  }
}

const range = (group: string, from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => `${group}:${from + i}`)

describe('p2p: item sync (anti-entropy) among members', function () {
  this.timeout(60_000)
  const started: Array<{ stop(): Promise<void> | void }> = []

  interface Peer {
    node: TestNode
    source: MemorySource
    sync: ItemSync
  }

  async function peer(seed: number, ids: string[], init: Partial<ItemSyncInit> = {}): Promise<Peer> {
    const node = await startNode(identityOf(seed))
    const source = new MemorySource(ids)
    const sync = new ItemSync({ node, source }, { protocol: PROTOCOL, intervalMs: 0, ...init })
    await sync.start()
    started.push(sync, node)
    return { node, source, sync }
  }

  after(async () => stopAll(started))

  it('two nodes end with the union, and only the missing items travel', async () => {
    const a = await peer(120, range('g1', 0, 10))
    const b = await peer(121, [...range('g1', 5, 15), ...range('g2', 0, 3)])
    await connect(a.node, b.node)
    const ra = await a.sync.syncWith(b.node.peerId)
    const rb = await b.sync.syncWith(a.node.peerId)
    assert.ok(ra.ok && rb.ok)
    const union = [...range('g1', 0, 15), ...range('g2', 0, 3)].sort()
    await waitFor(() => a.source.items.size === union.length && b.source.items.size === union.length)
    assert.deepEqual(a.source.sorted(), union)
    assert.deepEqual(b.source.sorted(), union)
    // a lacked 8 (g1:10–14, g2:0–2), b lacked 5 (g1:0–4): each crossed once, nothing else did.
    const sa = a.sync.stats()
    const sb = b.sync.stats()
    assert.equal(sa.received, 8)
    assert.equal(sa.accepted, 8)
    assert.equal(sb.sent, 8)
    assert.equal(sb.received, 5)
    assert.equal(sb.accepted, 5)
    assert.equal(sa.sent, 5)
    assert.deepEqual(new Set(b.source.requested), new Set([...range('g1', 10, 15), ...range('g2', 0, 3)]))
    assert.deepEqual(new Set(a.source.requested), new Set(range('g1', 0, 5)))
    assert.deepEqual(sa.malformed, {})
    assert.equal(sa.failed + sb.failed, 0)
    // In step now: another sync moves nothing.
    const again = await a.sync.syncWith(b.node.peerId)
    assert.equal(again.received, 0)
    assert.equal(b.sync.stats().sent, 8)
  })

  it('three nodes in a line reach the union; a large gap takes several passes', async () => {
    const a = await peer(122, [...range('a', 0, 12), ...range('s', 0, 2)], { maxWant: 4 })
    const b = await peer(123, [...range('b', 0, 3), ...range('s', 1, 4)], { maxWant: 4 })
    const c = await peer(124, [...range('c', 0, 5), ...range('s', 0, 1)], { maxWant: 4 })
    await connect(a.node, b.node)
    await connect(c.node, b.node)
    const union = [...range('a', 0, 12), ...range('b', 0, 3), ...range('c', 0, 5), ...range('s', 0, 4)].sort()
    const all = [a, b, c]
    for (let i = 0; i < 5 && !all.every((p) => p.source.items.size === union.length); i++) {
      await b.sync.syncNow()
      await Promise.all([a.sync.syncWith(b.node.peerId), c.sync.syncWith(b.node.peerId)])
    }
    for (const p of all) assert.deepEqual(p.source.sorted(), union)
    // c lacked 12 + 3 + 3 = 18 items, 4 per pass at most: at least 5 passes, each item once.
    const sc = c.sync.stats()
    assert.equal(sc.accepted, 18)
    assert.equal(sc.received, 18)
    assert.ok(sc.syncs >= 5, `passes: ${sc.syncs}`)
    assert.equal(
      all.reduce((n, p) => n + p.sync.stats().sent, 0),
      all.reduce((n, p) => n + p.sync.stats().received, 0)
    )
  })

  it('refuses malformed and oversized frames, counts them, and keeps serving', async () => {
    const m = await peer(125, range('m', 0, 3))
    const raw = await startNode(identityOf(126))
    started.push(raw)
    await connect(raw, m.node)
    const send = async (bytes: Uint8Array): Promise<void> => {
      const stream = await raw.dialProtocol(m.node.peerId, PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
      await lp.write(bytes).catch(() => {})
      // The answer to a bad request is a reset stream, never a frame.
      await assert.rejects(lp.read({ signal: AbortSignal.timeout(5_000) }))
    }
    await send(new TextEncoder().encode('not json {'))
    await send(encode({ v: 2, digests: {} }))
    await send(encode({ v: 1, digests: { m: { n: -1, h: 'zz' } } }))
    await send(new Uint8Array(1_100_000).fill(0x20))
    await waitFor(() => Object.values(m.sync.stats().malformed).reduce((n, x) => n + x, 0) === 4)
    assert.deepEqual(m.sync.stats().malformed, { 'not-json': 1, schema: 2, oversized: 1 })
    assert.equal(m.sync.stats().served, 0)

    // A want list over the cap, after a valid request.
    const stream = await raw.dialProtocol(m.node.peerId, PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(encode({ v: 1, digests: {} }))
    const ids = JSON.parse(new TextDecoder().decode((await lp.read()).subarray())) as {
      ids: Record<string, string[]>
    }
    assert.deepEqual(ids.ids, { m: range('m', 0, 3) })
    await lp.write(encode({ want: range('m', 0, 300) }))
    await assert.rejects(lp.read({ signal: AbortSignal.timeout(5_000) }))
    await waitFor(() => m.sync.stats().malformed.schema === 3)

    // The node still serves an honest peer.
    const g = await peer(127, [])
    await connect(g.node, m.node)
    const r = await g.sync.syncWith(m.node.peerId)
    assert.ok(r.ok)
    assert.deepEqual(g.source.sorted(), range('m', 0, 3))
    assert.ok(m.sync.stats().served >= 1)
  })

  it('an asker refuses an answer with items it did not ask for, and stores none of them', async () => {
    const bad = await startNode(identityOf(128))
    started.push(bad)
    await bad.handle(PROTOCOL, async (stream) => {
      try {
        const lp = lpStream(stream)
        await lp.read()
        await lp.write(encode({ ids: { x: ['x:1'] } }))
        await lp.read()
        await lp.write(encode({ items: ['payload(x:1)', 'payload(x:99)'] }))
        await stream.close()
      } catch {
        // the asker resets the stream
      }
    })
    const a = await peer(129, [])
    await connect(a.node, bad)
    const r = await a.sync.syncWith(bad.peerId)
    assert.equal(r.ok, false)
    assert.ok((a.sync.stats().malformed.unrequested ?? 0) >= 1)
    assert.equal(a.source.items.size, 0)
    assert.equal(a.sync.stats().accepted, 0)
  })

  describe('in a private swarm', () => {
    const { swarm, founder } = createSwarm({ name: 'sync', private: true })

    async function member(seed: number, ids: string[]): Promise<Peer & { membership: SwarmMembership }> {
      const identity = identityOf(seed)
      const access = new PeerAccessList()
      const node = await startNode(identity, { connectionGater: access.gater })
      const credential = await issueCredential(founder, swarm, identity.did, { expiresIn: 3600 })
      const membership = new SwarmMembership(
        { node, access },
        { swarm, credential, handshakeTimeoutMs: 1_500 }
      )
      await membership.start()
      const source = new MemorySource(ids)
      const sync = new ItemSync({ node, source, members: membership }, { protocol: PROTOCOL, intervalMs: 0 })
      await sync.start()
      started.push(sync, membership, node)
      return { node, source, sync, membership }
    }

    it('members sync once verified; a non-member gets nothing', async () => {
      const a = await member(130, range('p', 0, 4))
      const b = await member(131, range('p', 2, 7))
      await connect(a.node, b.node)
      // No explicit call: the sync runs when each verifies the other.
      await waitFor(() => a.source.items.size === 7 && b.source.items.size === 7, 10_000, 'union')
      assert.deepEqual(a.source.sorted(), range('p', 0, 7).sort())

      const served = a.source.requested.length
      const outsider = await peer(132, [])
      await connect(outsider.node, a.node)
      const r = await outsider.sync.syncWith(a.node.peerId)
      assert.equal(r.ok, false)
      assert.equal(outsider.source.items.size, 0)
      assert.equal(outsider.sync.stats().received, 0)
      assert.ok(a.sync.stats().refused >= 1)
      assert.equal(a.source.requested.length, served, 'nothing was looked up for the outsider')
    })
  })
})
