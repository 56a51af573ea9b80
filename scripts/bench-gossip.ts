/**
 * Gossip benchmark: N libp2p nodes in one process on 127.0.0.1 (a ring plus seeded random
 * links), Shoal's gossipsub options (StrictSign) and `GossipService` validators on the jobs
 * topic. Two phases per mode:
 *
 * - latency: messages published one at a time from rotating nodes, paced; the delivery delay
 *   to every other node (publish call → subscriber handler, one shared clock) gives p50/p99;
 * - throughput: a burst of messages from every node at once; validated deliveries per second
 *   per node until every node has every message.
 *
 * Modes: `public` (signature + schema validation) and `private` (also the swarm membership
 * handshake and the per-message membership check, with the author's credential on each message).
 * All nodes share this process's CPU, so the per-node rates are a lower bound for one node
 * per machine.
 *
 *   npx tsx scripts/bench-gossip.ts                           # 16 nodes, both modes
 *   npx tsx scripts/bench-gossip.ts --nodes 8 --messages 200 --burst 50 --mode public --out ''
 *
 * Options: --nodes N (16), --degree extra random links per node (3), --messages latency
 * messages (300), --interval ms between them (10), --burst messages per node in the
 * throughput phase (25), --mode public|private|both, --seed, --fast-id true|false (drop
 * duplicate copies before re-verifying their signature; default true), --out Markdown file
 * (benchmarks/gossip.md; '' for stdout only).
 */
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { Rng } from '../src/common/rng.js'
import { Identity, keypairFromSeed } from '../src/identity/index.js'
import {
  createSwarm,
  GossipService,
  issueCredential,
  libp2pOptions,
  PeerAccessList,
  swarmTopics,
  SwarmMembership
} from '../src/p2p/index.js'
import type { P2PServices } from '../src/p2p/index.js'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '16' },
    degree: { type: 'string', default: '3' },
    messages: { type: 'string', default: '300' },
    interval: { type: 'string', default: '10' },
    burst: { type: 'string', default: '25' },
    mode: { type: 'string', default: 'both' },
    seed: { type: 'string', default: '7' },
    'fast-id': { type: 'string', default: 'true' },
    out: { type: 'string', default: 'benchmarks/gossip.md' }
  }
})
const N = Number(values.nodes)
const DEGREE = Number(values.degree)
const MESSAGES = Number(values.messages)
const INTERVAL = Number(values.interval)
const BURST = Number(values.burst)
const SEED = Number(values.seed)
const FAST_ID = values['fast-id'] !== 'false'

interface Bench {
  nodes: Array<Libp2p<P2PServices>>
  gossip: GossipService[]
  memberships: SwarmMembership[]
  links: number
}

