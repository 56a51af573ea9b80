/**
 * Typed gossip over gossipsub: every topic has a zod schema and a size limit, messages are
 * JSON envelopes, and a topic validator rejects whatever is oversized, undecodable,
 * schema-invalid or (in a private swarm) not from a verified member. A rejection lowers the
 * sender's gossipsub peer score, is counted per topic and reason, is logged, and never
 * throws out of the node.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, GossipsubMessage, Message, PublishResult } from '@libp2p/gossipsub'
import { createTopicScoreParams, validateTopicScoreParams } from '@libp2p/gossipsub/score'
import type { TopicScoreParams } from '@libp2p/gossipsub/score'
import type { PeerId } from '@libp2p/interface'
import { logger, type Logger } from '../common/index.js'
import { didFromPeerId } from '../identity/index.js'
import { MAX_GOSSIP_MESSAGE_BYTES, TOPIC_SCORE_PARAMS } from './constants.js'
import { GossipError } from './errors.js'
import { gossipRejectionTap } from './libp2p.js'
import type { GossipsubPrevalidationError } from './libp2p.js'
import { EnvelopeSchema } from './messages.js'
import type { Envelope, TopicSpec } from './messages.js'

const log = logger('shoal:p2p:gossip')

/**
 * Why an incoming message was not accepted:
 * - `oversized`: larger than the topic's limit;
 * - `undecodable`: not UTF-8 JSON, or not a `{ v: 1, body, cred? }` envelope;
 * - `schema`: the body fails the topic's schema;
 * - `not_member`: in a private swarm, the forwarding peer or the author is not a verified member;
 * - `signature`: gossipsub's StrictSign checks failed (missing or wrong signature, seqno or
 *   `from`); gossipsub rejects these before any validator runs, and they are counted here;
 * - `unsupported_author`: the author's PeerId is not Ed25519, so it has no did:key;
 * - `internal`: the validator itself failed (the message is ignored, not penalised).
 */
export type GossipRejectReason =
  'oversized' | 'undecodable' | 'schema' | 'not_member' | 'signature' | 'unsupported_author' | 'internal'

/** Counters of one topic. */
export interface TopicStats {
  /** Valid messages from peers handed to local subscribers. */
  delivered: number
  /** Messages this node published. */
  published: number
  /** Messages refused, by reason. */
  rejected: Partial<Record<GossipRejectReason, number>>
  /** Connected peers subscribed to the topic, as gossipsub knows them now (absent when not asked). */
  subscribers?: number
  /** Of those, the peers in this node's mesh for the topic now. */
  mesh?: number
}

/** What a subscriber learns about a message besides its body. */
export interface GossipMeta {
  /** The author (the signer of the message). */
  from: PeerId
  /** The author's did:key. */
  did: string
  topic: string
  /** The peer that forwarded it to us (the author itself, or a relay). */
  receivedFrom: PeerId
  msgId: string
}

/** A subscriber. Its errors are logged and never reach gossipsub. */
export type GossipHandler<T> = (msg: T, meta: GossipMeta) => void | Promise<void>

/** The verdict of a membership check. */
export type AccessDecision = { ok: true } | { ok: false; reason: string }

/** Membership checks of a private swarm, as gossip needs them (`SwarmMembership` implements this). */
export interface GossipAccess {
  /** The credential JWT attached to messages this node publishes, if any. */
  credential(): string | undefined
  /**
   * Whether a message may be accepted: `source` forwarded it, `author` signed it and
   * `credential` is what the author attached.
   */
  checkMessage(source: PeerId, author: PeerId, credential: string | undefined): Promise<AccessDecision>
}

