/** The node's Prometheus metrics: counts from the event bus, state read at scrape, RPC latency. */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EventBus } from '../../../src/node/events/index.js'
import {
  FetchMeter,
  MeteredWeightStore,
  MetricsListener,
  NodeMetrics,
  meteredShardRead,
  topicKind
} from '../../../src/node/metrics/index.js'

describe('node metrics (Prometheus)', () => {
  it('counts rounds, receipts, re-executions, fraud and grants from events; reads gauges at scrape', async () => {
    const bus = new EventBus()
    let peers = 2
    const m = new NodeMetrics(
      {
        bus,
        connections: () => ({ connections: peers + 1, peers }),
        gossip: () => ({
          '/shoal/1/sw/job/j1/updates': { published: 3, delivered: 7, rejected: { 'bad-signature': 2 } },
          '/shoal/1/sw/receipts': { published: 1, delivered: 4, rejected: {} }
        }),
        contributions: () => ({ j1: { bytesSent: 1000, bytesReceived: 3000, samples: 640 } }),
        events: () => ({ clients: 1, opened: 3, dropped: 1, sent: 9 }),
        paused: () => false
      },
      { defaults: true }
    )
    try {
      bus.publish('round.completed', { job: 'j1', round: 0, loss: 1.2, accuracy: 0.5, checkpoint: 'c0' })
      bus.publish('round.completed', { job: 'j1', round: 1, loss: 0.6, accuracy: 0.81, checkpoint: 'c1' })
      bus.publish('receipt.accepted', { hash: 'h', issuer: 'd', job: 'j1', round: 1, mine: false })
      bus.publish('receipt.reexecuted', {
        receipt: 'h',
        issuer: 'd',
        job: 'j1',
        round: 1,
        outcome: 'match',
        mode: 'exact'
      })
      bus.publish('receipt.reexecuted', {
        receipt: 'h2',
        issuer: 'd',
        job: 'j1',
        round: 2,
        outcome: 'mismatch',
        mode: 'exact'
      })
      bus.publish('fraud.proof', {
        hash: 'p',
        offender: 'd',
        verifier: 'v',
        receipt: 'h2',
        job: 'j1',
        round: 2,
        checked: 'reexecution'
      })
      bus.publish('grant.revoked', { grant: 'g', dataset: 'ds', grantee: 'x', how: 'revoked' })
      m.rpcCall('node_info', 3, true)
      m.rpcCall('node_info', 250, true)
      m.rpcCall('job_status', 1, false)
      peers = 5
      const text = await m.registry.metrics()
      const has = (line: string): void => assert.ok(text.split('\n').includes(line), `missing: ${line}`)
      has('shoal_rounds_total{job="j1"} 2')
      has('shoal_round{job="j1"} 1')
      has('shoal_loss{job="j1"} 0.6')
      has('shoal_accuracy{job="j1"} 0.81')
      has('shoal_receipts_accepted_total{mine="false"} 1')
      has('shoal_reexecutions_total{outcome="match",mode="exact"} 1')
      has('shoal_reexecutions_total{outcome="mismatch",mode="exact"} 1')
      has('shoal_fraud_total{kind="proof"} 1')
      has('shoal_grants_total{event="revoked"} 1')
      has('shoal_peers 5')
      has('shoal_connections 6')
      has('shoal_gossip_messages_total{topic="updates",direction="delivered"} 7')
      has('shoal_gossip_rejected_total{topic="updates",reason="bad-signature"} 2')
      has('shoal_training_bytes_total{job="j1",direction="in"} 3000')
      has('shoal_event_streams_dropped_total 1')
      has('shoal_paused 0')
      has('shoal_rpc_request_duration_seconds_count{method="node_info",outcome="ok"} 2')
      has('shoal_rpc_request_duration_seconds_bucket{le="0.005",method="node_info",outcome="ok"} 1')
      has('shoal_rpc_request_duration_seconds_count{method="job_status",outcome="error"} 1')
      // prom-client's default metrics: RSS and event-loop lag.
      assert.match(text, /^shoal_process_resident_memory_bytes \d+/m)
      assert.match(text, /^shoal_nodejs_eventloop_lag_p99_seconds /m)
    } finally {
      m.stop()
    }
    assert.equal(bus.subscribers, 0)
  })

  it('times fetches of peer models and shards by kind and outcome; local reads are not fetches', async () => {
    const local = new Set<string>()
    const meter = new FetchMeter({ blocks: { has: (cid) => local.has(cid.toString()) } })
    const m = new NodeMetrics({ bus: new EventBus(), fetches: meter }, { defaults: false })
    const model = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const stalled = 'bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu'
    const broken = 'bafkreif6ebavqnp3jbecxiu2w5a6dhj2hvaw7qq7nkr7xmnzqu6mcqnuja'
    // A content store whose objects arrive when the test says so.
    const gets: Array<{ cid: string; signal?: AbortSignal }> = []
    const content = {
      add: async () => ({ cid: undefined as never }),
      unpin: async () => {},
      async *get(cid: { toString(): string }, opts: { signal?: AbortSignal } = {}) {
        gets.push({ cid: cid.toString(), ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
        if (cid.toString() === broken) throw Object.assign(new Error('no provider'), { code: 'NOT_FOUND' })
        if (cid.toString() === stalled) {
          // Waits for its signal, as a bitswap fetch with no provider does.
          await new Promise((_, reject) => {
            if (opts.signal?.aborted === true) reject(opts.signal.reason)
            opts.signal?.addEventListener('abort', () => reject(opts.signal?.reason))
          })
        }
        yield new Uint8Array(1000)
        yield new Uint8Array(24)
      }
    }
    const store = new MeteredWeightStore({ content: content as never, meter })
    try {
      assert.equal((await store.get(model)).byteLength, 1024)
      await assert.rejects(store.get(broken), /no provider/)
      const deadline = new AbortController()
      const pending = store.get(stalled, deadline.signal)
      deadline.abort(new DOMException('the round’s fetch deadline passed', 'TimeoutError'))
      await assert.rejects(pending)
      const halted = new AbortController()
      const cancelled = store.get(stalled, halted.signal)
      halted.abort()
      await assert.rejects(cancelled)
      local.add(model)
      await store.get(model) // its own model: already here, not a fetch
      const shard = meteredShardRead(meter, async (cid: string, job: string) => {
        assert.equal(job, 'j1')
        return {
          features: new Uint8Array(784 * 2),
          labels: new Uint8Array(2),
          count: 2,
          shape: [28, 28],
          classes: 10
        }
      })
      await shard(broken, 'j1')
      const text = await m.registry.metrics()
      const has = (line: string): void =>
        assert.ok(text.split('\n').includes(line), `missing: ${line}\n${text}`)
      has('shoal_fetch_duration_seconds_count{kind="model",outcome="ok"} 1')
      has('shoal_fetch_duration_seconds_count{kind="model",outcome="error"} 1')
      has('shoal_fetch_duration_seconds_count{kind="model",outcome="timeout"} 1')
      has('shoal_fetch_duration_seconds_count{kind="model",outcome="aborted"} 1')
      has('shoal_fetch_duration_seconds_count{kind="shard",outcome="ok"} 1')
      has('shoal_fetch_duration_seconds_bucket{le="+Inf",kind="model",outcome="ok"} 1')
      has('shoal_fetch_bytes_total{kind="model"} 1024')
      has('shoal_fetch_bytes_total{kind="shard"} 1570')
      assert.equal(gets.length, 5)
    } finally {
      m.stop()
    }
  })

  it('counts items exchanged by anti-entropy sync', async () => {
    const m = new NodeMetrics(
      { bus: new EventBus(), sync: () => ({ receipts: { received: 5, accepted: 3, sent: 2 } }) },
      { defaults: false }
    )
    try {
      const text = await m.registry.metrics()
      assert.match(text, /^shoal_sync_items_total\{sync="receipts",direction="accepted"\} 3$/m)
      assert.match(text, /^shoal_sync_items_total\{sync="receipts",direction="sent"\} 2$/m)
    } finally {
      m.stop()
    }
  })

  it('the opt-in listener serves /metrics without a token, and nothing else', async () => {
    const bus = new EventBus()
    const m = new NodeMetrics({ bus }, { defaults: false })
    const l = new MetricsListener(m, { host: '127.0.0.1', port: 0 })
    const url = await l.start()
    try {
      bus.publish('round.completed', { job: 'j', round: 3, loss: 0.25, accuracy: 0.9, checkpoint: 'c' })
      const res = await fetch(url)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
      assert.match(await res.text(), /^shoal_round\{job="j"\} 3$/m)
      assert.equal((await fetch(new URL('/rpc', url))).status, 404)
    } finally {
      await l.stop()
      m.stop()
    }
  })

  it('every metric the Grafana dashboard (docs/grafana-dashboard.json) queries exists', async () => {
    const m = new NodeMetrics({
      bus: new EventBus(),
      connections: () => ({ connections: 0, peers: 0 }),
      gossip: () => ({}),
      contributions: () => ({}),
      events: () => ({ clients: 0, opened: 0, dropped: 0, sent: 0 }),
      paused: () => false,
      fetches: new FetchMeter(),
      sync: () => null
    })
    try {
      const known = new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name))
      const doc = await readFile(
        join(import.meta.dirname, '..', '..', '..', 'docs', 'grafana-dashboard.json'),
        'utf8'
      )
      const used = new Set(
        [...doc.matchAll(/\bshoal_[a-z0-9_]+/g)].map((x) => x[0].replace(/_(bucket|count|sum)$/, ''))
      )
      assert.ok(used.size >= 10)
      for (const name of used) assert.ok(known.has(name), `${name} is not exported`)
    } finally {
      m.stop()
    }
  })

  it('names gossip topics by their kind', () => {
    assert.equal(topicKind('/shoal/1/abc/job/bafy/updates'), 'updates')
    assert.equal(topicKind('/shoal/1/abc/consent'), 'consent')
  })
})
