/**
 * Fuzzing the gossip validators: the real `GossipService` validator of every standard topic
 * (jobs, receipts, consent, updates, and the training layer's stricter updates schema), driven
 * with arbitrary bytes, arbitrary JSON, deep nesting and mutations of valid envelopes. The
 * property: every message is accepted or rejected with a reason — never an `internal`
 * rejection (the validator's catch-all for an exception), never a hang. Also the peer-exchange
 * answer parser.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { pino } from 'pino'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { GossipService, parseExchangeAnswer, swarmTopics } from '../../../src/p2p/index.js'
import type { TopicSpec } from '../../../src/p2p/index.js'
import { governanceTopic, updatesTopic } from '../../../src/training/index.js'
import { Identity, keypairFromSeed } from '../../../src/identity/index.js'
import {
  anyJson,
  deepJsonText,
  expectNamed,
  fuzzParams,
  fuzzTimeout,
  mutateBytes,
  mutateJson,
  safeStringify
} from './arbitraries.js'

type Validator = (source: PeerId, msg: Message) => Promise<TopicValidatorResult>

/** The parts of gossipsub the service touches, in memory. */
function fakePubsub(): { topicValidators: Map<string, Validator> } & Record<string, unknown> {
  return {
    topicValidators: new Map<string, Validator>(),
    addEventListener: () => {},
    removeEventListener: () => {},
    subscribe: () => {},
    unsubscribe: () => {}
  }
}

const author = Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(9)))
const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln'

describe('fuzz: gossip validators', function () {
  this.timeout(fuzzTimeout(60_000))
  const topics = swarmTopics('fuzzswarm')
  const specs: Array<{ spec: TopicSpec<unknown>; sample: unknown }> = [
    { spec: topics.jobs as TopicSpec<unknown>, sample: { type: 'announce', jobId: 'job-1', job: JWT } },
    { spec: topics.receipts as TopicSpec<unknown>, sample: { type: 'receipt', receipt: JWT } },
    { spec: topics.consent as TopicSpec<unknown>, sample: { type: 'grant', dataset: CID, document: JWT } },
    {
      spec: topics.updates('job-1') as TopicSpec<unknown>,
      sample: { type: 'update', job: 'job-1', round: 3, weightsCid: CID, receipt: JWT }
    },
    {
      spec: updatesTopic('fuzzswarm', 'job-2') as TopicSpec<unknown>,
      sample: { type: 'update', job: 'job-2', round: 3, weightsCid: CID, samples: 64, loss: 0.5, epoch: 'e1' }
    },
    { spec: governanceTopic('fuzzswarm') as TopicSpec<unknown>, sample: { type: 'document', jwt: JWT } },
    {
      spec: governanceTopic('fuzzswarm2') as TopicSpec<unknown>,
      sample: { type: 'head', head: 'ab'.repeat(32), n: 3 }
    }
  ]
  const pubsub = fakePubsub()
  const service = new GossipService(
    { pubsub: pubsub as never, log: pino({ level: 'silent' }) as never },
    { topics: specs.map((s) => s.spec) }
  )
  service.start()

  for (const { spec, sample } of specs) {
    it(`${spec.topic}: accept or reject with a reason, never internal`, async () => {
      const validate = pubsub.topicValidators.get(spec.topic)!
      assert.ok(validate, 'the service installed a validator')
      const envelope = { v: 1, body: sample }
      // The valid sample passes (so that the mutations below start from an accepted message).
      const ok = await validate(author.peerId, message(spec.topic, JSON.stringify(envelope)))
      assert.equal(ok, TopicValidatorResult.Accept)
      const enc = new TextEncoder()
      const data = fc.oneof(
        fc.uint8Array({ maxLength: 128 }),
        anyJson.map((v) => enc.encode(safeStringify(v))),
        anyJson.map((body) => enc.encode(safeStringify({ v: 1, body }))),
        mutateJson(envelope).map((v) => enc.encode(safeStringify(v))),
        mutateBytes(enc.encode(JSON.stringify(envelope))),
        deepJsonText.map((t) => enc.encode(`{"v":1,"body":${t}}`)),
        fc.constant(new Uint8Array(spec.maxBytes + 1).fill(0x20))
      )
      const before = service.stats()[spec.topic]!.rejected.internal ?? 0
      await fc.assert(
        fc.asyncProperty(data, fc.boolean(), async (bytes, signed) => {
          const msg = message(spec.topic, bytes, signed)
          const r = await expectNamed(`gossip.${spec.topic.split('/').slice(3).join('/')}`, () =>
            validate(author.peerId, msg)
          )
          assert.ok(
            r === TopicValidatorResult.Accept || r === TopicValidatorResult.Reject,
            `result ${String(r)}`
          )
          assert.equal(service.stats()[spec.topic]!.rejected.internal ?? 0, before, 'no internal rejection')
        }),
        fuzzParams(400)
      )
    })
  }

  it('peer-exchange answers: a peer list or EXCHANGE_MALFORMED', async () => {
    const enc = new TextEncoder()
    const sample = { v: 1, peers: [{ id: author.peerId.toString(), addrs: ['/ip4/1.2.3.4/tcp/4001'] }] }
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 128 }),
          anyJson.map((v) => enc.encode(safeStringify(v))),
          mutateJson(sample).map((v) => enc.encode(safeStringify(v))),
          deepJsonText.map((t) => enc.encode(t))
        ),
        async (bytes) => {
          const peers = await expectNamed(
            'exchange.answer',
            () => parseExchangeAnswer(bytes),
            (err) => (err as { code?: unknown }).code === 'EXCHANGE_MALFORMED'
          )
          if (peers !== undefined) assert.ok(peers.every((p) => typeof p.id === 'string'))
        }
      ),
      fuzzParams(400)
    )
  })
})

function message(topic: string, data: string | Uint8Array, signed = true): Message {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  if (!signed) return { type: 'unsigned', topic, data: bytes } as Message
  return {
    type: 'signed',
    topic,
    data: bytes,
    from: author.peerId,
    sequenceNumber: 1n,
    signature: new Uint8Array(64),
    key: author.peerId.publicKey
  } as Message
}
