/**
 * The node's in-process event bus: typed events (round completed, receipt accepted, …) that the
 * services' hooks publish and that the SSE endpoint, the metrics and the dashboard read. A
 * publish never waits for a subscriber; a subscriber that throws is logged and kept.
 */
import { logger, type Logger } from '../../common/index.js'

const log = logger('shoal:node:events')

/** Every event the node publishes, by topic, with its payload. */
export interface NodeEventMap {
  /** This node finished a round of a job (its checkpoint is stored). */
  'round.completed': {
    job: string
    round: number
    loss: number | null
    accuracy: number | null
    checkpoint: string
  }
  /** A receipt passed the signature level and is stored (this node's own, or a peer's). */
  'receipt.accepted': { hash: string; issuer: string; job: string; round: number; mine: boolean }
  /** This node re-executed a peer's round: `match`, `mismatch` (a fraud proof follows) or `error`. */
  'receipt.reexecuted': {
    receipt: string
    issuer: string
    job: string
    round: number
    outcome: 'match' | 'mismatch' | 'error'
    mode: string | null
  }
  /** A fraud proof was accepted: the offender's models and credits are excluded. */
  'fraud.proof': {
    hash: string
    offender: string
    verifier: string
    receipt: string
    job: string
    round: number
    checked: string
  }
  /** A peer's receipt names a grant that had ended: the issuer is excluded. */
  'fraud.lineage': { did: string; receipt: string; reason: string; grant: string | null }
  /** A grant was issued here or received (on the consent topic or by hand). */
  'grant.issued': {
    grant: string
    dataset: string
    grantee: string
    owner: string
    purpose: string
    exp: number | null
    mine: boolean
  }
  /** A grant ended: revoked, or expired. Its keys are deleted; jobs it influenced unlearn it. */
  'grant.revoked': { grant: string; dataset: string; grantee: string; how: 'revoked' | 'expired' }
  /** A libp2p connection to a peer opened (its first) or closed (its last). */
  'peer.joined': { peerId: string; did: string }
  'peer.left': { peerId: string; did: string }
  /** The ε spent on a grant's shards crossed a share of its budget (0.5, 0.8, 1). */
  'privacy.budget': {
    grant: string
    dataset: string
    grantee: string
    epsilon: number | null
    epsMax: number
    threshold: number
  }
  /** A job's state on this node changed (starting, running, paused, done, failed, left, unlearning, revoked). */
  'job.state': { job: string; state: string; previous: string | null }
}

export type NodeEventTopic = keyof NodeEventMap

/** Every topic, in a stable order (documented in rpc.discover and docs/events.md). */
export const NODE_EVENT_TOPICS: readonly NodeEventTopic[] = [
  'round.completed',
  'receipt.accepted',
  'receipt.reexecuted',
  'fraud.proof',
  'fraud.lineage',
  'grant.issued',
  'grant.revoked',
  'peer.joined',
  'peer.left',
  'privacy.budget',
  'job.state'
]

/** One published event: a per-node sequence number (the SSE `id`), its topic, time and payload. */
export interface NodeEvent<T extends NodeEventTopic = NodeEventTopic> {
  id: number
  topic: T
  /** Milliseconds since the epoch, when the node published it. */
  at: number
  data: NodeEventMap[T]
}

/** How many recent events the bus keeps for a reconnecting client (`Last-Event-ID`). */
export const EVENT_HISTORY = 512

export type EventListener = (event: NodeEvent) => void

/**
 * Which topics a filter selects: `round.completed` selects that topic, `grant` every `grant.*`
 * topic, `*` (or an empty list) everything. Returns the unknown entries in `unknown`.
 */
export function topicFilter(spec: readonly string[]): {
  match: (t: NodeEventTopic) => boolean
  unknown: string[]
} {
  const wanted = spec.map((s) => s.trim()).filter((s) => s !== '')
  const unknown = wanted.filter(
    (w) => w !== '*' && !NODE_EVENT_TOPICS.some((t) => t === w || t.startsWith(`${w}.`))
  )
  if (wanted.length === 0 || wanted.includes('*')) return { match: () => true, unknown }
  return { match: (t) => wanted.some((w) => t === w || t.startsWith(`${w}.`)), unknown }
}

export class EventBus {
  private readonly listeners = new Set<{ match: (t: NodeEventTopic) => boolean; fn: EventListener }>()
  private readonly recent: NodeEvent[] = []
  private seq = 0
  private readonly history: number
  private readonly log: Logger

  constructor(init: { history?: number; log?: Logger } = {}) {
    this.history = init.history ?? EVENT_HISTORY
    this.log = init.log ?? log
  }

  /** Publishes an event to every matching subscriber, synchronously; returns it. */
  publish<T extends NodeEventTopic>(topic: T, data: NodeEventMap[T]): NodeEvent<T> {
    const event: NodeEvent<T> = { id: ++this.seq, topic, at: Date.now(), data }
    this.recent.push(event)
    if (this.recent.length > this.history) this.recent.shift()
    for (const l of this.listeners) {
      if (!l.match(topic)) continue
      try {
        l.fn(event)
      } catch (err) {
        this.log.warn({ topic, err: (err as Error).message }, 'event listener failed')
      }
    }
    return event
  }

  /** Calls `fn` with every event whose topic `match` selects; returns the unsubscribe function. */
  subscribe(match: (t: NodeEventTopic) => boolean, fn: EventListener): () => void {
    const entry = { match, fn }
    this.listeners.add(entry)
    return () => {
      this.listeners.delete(entry)
    }
  }

  /** Convenience: one topic, typed. */
  on<T extends NodeEventTopic>(topic: T, fn: (event: NodeEvent<T>) => void): () => void {
    return this.subscribe((t) => t === topic, fn as EventListener)
  }

  /** Kept events after `id` (for a reconnecting client), oldest first. */
  since(id: number, match: (t: NodeEventTopic) => boolean): NodeEvent[] {
    return this.recent.filter((e) => e.id > id && match(e.topic))
  }

  /** The id of the last event published (0: none yet). */
  get lastId(): number {
    return this.seq
  }

  /** Subscribers now. */
  get subscribers(): number {
    return this.listeners.size
  }
}