function identity(i: number): Identity {
  const seed = new Uint8Array(32)
  seed.fill(i + 1)
  seed[0] = 0xbe
  return Identity.fromKeypair(keypairFromSeed(seed))
}

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function setup(isPrivate: boolean, onMessage: (node: number, sentAt: number) => void): Promise<Bench> {
  const founder = identity(1000)
  const { swarm } = createSwarm({ name: 'bench', private: isPrivate, founder })
  const topics = swarmTopics(swarm.id)
  const nodes: Bench['nodes'] = []
  const gossip: GossipService[] = []
  const memberships: SwarmMembership[] = []
  for (let i = 0; i < N; i++) {
    const id = identity(i)
    const access = isPrivate ? new PeerAccessList() : undefined
    const opts = libp2pOptions({
      privateKey: id.libp2pPrivateKey,
      ...(access ? { connectionGater: access.gater } : {}),
      ...(FAST_ID ? {} : { gossip: { fastMsgIdFn: undefined } })
    })
    // every dial comes from 127.0.0.1: lift libp2p's per-host inbound rate limit (5/s)
    const node = await createLibp2p({ ...opts, connectionManager: { inboundConnectionThreshold: 1_000 } })
    let membership: SwarmMembership | undefined
    if (access) {
      const credential = await issueCredential(founder, swarm, id.did)
      membership = new SwarmMembership({ node, access }, { swarm, credential })
      await membership.start()
      memberships.push(membership)
    }
    const g = new GossipService(
      { pubsub: node.services.pubsub, ...(membership ? { access: membership } : {}) },
      { topics: [topics.jobs] }
    )
    g.start()
    g.subscribe(topics.jobs, (msg) => onMessage(i, Number((msg as { sentAt?: number }).sentAt)))
    nodes.push(node)
    gossip.push(g)
  }
  // a ring, plus DEGREE seeded random links per node
  const rng = new Rng(SEED)
  const edges = new Set<string>()
  const add = (a: number, b: number): void => {
    if (a === b) return
    edges.add(a < b ? `${a}-${b}` : `${b}-${a}`)
  }
  for (let i = 0; i < N; i++) {
    add(i, (i + 1) % N)
    for (let k = 0; k < DEGREE; k++) add(i, rng.int(N))
  }
  for (const e of edges) {
    const [a, b] = e.split('-').map(Number) as [number, number]
    for (let attempt = 1; ; attempt++) {
      try {
        await nodes[a]!.dial(nodes[b]!.getMultiaddrs()[0]!)
        break
      } catch (err) {
        console.error(`dial ${a} -> ${b} failed (attempt ${attempt}): ${(err as Error).message}`)
        if (attempt >= 3) throw err
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }
  const topic = topics.jobs.topic
  await waitFor(
    () => nodes.every((n) => n.services.pubsub.getSubscribers(topic).length >= Math.min(2, N - 1)),
    20_000,
    'subscriptions'
  )
  if (isPrivate) {
    await waitFor(
      () => nodes.every((n, i) => n.getConnections().every((c) => memberships[i]!.isMember(c.remotePeer))),
      20_000,
      'membership handshakes'
    )
  }
  await new Promise((r) => setTimeout(r, 2_000)) // a couple of heartbeats to settle the mesh
  return { nodes, gossip, memberships, links: edges.size }
}

async function teardown(b: Bench): Promise<void> {
  for (const g of b.gossip) g.stop()
  for (const m of b.memberships) await m.stop()
  await Promise.all(b.nodes.map(async (n) => n.stop()))
}

interface Result {
  mode: string
  links: number
  latency: { count: number; expected: number; p50: number; p90: number; p99: number; max: number }
  burst: { messages: number; deliveries: number; seconds: number; perNode: number; total: number }
  rejected: number
}

async function run(mode: 'public' | 'private'): Promise<Result> {
  const latencies: number[] = []
  let deliveries = 0
  let recording = true
  const bench = await setup(mode === 'private', (_node, sentAt) => {
    deliveries++
    if (recording) latencies.push(performance.now() - sentAt)
  })
  const topic = bench.gossip[0]!.topics()[0]!

  // latency phase: paced, rotating publishers
  for (let m = 0; m < MESSAGES; m++) {
    const from = m % N
    await bench.gossip[from]!.publish(topic, {
      type: 'bench',
      jobId: 'bench',
      seq: m,
      sentAt: performance.now()
    })
    await new Promise((r) => setTimeout(r, INTERVAL))
  }
  const expected = MESSAGES * (N - 1)
  await waitFor(() => latencies.length >= expected, 30_000, 'latency deliveries').catch(() => {})
  recording = false
  latencies.sort((a, b) => a - b)

  // throughput phase: every node publishes BURST messages at once
  deliveries = 0
  const total = BURST * N
  const t0 = performance.now()
  await Promise.all(
    bench.gossip.map(async (g, i) => {
      for (let m = 0; m < BURST; m++) {
        await g.publish(topic, {
          type: 'bench',
          jobId: 'bench',
          seq: i * BURST + m,
          sentAt: performance.now()
        })
      }
    })
  )
  await waitFor(() => deliveries >= total * (N - 1), 60_000, 'burst deliveries').catch(() => {})
  const seconds = (performance.now() - t0) / 1000
  let rejected = 0
  for (const g of bench.gossip) {
    for (const s of Object.values(g.stats()))
      rejected += Object.values(s.rejected).reduce((a, b) => a + (b ?? 0), 0)
  }
  await teardown(bench)
  return {
    mode,
    links: bench.links,
    latency: {
      count: latencies.length,
      expected,
      p50: pct(latencies, 50),
      p90: pct(latencies, 90),
      p99: pct(latencies, 99),
      max: latencies[latencies.length - 1] ?? NaN
    },
    burst: {
      messages: total,
      deliveries,
      seconds,
      perNode: deliveries / N / seconds,
      total: deliveries / seconds
    },
    rejected
  }
}

const modes: Array<'public' | 'private'> =
  values.mode === 'both' ? ['public', 'private'] : [values.mode as 'public' | 'private']
const results: Result[] = []
for (const mode of modes) {
  const r = await run(mode)
  results.push(r)
  console.error(`${mode}: done`)
}

const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')
const lines = [
  '## Gossip (scripts/bench-gossip.ts)',
  '',
  `${N} libp2p nodes in one Node ${process.version} process on 127.0.0.1 (TCP, noise, yamux, ` +
    `@libp2p/gossipsub 17, StrictSign), ring + ${DEGREE} seeded random links per node, ` +
    `jobs topic with its zod schema validator, fast message id ${FAST_ID ? 'on' : 'off'}; ${os.cpus().length} CPU cores shared by all nodes ` +
    `(${os.cpus()[0]?.model ?? 'unknown CPU'}), load average ${os.loadavg()[0]!.toFixed(1)} at the end of the run. ` +
    `Date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Latency: ${MESSAGES} messages, one every ${INTERVAL} ms from rotating publishers; delay from the ` +
    'publish call to the handler on every other node.',
  `Throughput: every node publishes ${BURST} messages at once; validated deliveries per second ` +
    'until every node has every message.',
  '',
  '| mode | links | delivered (latency phase) | p50 ms | p90 ms | p99 ms | max ms | burst deliveries | burst s | validated msg/s per node | msg/s all nodes | rejected |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|'
]
for (const r of results) {
  lines.push(
    `| ${r.mode} | ${r.links} | ${r.latency.count}/${r.latency.expected} | ${f(r.latency.p50)} | ${f(r.latency.p90)} | ` +
      `${f(r.latency.p99)} | ${f(r.latency.max)} | ${r.burst.deliveries}/${r.burst.messages * (N - 1)} | ` +
      `${f(r.burst.seconds, 2)} | ${f(r.burst.perNode, 0)} | ${f(r.burst.total, 0)} | ${r.rejected} |`
  )
}
lines.push(
  '',
  '`private` adds the membership handshake on every connection and, per message, the check that the',
  'forwarding peer is verified and the author holds a credential (verified once per author, then cached).',
  'Every node verifies every message signature (Ed25519), which is most of the per-message CPU cost.',
  ...(os.loadavg()[0]! > os.cpus().length
    ? [
        '',
        `The machine was busy with other work during this run (load average ${os.loadavg()[0]!.toFixed(1)} on ` +
          `${os.cpus().length} cores): treat these figures as a pessimistic bound and rerun on an idle machine.`
      ]
    : []),
  ''
)
const md = lines.join('\n')
console.log(md)
if (values.out !== '') await writeFile(values.out!, md)
process.exit(0)
