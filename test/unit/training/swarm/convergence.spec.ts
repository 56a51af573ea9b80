/**
 * Four nodes in one process (in-memory hub and store) on non-IID Dirichlet(0.5) shards of
 * 800 mnist digits: gossip averaging against a centralised baseline, and int8 compression.
 */
import assert from 'node:assert/strict'
import { compileModel, initParams } from '../../../../src/training/graph/index.js'
import {
  MemoryHub,
  MemoryWeightStore,
  type JobSpec,
  type RoundStats,
  type SwarmTrainer
} from '../../../../src/training/swarm/index.js'
import {
  centralBaseline,
  distance,
  identityOf,
  makeNode,
  smallTask,
  testJob,
  type SmallTask
} from './helpers.js'

const NODES = 4
const ROUNDS = 8
const H = 5

interface SwarmRun {
  nodes: SwarmTrainer[]
  stats: RoundStats[][]
  accuracy: number[]
}

async function runSwarm(task: SmallTask, job: JobSpec): Promise<SwarmRun> {
  const hub = new MemoryHub()
  const store = new MemoryWeightStore()
  const nodes = task.shards.map((shard, i) => {
    const did = identityOf(i + 1).did
    return makeNode({ bus: hub.bus(did), store, train: shard, test: task.test }, { job, did })
  })
  const stats: RoundStats[][] = nodes.map(() => [])
  const results = await Promise.all(
    nodes.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) }))
  )
  for (const r of results) assert.equal(r.stopped, 'done')
  return { nodes, stats, accuracy: results.map((r) => r.accuracy!) }
}

describe('swarm: gossip averaging on non-IID shards', function () {
  this.timeout(120_000)
  let task: SmallTask
  let baseline: number
  const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H, k: NODES - 1, rounds: ROUNDS } })
  const runs: SwarmRun[] = []

  before(async () => {
    task = await smallTask(NODES)
    baseline = await centralBaseline(job, task.union, task.test, ROUNDS * H * NODES)
  })

  after(async () => {
    for (const run of runs) await Promise.all(run.nodes.map(async (n) => n.stop()))
  })

  it('every node ends near the centralised baseline, and the nodes agree', async () => {
    const run = await runSwarm(task, job)
    runs.push(run)
    const compiled = compileModel(job.model, job.optimizer)
    const init = initParams(compiled, job.seed)
    const weights = run.nodes.map((n) => n.weights()!)
    const moved = Math.min(...weights.map((w) => distance(w, init)))
    let apart = 0
    for (let i = 0; i < NODES; i++)
      for (let j = i + 1; j < NODES; j++) apart = Math.max(apart, distance(weights[i]!, weights[j]!))
    console.log(
      `      central ${baseline.toFixed(3)}; nodes ${run.accuracy.map((a) => a.toFixed(3)).join(' ')}; ` +
        `moved ${moved.toFixed(3)}, max pairwise ${apart.toExponential(2)}`
    )
    // A loose bound for 8 short rounds on 800 digits (the swarm's averaged steps see a 4× larger
    // effective batch than the baseline's); the 2-point criterion belongs to the e2e benchmark.
    for (const a of run.accuracy) {
      assert.ok(a >= baseline - 0.15, `node accuracy ${a} far below the baseline ${baseline}`)
      assert.ok(a >= 0.65, `node accuracy ${a} too low`)
    }
    assert.ok(moved > 1, `the models barely moved (${moved})`)
    assert.ok(apart < 0.01 * moved, `the nodes disagree: pairwise ${apart} vs moved ${moved}`)
    // Every round of every node used all its peers, and nothing was rejected.
    for (const s of run.stats.flat()) {
      assert.equal(s.peersUsed, NODES - 1, `round ${s.round} used ${s.peersUsed} peers`)
      assert.equal(s.rejected.length, 0)
      assert.equal(s.unavailable.length, 0)
      assert.equal(s.rule, 'mean')
    }
    // Accuracy goes up over the rounds.
    const curve = run.stats[0]!.map((s) => s.accuracy!)
    assert.ok(curve[curve.length - 1]! > curve[0]! + 0.15, `accuracy did not improve: ${curve.join(', ')}`)
  })

  it('int8 compression sends about 4× fewer bytes and still converges', async () => {
    const plain = runs[0]!
    const run = await runSwarm(task, { ...job, compression: 'int8' })
    runs.push(run)
    const sent = (r: SwarmRun): number => r.nodes.reduce((n, node) => n + node.counters.bytesSent, 0)
    const received = (r: SwarmRun): number => r.nodes.reduce((n, node) => n + node.counters.bytesReceived, 0)
    const ratio = sent(plain) / sent(run)
    console.log(
      `      bytes sent ${sent(plain)} → ${sent(run)} (×${ratio.toFixed(2)}); accuracy ${run.accuracy.map((a) => a.toFixed(3)).join(' ')}`
    )
    assert.ok(ratio > 3.9 && ratio < 4.05, `compression ratio ${ratio}`)
    assert.ok(received(plain) / received(run) > 3.9)
    for (let i = 0; i < NODES; i++) {
      assert.ok(Math.abs(run.accuracy[i]! - plain.accuracy[i]!) < 0.03, 'int8 changed the accuracy much')
      assert.ok(run.accuracy[i]! >= baseline - 0.15)
    }
    const weights = run.nodes.map((n) => n.weights()!)
    const init = initParams(compileModel(job.model, job.optimizer), job.seed)
    const apart = distance(weights[0]!, weights[1]!)
    const moved = distance(weights[0]!, init)
    console.log(`      int8: pairwise ${apart.toFixed(4)} vs moved ${moved.toFixed(3)}`)
    assert.ok(apart < 0.05 * moved)
  })
})