/** What {@link GossipService} needs. */
export interface GossipComponents {
  /** The node's gossipsub (`libp2p.services.pubsub`). */
  pubsub: GossipSub
  /** Membership checks; leave out for a public swarm. */
  access?: GossipAccess
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of {@link GossipService}. */
export interface GossipInit {
  /** Topics registered from the start. */
  topics?: Array<TopicSpec<unknown>>
  /**
   * Score parameters given to gossipsub for each registered topic (default
   * {@link TOPIC_SCORE_PARAMS}). Without them gossipsub does not score a topic, and a
   * rejected message would cost its sender nothing.
   */
  topicScoreParams?: Partial<TopicScoreParams>
}

interface Decoded {
  body: unknown
  did: string
}

interface PublishOptions {
  signal?: AbortSignal
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Typed, validated gossip on top of gossipsub. */
export class GossipService {
  private readonly log: Logger
  private readonly pubsub: GossipSub
  private readonly access: GossipAccess | undefined
  private readonly specs = new Map<string, TopicSpec<unknown>>()
  private readonly handlers = new Map<string, Set<GossipHandler<unknown>>>()
  private readonly counters = new Map<string, TopicStats>()
  private readonly decoded = new WeakMap<Message, Decoded>()
  private readonly scoreParams: TopicScoreParams
  private removeTapListener: (() => void) | undefined
  private started = false

  constructor(components: GossipComponents, init: GossipInit = {}) {
    this.log = components.log ?? log
    this.pubsub = components.pubsub
    this.access = components.access
    this.scoreParams = createTopicScoreParams({ ...TOPIC_SCORE_PARAMS, ...init.topicScoreParams })
    validateTopicScoreParams(this.scoreParams)
    this.onMessage = this.onMessage.bind(this)
    for (const spec of init.topics ?? []) this.register(spec)
  }

  /** Installs validators and listeners, and subscribes to topics that have handlers. Idempotent. */
  start(): void {
    if (this.started) return
    this.started = true
    this.pubsub.addEventListener('gossipsub:message', this.onMessage)
    this.removeTapListener = gossipRejectionTap(this.pubsub)?.onPrevalidationReject((topic, error) =>
      this.onPrevalidationReject(topic, error)
    )
    if (this.removeTapListener === undefined) {
      this.log.warn('gossipsub was not built by libp2pOptions(): signature rejections will not be counted')
    }
    for (const spec of this.specs.values()) this.install(spec)
    for (const [topic, set] of this.handlers) if (set.size > 0) this.pubsub.subscribe(topic)
  }

  /** Removes validators and listeners and unsubscribes. Idempotent. */
  stop(): void {
    if (!this.started) return
    this.started = false
    this.pubsub.removeEventListener('gossipsub:message', this.onMessage)
    this.removeTapListener?.()
    this.removeTapListener = undefined
    for (const topic of this.specs.keys()) {
      this.pubsub.topicValidators.delete(topic)
      if ((this.handlers.get(topic)?.size ?? 0) > 0) this.pubsub.unsubscribe(topic)
    }
  }

  /**
   * Registers a topic's schema and size limit (idempotent for the same spec).
   *
   * @throws {GossipError} `INVALID_TOPIC_SPEC` for a limit outside (0, 1 MiB], or another spec
   * already registered under this name.
   */
  register<T>(spec: TopicSpec<T>): TopicSpec<T> {
    const known = this.specs.get(spec.topic)
    if (known !== undefined) {
      if (known.schema !== spec.schema || known.maxBytes !== spec.maxBytes) {
        throw new GossipError(
          'INVALID_TOPIC_SPEC',
          `topic ${spec.topic} is already registered with another spec`,
          {
            topic: spec.topic
          }
        )
      }
      return spec
    }
    if (!(spec.maxBytes > 0 && spec.maxBytes <= MAX_GOSSIP_MESSAGE_BYTES)) {
      throw new GossipError('INVALID_TOPIC_SPEC', `maxBytes of ${spec.topic} must be in (0, 1 MiB]`, {
        topic: spec.topic,
        maxBytes: spec.maxBytes
      })
    }
    this.specs.set(spec.topic, spec as TopicSpec<unknown>)
    this.counters.set(spec.topic, { delivered: 0, published: 0, rejected: {} })
    if (this.started) this.install(spec as TopicSpec<unknown>)
    return spec
  }

  /** The registered topic names. */
  topics(): string[] {
    return [...this.specs.keys()]
  }

