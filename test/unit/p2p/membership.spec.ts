import assert from 'node:assert/strict'
import type { Connection, Stream } from '@libp2p/interface'
import { varint } from 'multiformats'
import type { Identity } from '../../../src/identity/index.js'
import {
  createSwarm,
  GossipService,
  issueCredential,
  MEMBERSHIP_PROTOCOL,
  PeerAccessList,
  swarmTopics,
  SwarmMembership,
  p2pConstants
} from '../../../src/p2p/index.js'
import type { GossipMeta, JobMessage, MembershipEventDetail } from '../../../src/p2p/index.js'
import { connect, identityOf, meshHas, sleep, startNode, stopAll, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

const { DENY_TRANSIENT_TTL_MS } = p2pConstants

const founder = identityOf(40)
const { swarm } = createSwarm({ name: 'private-test', private: true, founder })
const topics = swarmTopics(swarm.id)
const JOBS = topics.jobs.topic
const HANDSHAKE_MS = 800
const enc = new TextEncoder()

interface Member {
  identity: Identity
  node: TestNode
  access: PeerAccessList
  membership: SwarmMembership
  gossip: GossipService
  inbox: Array<{ msg: JobMessage; meta: GossipMeta }>
  refused: MembershipEventDetail[]
}

async function startMember(seed: number, credential?: string, now?: () => number): Promise<Member> {
  const identity = identityOf(seed)
  const access = new PeerAccessList(now === undefined ? {} : { now })
  const node = await startNode(identity, { connectionGater: access.gater })
  const jwt = credential ?? (await issueCredential(founder, swarm, identity.did, { expiresIn: 3600 }))
  const membership = new SwarmMembership(
    { node, access },
    {
      swarm,
      credential: jwt,
      handshakeTimeoutMs: HANDSHAKE_MS,
      sweepIntervalMs: 100,
      ...(now ? { now } : {})
    }
  )
  const refused: MembershipEventDetail[] = []
  membership.addEventListener('refused', (evt) =>
    refused.push((evt as CustomEvent<MembershipEventDetail>).detail)
  )
  await membership.start()
  const gossip = new GossipService(
    { pubsub: node.services.pubsub, access: membership },
    { topics: [topics.jobs] }
  )
  gossip.start()
  const inbox: Member['inbox'] = []
  gossip.subscribe(topics.jobs, (msg, meta) => {
    inbox.push({ msg, meta })
  })
  return { identity, node, access, membership, gossip, inbox, refused }
}

async function stopMembers(members: Member[]): Promise<void> {
  for (const m of members) {
    m.gossip.stop()
    await m.membership.stop()
  }
  await stopAll(members.map((m) => m.node))
}

/** Sends one handshake frame by hand and returns the reply frame (the peer closes after it). */
async function handshakeByHand(stream: Stream, credential: string): Promise<Record<string, unknown>> {
  const body = enc.encode(JSON.stringify({ v: 1, credential }))
  const prefix = varint.encodeTo(body.length, new Uint8Array(varint.encodingLength(body.length)))
  stream.send(new Uint8Array([...prefix, ...body]))
  const chunks: number[] = []
  for await (const chunk of stream) {
    chunks.push(...(chunk instanceof Uint8Array ? chunk : chunk.subarray()))
    const bytes = Uint8Array.from(chunks)
    try {
      const [len, off] = varint.decode(bytes)
      if (bytes.length >= off + len) {
        return JSON.parse(new TextDecoder().decode(bytes.subarray(off, off + len))) as Record<string, unknown>
      }
    } catch {
      // prefix incomplete
    }
  }
  throw new Error('stream ended without a reply frame')
}

describe('p2p: private swarm membership', function () {
  this.timeout(30_000)
  let a: Member
  let b: Member
  let c: Member
  const extra: TestNode[] = []
  const extraMembers: Member[] = []

  before(async () => {
    a = await startMember(41)
    b = await startMember(42)
    c = await startMember(43)
  })

  after(async () => {
    await stopMembers([a, b, c, ...extraMembers])
    await stopAll(extra)
  })

  it('members verify each other on connect and their gossip is delivered along a line', async () => {
    await connect(a.node, b.node)
    await connect(b.node, c.node)
    await waitFor(
      () =>
        a.membership.isMember(b.node.peerId) &&
        b.membership.isMember(a.node.peerId) &&
        b.membership.isMember(c.node.peerId) &&
        c.membership.isMember(b.node.peerId),
      5_000,
      'mutual verification'
    )
    assert.equal(a.access.allowance(b.node.peerId)?.did, b.identity.did)
    await waitFor(
      () => meshHas(b.node, JOBS, [a.node, c.node]) && meshHas(c.node, JOBS, [b.node]),
      5_000,
      'mesh'
    )

    await a.gossip.publish(topics.jobs, { type: 'announce', jobId: 'p-1' })
    await waitFor(() => c.inbox.length === 1 && b.inbox.length === 1, 5_000, 'delivery to b and c')
    assert.equal(c.inbox[0]!.meta.did, a.identity.did)
    assert.equal(
      c.membership.isMember(a.node.peerId),
      false,
      'c never met a: its credential rode on the message'
    )
    assert.deepEqual(a.refused, [])
    assert.deepEqual(c.gossip.stats()[JOBS]!.rejected, {})
  })

  it('refuses a non-member that presents nothing: disconnected, denied, its gossip rejected', async () => {
    const n = await startNode(identityOf(50))
    extra.push(n)
    const heard: string[] = []
    n.services.pubsub.addEventListener('message', (evt) => heard.push(evt.detail.topic))
    n.services.pubsub.subscribe(JOBS)
    await connect(n, a.node)
    await waitFor(
      () => n.services.pubsub.getSubscribers(JOBS).some((p) => p.equals(a.node.peerId)),
      5_000,
      'n sees a subscribed'
    )
    // a well-formed, signed message from the non-member, sent while its handshake is due
    await n.services.pubsub.publish(
      JOBS,
      enc.encode(JSON.stringify({ v: 1, body: { type: 'x', jobId: 'evil' } }))
    )

    await waitFor(() => a.refused.some((r) => r.peerId.equals(n.peerId)), 5_000, 'refusal')
    const refusal = a.refused.find((r) => r.peerId.equals(n.peerId))!
    assert.equal(refusal.reason, 'handshake_timeout')
    assert.equal(refusal.did, identityOf(50).did)
    await waitFor(() => a.node.getConnections(n.peerId).length === 0, 5_000, 'disconnection')
    assert.equal(a.access.denial(n.peerId)?.reason, 'handshake_timeout')
    // A handshake that failed on the network is retried soon; a bad credential is not.
    assert.ok(a.access.denial(n.peerId)!.until - Date.now() <= DENY_TRANSIENT_TTL_MS)
    await waitFor(
      () => (a.gossip.stats()[JOBS]!.rejected.not_member ?? 0) === 1,
      5_000,
      'not_member rejection'
    )
    assert.ok(!a.inbox.some((m) => m.msg.jobId === 'evil'))

    // the gater now refuses it both ways
    await waitFor(() => n.getConnections(a.node.peerId).length === 0, 5_000, 'disconnection seen by n')
    // (n may see its redial complete for an instant: a's gater refuses it after the noise
    // handshake, when n's side may already have finished; a never opens a connection)
    let reopened = 0
    const onOpen = (evt: CustomEvent<Connection>): void => {
      if (evt.detail.remotePeer.equals(n.peerId)) reopened++
    }
    a.node.addEventListener('connection:open', onOpen)
    await connect(n, a.node).catch(() => {})
    await waitFor(() => n.getConnections(a.node.peerId).length === 0, 5_000, 'redial closed')
    a.node.removeEventListener('connection:open', onOpen)
    assert.equal(reopened, 0)
    await assert.rejects(a.node.dial(n.peerId))
    assert.equal(a.node.getConnections(n.peerId).length, 0)

    // and it hears nothing the members say
    await a.gossip.publish(topics.jobs, { type: 'announce', jobId: 'p-2' })
    await waitFor(() => c.inbox.some((m) => m.msg.jobId === 'p-2'), 5_000, 'members still served')
    await sleep(200)
    assert.deepEqual(heard, [])
  })

  it('refuses forged and stolen credentials and tells the peer why', async () => {
    const stranger = identityOf(51)
    const forged = await stranger.signJwt({ swarm: swarm.id, sub: stranger.did }, { expiresIn: 3600 })
    const m1 = await startNode(stranger)
    const m2 = await startNode(identityOf(52))
    extra.push(m1, m2)
    const stolen = b.membership.credential() // b's valid credential, presented by m2

    for (const [node, jwt, reason] of [
      [m1, forged, 'issuer_not_founder'],
      [m2, stolen, 'subject_mismatch']
    ] as const) {
      await connect(node, a.node)
      const stream = await node.dialProtocol(a.node.peerId, MEMBERSHIP_PROTOCOL)
      const reply = await handshakeByHand(stream, jwt)
      assert.deepEqual(reply, { v: 1, refused: { code: 'NOT_A_MEMBER', reason } })
      await waitFor(() => a.node.getConnections(node.peerId).length === 0, 5_000, 'disconnection')
      assert.equal(a.access.denial(node.peerId)?.reason, reason)
    }
  })

  it('refuses a member whose credential has expired', async () => {
    // v's clock is two hours ahead: e's one-hour credential has expired there
    const vCredential = await issueCredential(founder, swarm, identityOf(53).did, { expiresIn: 86_400 })
    const v = await startMember(53, vCredential, () => Date.now() + 2 * 3600_000)
    const e = await startMember(56)
    extraMembers.push(v, e)
    await connect(e.node, v.node)
    await waitFor(() => v.refused.some((r) => r.peerId.equals(e.node.peerId)), 5_000, 'refusal')
    assert.equal(v.access.denial(e.node.peerId)?.reason, 'expired')
    assert.ok(v.access.denial(e.node.peerId)!.until - Date.now() > DENY_TRANSIENT_TTL_MS)
    await waitFor(() => e.refused.some((r) => r.peerId.equals(v.node.peerId)), 5_000, 'refusal seen by e')
    const seen = e.refused.find((r) => r.peerId.equals(v.node.peerId))
    assert.equal(seen?.reason, 'refused_by_peer')
    assert.match(seen?.detail ?? '', /CREDENTIAL_EXPIRED\/expired/)
    await waitFor(() => v.node.getConnections(e.node.peerId).length === 0, 5_000, 'disconnection')
    assert.equal(v.membership.isMember(e.node.peerId), false)
  })

  it('disconnects a member once its credential expires', async () => {
    let offset = 0
    const g = await startMember(54, undefined, () => Date.now() + offset)
    const f = await startMember(55)
    extraMembers.push(g, f)
    await connect(f.node, g.node)
    await waitFor(() => g.membership.isMember(f.node.peerId), 5_000, 'verification')
    offset = 2 * 3600_000 // f's one-hour credential is now stale on g's clock
    await waitFor(() => g.node.getConnections(f.node.peerId).length === 0, 5_000, 'disconnection')
    assert.equal(g.access.denial(f.node.peerId)?.reason, 'expired')
  })
})
