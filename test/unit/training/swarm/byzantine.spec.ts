import assert from 'node:assert/strict'
import { decodeCompressed, encodeCompressed } from '../../../../src/training/aggregate/index.js'
import { compileModel, initParams } from '../../../../src/training/graph/index.js'
import {
  MemoryCheckpointStore,
  MemoryHub,
  MemoryWeightStore,
  SwarmTrainer,
  type RoundRecord
} from '../../../../src/training/swarm/index.js'
import {
  BYZANTINE_ATTACKS,
  byzantineTamper,
  flipLabels,
  parseByzantine,
  withheldCid,
  type TamperContext
} from '../../../../src/training/index.js'
import { swarmSuite, testJob } from './helpers.js'

const w = (...a: number[]): Map<string, Float32Array> => new Map([['a', Float32Array.from(a)]])
const values = (t: { weights: Map<string, Float32Array> } | { withhold: true }): number[] => {
  assert.ok('weights' in t)
  return [...t.weights.get('a')!]
}
const ctx = (peers: Array<Map<string, Float32Array>> = []): TamperContext => ({
  round: 3,
  mine: w(2, 4),
  base: w(1, 1),
  peers
})

describe('swarm: Byzantine trainers (lab tool)', () => {
  it('parses attack[:param] with defaults, and refuses anything else with SWARM_OPTIONS_INVALID', () => {
    assert.deepEqual(parseByzantine('sign-flip'), { kind: 'sign-flip', param: 1 })
    assert.deepEqual(parseByzantine('scale:4'), { kind: 'scale', param: 4 })
    assert.deepEqual(parseByzantine(' alie '), { kind: 'alie', param: 1 })
    assert.deepEqual(parseByzantine('withhold'), { kind: 'withhold' })
    for (const kind of BYZANTINE_ATTACKS) assert.equal(parseByzantine(kind).kind, kind)
    for (const bad of [
      '',
      'flip',
      'scale:',
      'scale:x',
      'scale:-1',
      'withhold:2',
      'noise:1:2',
      'scale:Infinity'
    ]) {
      assert.throws(() => parseByzantine(bad), { code: 'SWARM_OPTIONS_INVALID' }, bad)
    }
  })

  it('corrupts the shared model along the own update (base + c·u)', () => {
    // u = (1, 3)
    assert.deepEqual(values(byzantineTamper(parseByzantine('sign-flip')).share(ctx())), [0, -2])
    assert.deepEqual(values(byzantineTamper(parseByzantine('scale:10')).share(ctx())), [11, 31])
    assert.deepEqual(values(byzantineTamper(parseByzantine('ipm:0.5')).share(ctx())), [0.5, -0.5])
  })

  it('adds seeded Gaussian noise', () => {
    const a = values(byzantineTamper({ kind: 'noise', param: 1, seed: 1 }).share(ctx()))
    const b = values(byzantineTamper({ kind: 'noise', param: 1, seed: 1 }).share(ctx()))
    assert.deepEqual(a, b)
    assert.notDeepEqual(a, [2, 4])
  })

  it('ALIE moves z standard deviations of the honest peer models below the own model', () => {
    const t = byzantineTamper(parseByzantine('alie:2'))
    assert.equal(t.needsPeers, true)
    // σ of (0, 2) and (2, 2): (√2, 0)
    const out = values(t.share(ctx([w(0, 2), w(2, 2)])))
    assert.ok(Math.abs(out[0]! - (2 - 2 * Math.SQRT2)) < 1e-6)
    assert.equal(out[1], 4)
    // With fewer than two peer models, the own update's size stands in for σ.
    assert.deepEqual(values(t.share(ctx())), [0, -2])
  })

  it('free-rides on the newest peer model, withholds, and leaves label flipping to the data', () => {
    const free = byzantineTamper(parseByzantine('free-ride'))
    assert.deepEqual(values(free.share(ctx([w(7, 7), w(5, 5)]))), [7, 7])
    assert.deepEqual(values(free.share(ctx())), [2, 4])
    assert.deepEqual(byzantineTamper(parseByzantine('withhold')).share(ctx()), { withhold: true })
    assert.deepEqual(values(byzantineTamper(parseByzantine('label-flip')).share(ctx())), [2, 4])
    const cid = withheldCid('bafkreiabc')
    assert.match(cid, /^bafkrei/)
    assert.notEqual(cid, withheldCid('bafkreiabd'))
  })

  it('flips labels to classes − 1 − y without touching the input', () => {
    const data = {
      x: Float32Array.from([1, 2, 3]),
      y: Uint8Array.from([0, 3, 9]),
      count: 3,
      sampleShape: [1]
    }
    const flipped = flipLabels(data, 10)
    assert.deepEqual([...flipped.y], [9, 6, 0])
    assert.deepEqual([...data.y], [0, 3, 9])
    assert.equal(flipped.x, data.x)
  })
})