  /**
   * Validates, encodes and publishes `msg` (a registered topic, or a spec, which is
   * registered on first use).
   *
   * @throws {GossipError} `UNKNOWN_TOPIC`, `INVALID_MESSAGE`, `MESSAGE_TOO_LARGE`, or
   * `NOT_STARTED` before {@link start}.
   */
  async publish<T>(topic: string | TopicSpec<T>, msg: T, opts: PublishOptions = {}): Promise<PublishResult> {
    const spec = this.specFor(topic)
    if (!this.started)
      throw new GossipError('NOT_STARTED', 'gossip service is not started', { topic: spec.topic })
    opts.signal?.throwIfAborted()
    const parsed = spec.schema.safeParse(msg)
    if (!parsed.success) {
      throw new GossipError('INVALID_MESSAGE', `message does not match the schema of ${spec.topic}`, {
        topic: spec.topic,
        issues: parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }))
      })
    }
    const envelope: Envelope = { v: 1, body: parsed.data }
    const cred = this.access?.credential()
    if (cred !== undefined) envelope.cred = cred
    const data = encoder.encode(JSON.stringify(envelope))
    if (data.length > spec.maxBytes) {
      throw new GossipError(
        'MESSAGE_TOO_LARGE',
        `message of ${data.length} bytes exceeds ${spec.topic}'s limit`,
        {
          topic: spec.topic,
          bytes: data.length,
          maxBytes: spec.maxBytes
        }
      )
    }
    const result = await this.pubsub.publish(spec.topic, data)
    this.stats_(spec.topic).published++
    return result
  }

  /**
   * Calls `handler` with each valid message on `topic` (registering a passed spec).
   * Returns the function that removes this handler (unsubscribing after the last one).
   *
   * @throws {GossipError} `UNKNOWN_TOPIC` for an unregistered topic name.
   */
  subscribe<T>(topic: string | TopicSpec<T>, handler: GossipHandler<T>): () => void {
    const spec = this.specFor(topic)
    let set = this.handlers.get(spec.topic)
    if (set === undefined) {
      set = new Set()
      this.handlers.set(spec.topic, set)
    }
    const h = handler as GossipHandler<unknown>
    set.add(h)
    if (set.size === 1 && this.started) this.pubsub.subscribe(spec.topic)
    return () => {
      const current = this.handlers.get(spec.topic)
      if (current?.delete(h) === true && current.size === 0 && this.started)
        this.pubsub.unsubscribe(spec.topic)
    }
  }

  /**
   * Counters per registered topic (a copy); `peers: true` adds how many connected peers
   * gossipsub knows as subscribers and has in its mesh (what `pubsub_stats` shows).
   */
  stats(opts: { peers?: boolean } = {}): Record<string, TopicStats> {
    const out: Record<string, TopicStats> = {}
    for (const [topic, s] of this.counters) {
      out[topic] = { delivered: s.delivered, published: s.published, rejected: { ...s.rejected } }
      if (opts.peers === true) {
        out[topic].subscribers = this.pubsub.getSubscribers(topic).length
        // public on gossipsub's class, absent from its interface
        const mesh = (this.pubsub as Partial<{ getMeshPeers(t: string): string[] }>).getMeshPeers?.(topic)
        if (mesh !== undefined) out[topic].mesh = mesh.length
      }
    }
    return out
  }

  private specFor<T>(topic: string | TopicSpec<T>): TopicSpec<unknown> {
    if (typeof topic !== 'string') {
      this.register(topic)
      return topic as TopicSpec<unknown>
    }
    const spec = this.specs.get(topic)
    if (spec === undefined)
      throw new GossipError('UNKNOWN_TOPIC', `topic ${topic} is not registered`, { topic })
    return spec
  }

  private stats_(topic: string): TopicStats {
    let s = this.counters.get(topic)
    if (s === undefined) {
      s = { delivered: 0, published: 0, rejected: {} }
      this.counters.set(topic, s)
    }
    return s
  }

  private install(spec: TopicSpec<unknown>): void {
    this.pubsub.topicValidators.set(spec.topic, (source, msg) => this.validate(spec, source, msg))
    this.scoreTopic(spec.topic)
  }

  /** Gives gossipsub score parameters for `topic`, so that its rejects cost the sender. */
  private scoreTopic(topic: string): void {
    const score = (
      this.pubsub as unknown as { score?: { params?: { topics?: Record<string, TopicScoreParams> } } }
    ).score
    const topics = score?.params?.topics
    if (topics === undefined) {
      this.log.warn(
        { topic },
        'gossipsub exposes no score parameters: rejects on this topic will not lower peer scores'
      )
      return
    }
    topics[topic] ??= { ...this.scoreParams }
  }

  private count(topic: string, reason: GossipRejectReason): void {
    const rejected = this.stats_(topic).rejected
    rejected[reason] = (rejected[reason] ?? 0) + 1
  }

  private reject(
    topic: string,
    reason: GossipRejectReason,
    source: PeerId,
    facts: Record<string, unknown> = {}
  ): TopicValidatorResult {
    this.count(topic, reason)
    this.log.warn({ topic, reason, peer: source.toString(), ...facts }, 'gossip message rejected')
    return reason === 'internal' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
  }

  private async validate(
    spec: TopicSpec<unknown>,
    source: PeerId,
    msg: Message
  ): Promise<TopicValidatorResult> {
    try {
      if (msg.type !== 'signed') return this.reject(spec.topic, 'signature', source, { detail: 'unsigned' })
      if (msg.data.length > spec.maxBytes) {
        return this.reject(spec.topic, 'oversized', source, {
          bytes: msg.data.length,
          maxBytes: spec.maxBytes
        })
      }
      let raw: unknown
      try {
        raw = JSON.parse(decoder.decode(msg.data))
      } catch {
        return this.reject(spec.topic, 'undecodable', source, { detail: 'not UTF-8 JSON' })
      }
      const envelope = EnvelopeSchema.safeParse(raw)
      if (!envelope.success) {
        return this.reject(spec.topic, 'undecodable', source, { detail: 'not a v1 envelope' })
      }
      const body = spec.schema.safeParse(envelope.data.body)
      if (!body.success) {
        const issue = body.error.issues[0]
        return this.reject(spec.topic, 'schema', source, {
          detail: issue === undefined ? 'invalid' : `${issue.path.map(String).join('.')}: ${issue.message}`
        })
      }
      let did: string
      try {
        did = didFromPeerId(msg.from)
      } catch {
        return this.reject(spec.topic, 'unsupported_author', source, { author: msg.from.toString() })
      }
      if (this.access !== undefined) {
        const decision = await this.access.checkMessage(source, msg.from, envelope.data.cred)
        if (!decision.ok)
          return this.reject(spec.topic, 'not_member', source, { author: did, detail: decision.reason })
      }
      this.decoded.set(msg, { body: body.data, did })
      return TopicValidatorResult.Accept
    } catch (err) {
      return this.reject(spec.topic, 'internal', source, { err: (err as Error).message })
    }
  }

  private onPrevalidationReject(topic: string, error: GossipsubPrevalidationError): void {
    if (!this.specs.has(topic)) return
    this.count(topic, 'signature')
    this.log.warn({ topic, reason: 'signature', detail: error }, 'gossip message rejected by gossipsub')
  }

  private onMessage(evt: CustomEvent<GossipsubMessage>): void {
    const { msg, propagationSource, msgId } = evt.detail
    const set = this.handlers.get(msg.topic)
    if (set === undefined || set.size === 0 || msg.type !== 'signed') return
    const decoded = this.decoded.get(msg)
    if (decoded === undefined) return // not validated by this service (e.g. registered after the fact)
    this.stats_(msg.topic).delivered++
    const meta: GossipMeta = {
      from: msg.from,
      did: decoded.did,
      topic: msg.topic,
      receivedFrom: propagationSource,
      msgId
    }
    for (const handler of set) {
      try {
        const r = handler(decoded.body, meta)
        if (r instanceof Promise) {
          r.catch((err: unknown) => this.log.error({ topic: msg.topic, err }, 'gossip handler failed'))
        }
      } catch (err) {
        this.log.error({ topic: msg.topic, err }, 'gossip handler failed')
      }
    }
  }
}
