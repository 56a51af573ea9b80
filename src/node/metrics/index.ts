/**
 * Prometheus metrics of a node (`NodeMetrics`, prom-client), served at `GET /metrics` on the RPC
 * listener with the RPC's token (or the dashboard session), and on an opt-in separate listener
 * without a token (`metrics.port`). Names and labels: docs/metrics.md; a Grafana dashboard:
 * docs/grafana-dashboard.json.
 *
 * @example
 * ```ts
 * import { logger } from '../../common/index.js'
 * import { EventBus } from '../events/index.js'
 * import { NodeMetrics } from './metrics/index.js'
 * const log = logger('shoal:node:metrics')
 * const bus = new EventBus()
 * const metrics = new NodeMetrics({ bus })
 * bus.publish('round.completed', { job: 'j', round: 0, loss: 0.5, accuracy: 0.9, checkpoint: 'bafy…' })
 * log.debug({ text: await metrics.registry.metrics() }, 'metrics') // shoal_rounds_total{job="j"} 1 …
 * ```
 */
export {
  NodeMetrics,
  METRICS_PATH,
  RPC_LATENCY_BUCKETS,
  topicKind,
  type GossipStats,
  type MetricsSources
} from './metrics.js'
export { MetricsListener } from './listener.js'
export {
  FetchMeter,
  MeteredWeightStore,
  meteredShardRead,
  datasetBytes,
  FETCH_LATENCY_BUCKETS,
  type FetchKind,
  type FetchOutcome,
  type FetchMeterComponents
} from './fetch.js'