describe('swarm: a Byzantine trainer in a round', function () {
  this.timeout(120_000)
  const suite = swarmSuite(2, { trainCount: 300, testCount: 100 })

  async function runAttacker(attack: string): Promise<{
    store: MemoryWeightStore
    records: RoundRecord[]
    announced: string[]
  }> {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 2, k: 1, rounds: 2 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const records: RoundRecord[] = []
    const announced: string[] = []
    hub.bus('did:key:observer').subscribe((msg) => void announced.push(msg.weightsCid))
    const node = new SwarmTrainer(
      {
        bus: hub.bus('did:key:attacker'),
        store,
        checkpoints: new MemoryCheckpointStore(),
        train: suite.task.shards[0]!,
        receipts: {
          sign: async (r) => {
            records.push(r)
            return undefined
          }
        },
        tamper: byzantineTamper(parseByzantine(attack))
      },
      { job, jobId: 'job-test', did: 'did:key:attacker', deterministic: true, joinWaitMs: 0, peerWaitMs: 0 }
    )
    suite.nodes.push(node)
    await node.run()
    return { store, records, announced }
  }

  it('announces the corrupted model, and its receipt commits to what it announced', async () => {
    const { store, records, announced } = await runAttacker('sign-flip')
    assert.equal(records.length, 2)
    for (const [i, r] of records.entries()) {
      assert.equal(r.weightsCid, announced[i])
      const shared = decodeCompressed(await store.get(r.weightsCid))
      for (const [name, t] of r.weights) assert.deepEqual([...shared.get(name)!], [...t], name)
    }
  })

  it('withholding announces a CID that nobody stores', async () => {
    const { store, records, announced } = await runAttacker('withhold')
    assert.equal(announced.length, 2)
    for (const [i, cid] of announced.entries()) {
      assert.equal(records[i]!.weightsCid, cid)
      await assert.rejects(store.get(cid))
    }
    assert.notEqual(announced[0], announced[1])
  })
})

describe('swarm: the gossip-robust rules in rounds', function () {
  this.timeout(120_000)
  const suite = swarmSuite(3, { trainCount: 300, testCount: 100 })

  for (const rule of ['clipped-gossip', 'bucketing'] as const) {
    it(`${rule}: every round with peer models uses it`, async () => {
      const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 2, k: 2, rounds: 3 } })
      const hub = new MemoryHub()
      const store = new MemoryWeightStore()
      const nodes = suite.task.shards.map(
        (train, i) =>
          new SwarmTrainer(
            { bus: hub.bus(`did:key:n${i}`), store, checkpoints: new MemoryCheckpointStore(), train },
            { job, rule, jobId: 'job-test', did: `did:key:n${i}`, deterministic: true, joinWaitMs: 0 }
          )
      )
      suite.nodes.push(...nodes)
      const rules: string[] = []
      await Promise.all(nodes.map(async (n) => n.run({ onRound: (s) => void rules.push(s.rule) })))
      assert.ok(rules.includes(rule), rules.join(', '))
      assert.deepEqual(
        rules.filter((r) => r !== rule && r !== 'own'),
        []
      )
    })
  }
})

describe('swarm: joining from peers at a job’s start', function () {
  this.timeout(120_000)
  const suite = swarmSuite(1, { trainCount: 200, testCount: 100 })

  it('a node starting with the others trains from the initial weights, not from their first (maybe Byzantine) models', async () => {
    // Found by bench:byzantine: nodes that saw a round-0 announcement while starting joined from
    // the newest models — one honest, one noised — and every rule over two models is a mean.
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 2, k: 2, rounds: 1 } })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const compiled = compileModel(job.model, job.optimizer)
    const init = initParams(compiled, job.seed)
    const noisy = byzantineTamper({ kind: 'noise', param: 1, seed: 3 }).share({
      round: 0,
      mine: init,
      base: init,
      peers: []
    })
    assert.ok('weights' in noisy)
    const models = [init, noisy.weights]
    for (const [i, m] of models.entries()) {
      const weightsCid = await store.put(encodeCompressed(m, 'none', compiled.params))
      setTimeout(
        () =>
          void hub.publish(`did:key:p${i}`, {
            type: 'update',
            job: 'job-test',
            round: 0,
            weightsCid,
            samples: 64
          }),
        50
      )
    }
    const node = new SwarmTrainer(
      {
        bus: hub.bus('did:key:late'),
        store,
        checkpoints: new MemoryCheckpointStore(),
        train: suite.task.shards[0]!
      },
      { job, jobId: 'job-test', did: 'did:key:late', deterministic: true, joinWaitMs: 5_000, peerWaitMs: 0 }
    )
    suite.nodes.push(node)
    await node.run()
    assert.equal(node.startedFrom?.source, 'initial')
    assert.equal(node.startedFrom?.round, 0)
  })
})
