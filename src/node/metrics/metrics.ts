/**
 * Prometheus metrics of a node (prom-client): the process (RSS, CPU, event-loop lag, heap: the
 * default metrics), training (rounds, loss, accuracy, bytes in and out per job), gossip (messages
 * by topic kind, rejects by reason), receipts and the audit (accepted, re-executions by outcome,
 * fraud proofs), consent (grants issued and ended), peers, the event streams, RPC latency by
 * method, fetch latency by kind ({@link FetchMeter}) and items exchanged by anti-entropy sync.
 * Event counts come from the node's {@link EventBus}; gauges of state are read at scrape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ItemSyncStats } from '../../p2p/index.js'
import type { EventBus, EventStreamStats } from '../events/index.js'
import type { FetchMeter } from './fetch.js'

/** The path of the metrics beside the JSON-RPC. */
export const METRICS_PATH = '/metrics'
/** Buckets of the RPC latency histogram (seconds). */
export const RPC_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60]

/** Per-topic gossip counters, as `GossipService.stats()` reports them. */
export type GossipStats = Record<
  string,
  { delivered: number; published: number; rejected: Partial<Record<string, number>> }
>

/** What the metrics read at scrape time. */
export interface MetricsSources {
  bus: EventBus
  /** Open libp2p connections and connected peers. */
  connections?: () => { connections: number; peers: number }
  gossip?: () => GossipStats
  /** Per job: rounds, samples, receipts, bytes sent and received (`NodeJobs.contributions`). */
  contributions?: () => Record<string, unknown>
  events?: () => EventStreamStats
  paused?: () => boolean
  /** Fetch latency and bytes (its metrics join this registry). */
  fetches?: FetchMeter
  /** Anti-entropy syncs by name (receipts, governance): items received, kept, sent. */
  sync?: () => Record<string, Pick<ItemSyncStats, 'received' | 'accepted' | 'sent'>> | null
}

/** `/shoal/1/<swarm>/job/<id>/updates` → `updates`; `/shoal/1/<swarm>/receipts` → `receipts`. */
export function topicKind(topic: string): string {
  return (
    topic
      .split('/')
      .filter((s) => s !== '')
      .at(-1) ?? topic
  )
}

export class NodeMetrics {
  readonly registry = new Registry()
  private readonly rpc: Histogram<'method' | 'outcome'>
  private readonly unsubscribe: Array<() => void> = []

