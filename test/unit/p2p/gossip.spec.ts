import assert from 'node:assert/strict'
import { GossipError, GossipService, gossipRejectionTap, swarmTopics } from '../../../src/p2p/index.js'
import type { GossipMeta, JobMessage } from '../../../src/p2p/index.js'
import {
  canSend,
  connect,
  identityOf,
  internals,
  meshHas,
  scoreOf,
  sleep,
  startNode,
  stopAll,
  waitFor
} from './helpers.js'
import type { TestNode } from './helpers.js'

const SWARM = 'btestswarm'
const topics = swarmTopics(SWARM)
const JOBS = topics.jobs.topic
const enc = new TextEncoder()

interface Received {
  msg: JobMessage
  meta: GossipMeta
}

describe('p2p: typed gossip', function () {
  this.timeout(30_000)

  describe('4 nodes in a line', () => {
    const nodes: TestNode[] = []
    const services: GossipService[] = []
    const inbox: Received[][] = [[], [], [], []]

    before(async () => {
      for (let i = 0; i < 4; i++) nodes.push(await startNode(identityOf(10 + i)))
      for (let i = 0; i < 4; i++) {
        const g = new GossipService({ pubsub: nodes[i]!.services.pubsub }, { topics: [topics.jobs] })
        g.start()
        g.subscribe(topics.jobs, (msg, meta) => {
          inbox[i]!.push({ msg, meta })
        })
        services.push(g)
      }
      // a - b - c - d
      for (let i = 0; i < 3; i++) await connect(nodes[i]!, nodes[i + 1]!)
      await waitFor(
        () =>
          nodes.every((n, i) =>
            meshHas(
              n,
              JOBS,
              [nodes[i - 1], nodes[i + 1]].filter((x) => x !== undefined)
            )
          ),
        5_000,
        'mesh'
      )
    })

    after(async () => {
      for (const s of services) s.stop()
      await stopAll(nodes)
    })

    it('a message published at one end reaches every member, with its author', async () => {
      await services[0]!.publish(topics.jobs, { type: 'announce', jobId: 'job-1', extra: 42 })
      await waitFor(() => inbox.slice(1).every((box) => box.length === 1), 5_000, 'delivery to b, c, d')
      for (const box of inbox.slice(1)) {
        const got = box[0]!
        assert.deepEqual(got.msg, { type: 'announce', jobId: 'job-1', extra: 42 })
        assert.ok(got.meta.from.equals(nodes[0]!.peerId))
        assert.equal(got.meta.did, identityOf(10).did)
        assert.equal(got.meta.topic, JOBS)
      }
      assert.ok(inbox[3]![0]!.meta.receivedFrom.equals(nodes[2]!.peerId), 'd heard it from c')
      assert.equal(inbox[0]!.length, 0, 'no echo to the publisher')

      await services[3]!.publish(topics.jobs, { type: 'announce', jobId: 'job-2' })
      await waitFor(() => inbox[0]!.length === 1, 5_000, 'delivery back to a')
      assert.equal(inbox[0]![0]!.meta.did, identityOf(13).did)

      assert.equal(services[0]!.stats()[JOBS]!.published, 1)
      assert.equal(services[0]!.stats()[JOBS]!.delivered, 1)
      assert.equal(services[2]!.stats()[JOBS]!.delivered, 2)
      // pubsub_stats' view of the line: the ends have one neighbour, the middle two
      assert.deepEqual(
        services.map((g) => {
          const t = g.stats({ peers: true })[JOBS]!
          return [t.subscribers, t.mesh]
        }),
        [
          [1, 1],
          [2, 2],
          [2, 2],
          [1, 1]
        ]
      )
      assert.equal(services[0]!.stats()[JOBS]!.mesh, undefined, 'not asked')
    })

    it('refuses to publish what the schema or the size limit forbid, and unknown topics', async () => {
      await assert.rejects(
        services[0]!.publish(topics.jobs, { type: 'announce' } as unknown as JobMessage),
        (err: unknown) => err instanceof GossipError && err.code === 'INVALID_MESSAGE'
      )
      await assert.rejects(
        services[0]!.publish(topics.jobs, { type: 'announce', jobId: 'x', pad: 'p'.repeat(20_000) }),
        (err: unknown) => err instanceof GossipError && err.code === 'MESSAGE_TOO_LARGE'
      )
      await assert.rejects(
        services[0]!.publish('/shoal/1/other/jobs', { type: 'a', jobId: 'b' }),
        (err: unknown) => err instanceof GossipError && err.code === 'UNKNOWN_TOPIC'
      )
      assert.throws(
        () => services[0]!.register({ ...topics.jobs, maxBytes: 2 * 1024 * 1024 }),
        (err: unknown) => err instanceof GossipError && err.code === 'INVALID_TOPIC_SPEC'
      )
    })
  })

  describe('invalid messages', () => {
    let victim: TestNode
    let honest: TestNode
    let attacker: TestNode
    let noSign: TestNode
    let tamperer: TestNode
    let gossip: GossipService
    let honestGossip: GossipService
    const got: JobMessage[] = []

    before(async () => {
      victim = await startNode(identityOf(20))
      honest = await startNode(identityOf(21))
      attacker = await startNode(identityOf(22))
      noSign = await startNode(identityOf(23), { gossip: { globalSignaturePolicy: 'StrictNoSign' } })
      tamperer = await startNode(identityOf(24))
      gossip = new GossipService({ pubsub: victim.services.pubsub }, { topics: [topics.jobs] })
      gossip.start()
      gossip.subscribe(topics.jobs, (msg) => {
        got.push(msg)
      })
      honestGossip = new GossipService({ pubsub: honest.services.pubsub }, { topics: [topics.jobs] })
      honestGossip.start()
      honestGossip.subscribe(topics.jobs, () => {})
      // the three bad senders only publish (not subscribed, so they forward nothing)
      for (const n of [honest, attacker, noSign, tamperer]) await connect(n, victim)
      await waitFor(() => meshHas(victim, JOBS, [honest]), 5_000, 'victim mesh with the honest peer')
      await waitFor(
        () =>
          [attacker, noSign, tamperer].every(
            (n) =>
              n.services.pubsub.getSubscribers(JOBS).some((p) => p.equals(victim.peerId)) &&
              canSend(n, victim)
          ),
        5_000,
        'bad senders see the victim subscribed'
      )
      // the tamperer flips the data of every message it sends, after signing it
      const ps = tamperer.services.pubsub as unknown as {
        sendRpc(id: string, rpc: { messages: Array<{ data?: Uint8Array }> }): boolean
      }
      const send = ps.sendRpc.bind(ps)
      ps.sendRpc = (id, rpc) =>
        send(id, {
          ...rpc,
          messages: rpc.messages.map((m) => ({
            ...m,
            data: enc.encode(JSON.stringify({ v: 1, body: { type: 'forged', jobId: 'x' } }))
          }))
        })
    })

    after(async () => {
      gossip.stop()
      honestGossip.stop()
      await stopAll([victim, honest, attacker, noSign, tamperer])
    })

    it('rejects malformed JSON, oversized and schema-invalid messages, counts them by reason, keeps serving', async () => {
      const pubsub = attacker.services.pubsub
      await pubsub.publish(JOBS, enc.encode('{"v":1,"body":'))
      await pubsub.publish(
        JOBS,
        enc.encode(JSON.stringify({ v: 1, body: { type: 't', jobId: 'j', pad: 'x'.repeat(17_000) } }))
      )
      await pubsub.publish(JOBS, enc.encode(JSON.stringify({ v: 1, body: { type: 'announce' } })))
      await waitFor(
        () => {
          const r = gossip.stats()[JOBS]!.rejected
          return (r.undecodable ?? 0) + (r.oversized ?? 0) + (r.schema ?? 0) === 3
        },
        5_000,
        'three rejections'
      )
      const stats = gossip.stats()[JOBS]!
      assert.deepEqual(stats.rejected, { undecodable: 1, oversized: 1, schema: 1 })
      assert.equal(stats.delivered, 0)
      assert.equal(got.length, 0)

      // the attacker's score has dropped below zero (P4: invalid message deliveries)
      await waitFor(() => scoreOf(victim, attacker) < 0, 3_000, 'attacker score < 0')
      assert.ok(scoreOf(victim, attacker) < -50, `score ${scoreOf(victim, attacker)}`)
      assert.ok(scoreOf(victim, honest) >= 0, `honest score ${scoreOf(victim, honest)}`)

      // a later valid message from an honest peer is still delivered
      await honestGossip.publish(topics.jobs, { type: 'announce', jobId: 'ok-1' })
      await waitFor(() => got.length === 1, 5_000, 'valid message delivered')
      assert.equal(got[0]!.jobId, 'ok-1')
      assert.equal(gossip.stats()[JOBS]!.delivered, 1)
    })

    it('drops and counts unsigned messages (StrictNoSign publisher) and tampered signatures', async () => {
      const tap = gossipRejectionTap(victim.services.pubsub)
      assert.ok(tap !== undefined, 'libp2pOptions installs the rejection tap')
      const delivered = got.length
      const details: string[] = []
      const off = tap.onPrevalidationReject((_topic, error) => details.push(error))

      await noSign.services.pubsub.publish(
        JOBS,
        enc.encode(JSON.stringify({ v: 1, body: { type: 'a', jobId: 'u' } }))
      )
      await waitFor(() => (gossip.stats()[JOBS]!.rejected.signature ?? 0) === 1, 5_000, 'unsigned rejection')
      await tamperer.services.pubsub.publish(
        JOBS,
        enc.encode(JSON.stringify({ v: 1, body: { type: 'a', jobId: 't' } }))
      )
      await waitFor(() => (gossip.stats()[JOBS]!.rejected.signature ?? 0) === 2, 5_000, 'tampered rejection')
      off()
      assert.deepEqual(details, ['invalid_seqno', 'invalid_signature'])
      assert.equal(got.length, delivered, 'neither was delivered')
      await waitFor(() => scoreOf(victim, tamperer) < 0, 3_000, 'tamperer score < 0')
      await waitFor(() => scoreOf(victim, noSign) < 0, 3_000, 'unsigned sender score < 0')
      // the node still serves
      assert.equal(victim.status, 'started')
      assert.ok(internals(victim).getMeshPeers(JOBS).includes(honest.peerId.toString()))
    })

    it('survives a handler that throws', async () => {
      const off = gossip.subscribe(topics.jobs, () => {
        throw new Error('boom')
      })
      const offAsync = gossip.subscribe(topics.jobs, async () => {
        throw new Error('async boom')
      })
      await honestGossip.publish(topics.jobs, { type: 'announce', jobId: 'ok-2' })
      await waitFor(() => got.some((m) => m.jobId === 'ok-2'), 5_000, 'valid message delivered')
      off()
      offAsync()
      await sleep(10)
      assert.equal(victim.status, 'started')
    })
  })
})
