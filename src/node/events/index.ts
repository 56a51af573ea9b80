/**
 * Live events of a node: a typed in-process bus (`EventBus`) that the services' hooks publish
 * to (`wireNodeEvents`), served as Server-Sent Events at `GET /api/v0/events?topics=…` beside
 * the JSON-RPC (`EventStream`: heartbeats, `Last-Event-ID` replay, a bounded buffer per client —
 * a slow client is dropped, never waited for). Topics and payloads: {@link NodeEventMap},
 * docs/events.md.
 *
 * @example
 * ```ts
 * import { logger } from '../../common/index.js'
 * import { EventBus, EventStream } from './events/index.js'
 * const log = logger('shoal:node:events')
 * const bus = new EventBus()
 * const stop = bus.on('round.completed', (e) => log.info(e.data, 'round completed'))
 * const sse = new EventStream(bus, { heartbeatMs: 15_000 })
 * // streams: { '/api/v0/events': (req, res, url, signal) => sse.handle(req, res, url, signal) }
 * bus.publish('peer.joined', { peerId: '12D3Koo…', did: 'did:key:z6Mk…' })
 * stop()
 * ```
 */
export {
  EventBus,
  EVENT_HISTORY,
  NODE_EVENT_TOPICS,
  topicFilter,
  type EventListener,
  type NodeEvent,
  type NodeEventMap,
  type NodeEventTopic
} from './bus.js'
export {
  EventStream,
  EventTopicError,
  EVENTS_PATH,
  SSE_HEARTBEAT_MS,
  SSE_MAX_BUFFERED_BYTES,
  SSE_MAX_CLIENTS,
  sseFrame,
  type EventStreamInit,
  type EventStreamStats
} from './sse.js'
export {
  wireNodeEvents,
  BUDGET_CHECK_MS,
  BUDGET_THRESHOLDS,
  JOB_STATE_POLL_MS,
  type NodeEventSources,
  type PeerEvents
} from './wire.js'