  constructor(s: MetricsSources, init: { defaults?: boolean; eventLoopMonitoringPrecision?: number } = {}) {
    const registers = [this.registry]
    if (init.defaults !== false) {
      collectDefaultMetrics({
        register: this.registry,
        prefix: 'shoal_',
        eventLoopMonitoringPrecision: init.eventLoopMonitoringPrecision ?? 10
      })
    }
    this.rpc = new Histogram({
      name: 'shoal_rpc_request_duration_seconds',
      help: 'JSON-RPC method calls by method and outcome (ok | error)',
      labelNames: ['method', 'outcome'],
      buckets: RPC_LATENCY_BUCKETS,
      registers
    })
    const rounds = new Counter({
      name: 'shoal_rounds_total',
      help: 'Rounds this node completed, per job',
      labelNames: ['job'],
      registers
    })
    const round = new Gauge({
      name: 'shoal_round',
      help: 'Last round completed, per job',
      labelNames: ['job'],
      registers
    })
    const loss = new Gauge({
      name: 'shoal_loss',
      help: 'Training loss of the last round, per job',
      labelNames: ['job'],
      registers
    })
    const accuracy = new Gauge({
      name: 'shoal_accuracy',
      help: 'Held-out accuracy of the last round, per job',
      labelNames: ['job'],
      registers
    })
    const receipts = new Counter({
      name: 'shoal_receipts_accepted_total',
      help: 'Receipts stored after the signature check (mine: issued by this node)',
      labelNames: ['mine'],
      registers
    })
    const reexec = new Counter({
      name: 'shoal_reexecutions_total',
      help: "Peers' rounds re-executed here, by outcome (match | mismatch | error) and mode",
      labelNames: ['outcome', 'mode'],
      registers
    })
    const fraud = new Counter({
      name: 'shoal_fraud_total',
      help: 'Accepted fraud proofs (kind=proof) and lineage offenses (kind=lineage)',
      labelNames: ['kind'],
      registers
    })
    const grants = new Counter({
      name: 'shoal_grants_total',
      help: 'Grants issued or received (event=issued), revoked or expired (event=revoked|expired)',
      labelNames: ['event'],
      registers
    })
    const budget = new Counter({
      name: 'shoal_privacy_budget_crossings_total',
      help: "A grant's spent ε crossed a share of its budget",
      labelNames: ['threshold'],
      registers
    })
    const events = new Counter({
      name: 'shoal_events_total',
      help: 'Events published on the node event bus, by topic',
      labelNames: ['topic'],
      registers
    })
    this.unsubscribe.push(
      s.bus.subscribe(
        () => true,
        (e) => {
          events.inc({ topic: e.topic })
          const d = e.data as Record<string, unknown>
          switch (e.topic) {
            case 'round.completed': {
              const job = String(d.job)
              rounds.inc({ job })
              round.set({ job }, Number(d.round))
              if (typeof d.loss === 'number') loss.set({ job }, d.loss)
              if (typeof d.accuracy === 'number') accuracy.set({ job }, d.accuracy)
              break
            }
            case 'receipt.accepted':
              receipts.inc({ mine: String(d.mine) })
              break
            case 'receipt.reexecuted':
              reexec.inc({ outcome: String(d.outcome), mode: String(d.mode ?? 'exact') })
              break
            case 'fraud.proof':
              fraud.inc({ kind: 'proof' })
              break
            case 'fraud.lineage':
              fraud.inc({ kind: 'lineage' })
              break
            case 'grant.issued':
              grants.inc({ event: 'issued' })
              break
            case 'grant.revoked':
              grants.inc({ event: String(d.how) })
              break
            case 'privacy.budget':
              budget.inc({ threshold: String(d.threshold) })
              break
            default:
          }
        }
      )
    )
    if (s.connections !== undefined) {
      const read = s.connections
      new Gauge({
        name: 'shoal_peers',
        help: 'Connected peers',
        registers,
        collect() {
          this.set(read().peers)
        }
      })
      new Gauge({
        name: 'shoal_connections',
        help: 'Open libp2p connections',
        registers,
        collect() {
          this.set(read().connections)
        }
      })
    }
    if (s.gossip !== undefined) {
      const read = s.gossip
      new Counter({
        name: 'shoal_gossip_messages_total',
        help: 'Gossip messages by topic kind and direction (published | delivered)',
        labelNames: ['topic', 'direction'],
        registers,
        collect() {
          this.reset()
          for (const [topic, st] of Object.entries(read())) {
            this.inc({ topic: topicKind(topic), direction: 'published' }, st.published)
            this.inc({ topic: topicKind(topic), direction: 'delivered' }, st.delivered)
          }
        }
      })
      new Counter({
        name: 'shoal_gossip_rejected_total',
        help: 'Gossip messages refused, by topic kind and reason',
        labelNames: ['topic', 'reason'],
        registers,
        collect() {
          this.reset()
          for (const [topic, st] of Object.entries(read())) {
            for (const [reason, n] of Object.entries(st.rejected)) {
              if (n !== undefined && n > 0) this.inc({ topic: topicKind(topic), reason }, n)
            }
          }
        }
      })
    }
    if (s.contributions !== undefined) {
      const read = s.contributions
      new Counter({
        name: 'shoal_training_bytes_total',
        help: 'Model bytes announced (direction=out) and fetched from peers (direction=in), per job',
        labelNames: ['job', 'direction'],
        registers,
        collect() {
          this.reset()
          for (const [job, c] of Object.entries(read())) {
            const v = c as { bytesSent?: number; bytesReceived?: number }
            this.inc({ job, direction: 'out' }, v.bytesSent ?? 0)
            this.inc({ job, direction: 'in' }, v.bytesReceived ?? 0)
          }
        }
      })
      new Counter({
        name: 'shoal_training_samples_total',
        help: 'Samples trained by this node, per job (kept rounds)',
        labelNames: ['job'],
        registers,
        collect() {
          this.reset()
          for (const [job, c] of Object.entries(read()))
            this.inc({ job }, (c as { samples?: number }).samples ?? 0)
        }
      })
    }
    if (s.events !== undefined) {
      const read = s.events
      new Gauge({
        name: 'shoal_event_streams',
        help: 'Open event streams (SSE clients)',
        registers,
        collect() {
          this.set(read().clients)
        }
      })
      new Counter({
        name: 'shoal_event_streams_dropped_total',
        help: 'Event stream clients dropped for reading too slowly',
        registers,
        collect() {
          this.reset()
          this.inc(read().dropped)
        }
      })
    }
    if (s.fetches !== undefined) {
      this.registry.registerMetric(s.fetches.duration)
      this.registry.registerMetric(s.fetches.bytes)
    }
    if (s.sync !== undefined) {
      const read = s.sync
      new Counter({
        name: 'shoal_sync_items_total',
        help: 'Items exchanged by anti-entropy sync with members (receipts, governance, jobs), by direction (received | accepted | sent)',
        labelNames: ['sync', 'direction'],
        registers,
        collect() {
          this.reset()
          for (const [sync, st] of Object.entries(read() ?? {})) {
            this.inc({ sync, direction: 'received' }, st.received)
            this.inc({ sync, direction: 'accepted' }, st.accepted)
            this.inc({ sync, direction: 'sent' }, st.sent)
          }
        }
      })
    }
    if (s.paused !== undefined) {
      const read = s.paused
      new Gauge({
        name: 'shoal_paused',
        help: '1 while training is paused on this node',
        registers,
        collect() {
          this.set(read() ? 1 : 0)
        }
      })
    }
  }

  /** Records one RPC call (the RPC server's `onCall`). */
  rpcCall(method: string, ms: number, ok: boolean): void {
    this.rpc.observe({ method, outcome: ok ? 'ok' : 'error' }, ms / 1000)
  }

  /** `GET /metrics` in the Prometheus text format. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end()
      return
    }
    const text = await this.registry.metrics()
    res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' })
    res.end(text)
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u()
    this.registry.clear()
  }
}
