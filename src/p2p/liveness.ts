/**
 * Shoal's connection monitor (`services.liveness`, in place of libp2p's): pings every connection
 * every `intervalMs` over `/ipfs/ping/1.0.0` and aborts the connections that are dead, not those
 * that are only busy.
 *
 * libp2p's monitor aborts a connection on *any* failed ping, and pings every connection every
 * interval whether or not the previous ping came back. In a swarm that moves models through one
 * member relay on 2 shared cores (bench:wan, N = 16, 40 rounds) pings queue behind megabytes of
 * models; they overlapped, the peer's ping handler refused the streams past its limit or they
 * closed under it, and every such failure — a reset or an empty close, proof that the peer was
 * there — aborted the connection, every transfer on it, and every relayed connection through it
 * (255 aborted pings in one job; 8 of 16 volunteers lost every connection for rounds on end and
 * aggregated 14–43 of their 120 peer models).
 *
 * Here, per connection:
 * - one ping at a time: a connection whose ping is still out is skipped (no overlap, so no
 *   stream limit is ever reached by our pings);
 * - a ping that gets **no answer within `timeoutMs`** means the path is dead (a black-holed
 *   connection after a move: TCP says nothing), and the connection is aborted at once;
 * - a ping that **fails otherwise** (the stream reset or closed by the peer, a wrong echo)
 *   counts; `maxFailures` in a row abort the connection, and any success clears the count;
 * - a peer that does not speak ping is alive (it answered the protocol negotiation).
 */
import { randomBytes } from 'node:crypto'
import type { ComponentLogger, Connection, Logger, Startable } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { byteStream } from '@libp2p/utils'
import { LIVENESS_MAX_FAILURES, PING_INTERVAL_MS, PING_PROTOCOL, PING_TIMEOUT_MS } from './constants.js'

export interface LivenessComponents {
  connectionManager: ConnectionManager
  logger: ComponentLogger
}

export interface LivenessInit {
  /** How often each connection is pinged (ms). */
  intervalMs?: number
  /** How long a ping may go unanswered before the connection counts as dead (ms). */
  timeoutMs?: number
  /** Failed (not timed-out) pings in a row that abort a connection. */
  maxFailures?: number
}

/** What the monitor has done (`swarm_info.liveness`). */
export interface LivenessStats {
  pings: number
  /** Pings that failed without timing out (reset, closed, wrong echo). */
  failures: number
  /** Connections aborted because a ping went unanswered for `timeoutMs`. */
  abortedSilent: number
  /** Connections aborted after `maxFailures` failed pings in a row. */
  abortedFailing: number
}

const ECHO_BYTES = 32

/** See the module doc. */
export class Liveness implements Startable {
  private readonly components: LivenessComponents
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly maxFailures: number
  private readonly log: Logger
  private readonly counters: LivenessStats = { pings: 0, failures: 0, abortedSilent: 0, abortedFailing: 0 }
  /** Connections with a ping out. */
  private readonly inFlight = new Set<string>()
  /** Failed pings in a row, by connection id. */
  private readonly failing = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private controller = new AbortController()

  constructor(components: LivenessComponents, init: LivenessInit = {}) {
    this.components = components
    this.intervalMs = init.intervalMs ?? PING_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? PING_TIMEOUT_MS
    this.maxFailures = init.maxFailures ?? LIVENESS_MAX_FAILURES
    this.log = components.logger.forComponent('shoal:p2p:liveness')
  }

  readonly [Symbol.toStringTag] = 'shoal/liveness'

  start(): void {
    this.controller = new AbortController()
    this.timer = setInterval(() => this.sweep(), this.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.controller.abort()
    this.inFlight.clear()
    this.failing.clear()
  }

  stats(): LivenessStats {
    return { ...this.counters }
  }

  private sweep(): void {
    const conns = this.components.connectionManager.getConnections()
    const open = new Set(conns.map((c) => c.id))
    for (const id of this.failing.keys()) if (!open.has(id)) this.failing.delete(id)
    for (const conn of conns) {
      if (conn.status !== 'open' || this.inFlight.has(conn.id)) continue
      this.inFlight.add(conn.id)
      void this.ping(conn).finally(() => this.inFlight.delete(conn.id))
    }
  }

  private async ping(conn: Connection): Promise<void> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = AbortSignal.any([timeout, this.controller.signal])
    this.counters.pings++
    const start = Date.now()
    try {
      const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
      try {
        const bs = byteStream(stream)
        const sent = randomBytes(ECHO_BYTES)
        const [, echo] = await Promise.all([
          bs.write(sent, { signal }),
          bs.read({ bytes: ECHO_BYTES, signal })
        ])
        if (!Buffer.from(echo.subarray()).equals(sent)) throw new Error('the ping came back altered')
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
      // Answered: alive, however its stream closes.
      conn.rtt = Date.now() - start
      this.failing.delete(conn.id)
      await stream.close({ signal }).catch((err: Error) => stream.abort(err))
    } catch (err) {
      if (this.controller.signal.aborted || conn.status !== 'open') return
      if ((err as Error).name === 'UnsupportedProtocolError') {
        this.failing.delete(conn.id)
        return
      }
      if (timeout.aborted) {
        this.counters.abortedSilent++
        this.log(
          'no answer to a ping from %p in %d ms; aborting the connection',
          conn.remotePeer,
          this.timeoutMs
        )
        conn.abort(new Error(`no answer to a ping in ${this.timeoutMs} ms`))
        return
      }
      this.counters.failures++
      const n = (this.failing.get(conn.id) ?? 0) + 1
      this.failing.set(conn.id, n)
      this.log('ping to %p failed (%d in a row) - %e', conn.remotePeer, n, err)
      if (n >= this.maxFailures) {
        this.counters.abortedFailing++
        this.failing.delete(conn.id)
        conn.abort(new Error(`${n} pings in a row failed: ${(err as Error).message}`))
      }
    }
  }
}

/** The libp2p service factory: `services: { liveness: liveness({ … }) }`. */
export function liveness(init: LivenessInit = {}): (components: LivenessComponents) => Liveness {
  return (components) => new Liveness(components, init)
}
