/**
 * `GET /api/v0/events?topics=…`: the bus as Server-Sent Events. Each client gets a `ready`
 * event, then its topics' events (`id:` the bus sequence, `event:` the topic, `data:` JSON), a
 * comment line as heartbeat, and the kept events after its `Last-Event-ID` when it reconnects.
 * Writes never wait: a client whose unsent bytes pass the bound is dropped (it reconnects and
 * catches up from `Last-Event-ID`), so a slow reader costs the node a bounded buffer and never
 * blocks a publisher.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ShoalError, logger, type Logger } from '../../common/index.js'
import { NODE_EVENT_TOPICS, topicFilter, type EventBus, type NodeEvent } from './bus.js'

const log = logger('shoal:node:events')

/** Default of {@link EventStreamInit.heartbeatMs}. */
export const SSE_HEARTBEAT_MS = 15_000
/** Default of {@link EventStreamInit.maxBufferedBytes}. */
export const SSE_MAX_BUFFERED_BYTES = 1 << 20
/** Default of {@link EventStreamInit.maxClients}. */
export const SSE_MAX_CLIENTS = 64
/** The path of the event stream beside the JSON-RPC. */
export const EVENTS_PATH = '/api/v0/events'

export interface EventStreamInit {
  /** A comment line is sent this often so that proxies and clients see a live stream. */
  heartbeatMs?: number
  /** A client with more unsent bytes than this is dropped. */
  maxBufferedBytes?: number
  /** Streams open at once; more are refused with 503. */
  maxClients?: number
  log?: Logger
}

/** Thrown (as a 400) when `topics=` names a topic that does not exist. */
export class EventTopicError extends ShoalError<
  'EVENT_TOPIC_UNKNOWN',
  { topics: string[]; known: string[] }
> {
  static override readonly category = 'usage'
}

/** Counters of the event streams (metrics read them). */
export interface EventStreamStats {
  clients: number
  opened: number
  dropped: number
  sent: number
}

/** One SSE frame for an event. */
export function sseFrame(e: NodeEvent): string {
  return `id: ${e.id}\nevent: ${e.topic}\ndata: ${JSON.stringify({ ...e.data, at: e.at })}\n\n`
}

/** The SSE endpoint over `bus`: a stream handler for the RPC server, and its counters. */
export class EventStream {
  readonly stats: EventStreamStats = { clients: 0, opened: 0, dropped: 0, sent: 0 }
  private readonly bus: EventBus
  private readonly heartbeatMs: number
  private readonly maxBuffered: number
  private readonly maxClients: number
  private readonly log: Logger

  constructor(bus: EventBus, init: EventStreamInit = {}) {
    this.bus = bus
    this.heartbeatMs = init.heartbeatMs ?? SSE_HEARTBEAT_MS
    this.maxBuffered = init.maxBufferedBytes ?? SSE_MAX_BUFFERED_BYTES
    this.maxClients = init.maxClients ?? SSE_MAX_CLIENTS
    this.log = init.log ?? log
  }

  /** Serves one client until it goes away, is dropped, or `signal` aborts. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'the event stream is read with GET' }))
      return
    }
    const topics = (url.searchParams.get('topics') ?? '').split(',')
    const filter = topicFilter(topics)
    if (filter.unknown.length > 0) {
      throw new EventTopicError(
        'EVENT_TOPIC_UNKNOWN',
        `unknown event topics: ${filter.unknown.join(', ')} (known: ${NODE_EVENT_TOPICS.join(', ')})`,
        { topics: filter.unknown, known: [...NODE_EVENT_TOPICS] }
      )
    }
    if (this.stats.clients >= this.maxClients) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' })
      res.end(JSON.stringify({ error: `too many event streams (${this.maxClients})` }))
      return
    }
    const lastHeader = req.headers['last-event-id'] ?? url.searchParams.get('since') ?? undefined
    const last = Number(Array.isArray(lastHeader) ? lastHeader[0] : lastHeader)
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    res.flushHeaders()
    req.socket.setNoDelay(true)
    this.stats.clients++
    this.stats.opened++
    let closed = false
    let done!: () => void
    const finished = new Promise<void>((resolve) => (done = resolve))
    const close = (dropped: boolean): void => {
      if (closed) return
      closed = true
      this.stats.clients--
      unsubscribe()
      clearInterval(heartbeat)
      signal.removeEventListener('abort', onAbort)
      if (dropped) {
        this.stats.dropped++
        this.log.warn(
          { buffered: res.writableLength, limit: this.maxBuffered },
          'event stream client too slow: dropped'
        )
        res.destroy()
      } else if (!res.writableEnded) res.end()
      done()
    }
    const write = (text: string): void => {
      if (closed) return
      res.write(text)
      if (res.writableLength > this.maxBuffered) close(true)
    }
    const unsubscribe = this.bus.subscribe(filter.match, (e) => {
      this.stats.sent++
      write(sseFrame(e))
    })
    const heartbeat = setInterval(() => write(`: heartbeat ${Date.now()}\n\n`), this.heartbeatMs)
    heartbeat.unref?.()
    const onAbort = (): void => close(false)
    signal.addEventListener('abort', onAbort)
    res.once('close', () => close(false))
    write(`retry: 3000\n\n`)
    if (Number.isInteger(last) && last >= 0)
      for (const e of this.bus.since(last, filter.match)) write(sseFrame(e))
    write(
      `event: ready\ndata: ${JSON.stringify({ topics: NODE_EVENT_TOPICS.filter(filter.match), lastId: this.bus.lastId })}\n\n`
    )
    await finished
  }
}
