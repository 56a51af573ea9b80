/**
 * The parts around the round loop: the reproducible local round, the stores, option checks,
 * receipts and privacy of the shared model, lifecycle errors.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hasCode } from '../../../../src/common/index.js'
import { decodeCompressed, updateNorm } from '../../../../src/training/aggregate/index.js'
import { fromTensors } from '../../../../src/training/data/index.js'
import { decodeWeights } from '../../../../src/training/export/index.js'
import { compileModel, initParams, initState } from '../../../../src/training/graph/index.js'
import { Trainer } from '../../../../src/training/runtime/index.js'
import {
  concatDatasets,
  FileCheckpointStore,
  MemoryHub,
  MemoryWeightStore,
  rawCid,
  roundSeed,
  trainRound,
  type RoundRecord,
  type RoundStats
} from '../../../../src/training/swarm/index.js'
import { identityOf, makeNode, testJob, swarmSuite } from './helpers.js'

function bits(w: ReadonlyMap<string, Float32Array>): string[] {
  return [...w].map(
    ([n, t]) => `${n}:${Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('base64')}`
  )
}

describe('swarm: components', function () {
  this.timeout(60_000)
  const suite = swarmSuite(2, { trainCount: 300, testCount: 100 })
  const nodes = suite.nodes

  it('a local round is a pure function of base, shards, seed and round (bit for bit)', async () => {
    const job = testJob()
    const compiled = compileModel(job.model, job.optimizer)
    const base = initParams(compiled, job.seed)
    const run = async (round: number): Promise<string[]> => {
      const trainer = await Trainer.create(compiled, { weights: base, deterministic: true })
      try {
        // Some momentum left from an earlier round must not matter: the round zeroes it.
        await trainer.step(
          suite.task.shards[1]!.x.subarray(0, 784 * 4),
          suite.task.shards[1]!.y.subarray(0, 4),
          0.1
        )
        trainer.setWeights(base)
        const r = await trainRound(trainer, suite.task.shards[0]!, {
          H: 7,
          batchSize: 16,
          lr: 0.05,
          seed: roundSeed(job.seed, round),
          zeroState: initState(compiled)
        })
        assert.equal(r.steps, 7)
        assert.equal(r.samples, 7 * 16)
        assert.ok(Number.isFinite(r.lossBefore) && Number.isFinite(r.lossAfter))
        return bits(trainer.getWeights())
      } finally {
        await trainer.close()
      }
    }
    const [a, b, c] = [await run(3), await run(3), await run(4)]
    assert.deepEqual(a, b)
    assert.notDeepEqual(a, c)
    assert.notEqual(roundSeed(1, 0), roundSeed(1, 1))
    assert.notEqual(roundSeed(1, 0), roundSeed(2, 0))
    assert.equal(roundSeed(1, 5), roundSeed(1, 5))
  })

  it('concatenates shards and refuses mismatched ones', () => {
    const a = fromTensors(Float32Array.of(1, 2, 3, 4), Uint8Array.of(0, 1), [2])
    const b = fromTensors(Float32Array.of(5, 6), Uint8Array.of(1), [2])
    const ab = concatDatasets([a, b])
    assert.equal(ab.count, 3)
    assert.deepEqual([...ab.x], [1, 2, 3, 4, 5, 6])
    assert.deepEqual([...ab.y], [0, 1, 1])
    assert.equal(concatDatasets(a), a)
    const c = fromTensors(Float32Array.of(1, 2, 3), Uint8Array.of(0), [3])
    assert.throws(
      () => concatDatasets([a, c]),
      (e: unknown) => hasCode(e, 'SWARM_OPTIONS_INVALID')
    )
    assert.throws(
      () => concatDatasets([]),
      (e: unknown) => hasCode(e, 'SWARM_OPTIONS_INVALID')
    )
  })

  it('memory store: content-addressed, reference-counted', async () => {
    const store = new MemoryWeightStore()
    const bytes = new TextEncoder().encode('model')
    const cid = await store.put(bytes)
    assert.equal(cid, rawCid(bytes))
    assert.match(cid, /^bafkrei/)
    assert.equal(await store.put(bytes), cid)
    await store.remove(cid)
    assert.deepEqual(await store.get(cid), bytes)
    await store.remove(cid)
    assert.equal(store.has(cid), false)
    await assert.rejects(store.get(cid), (e: unknown) => hasCode(e, 'NOT_FOUND'))
  })

  it('file checkpoint store: survives a new instance, ignores a garbled file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-swarm-'))
    try {
      const cid = rawCid(Uint8Array.of(1))
      const a = new FileCheckpointStore({ dir })
      assert.equal(await a.latest('job-1'), undefined)
      await a.save({ job: 'job-1', round: 3, weightsCid: cid, accuracy: 0.5 })
      await a.save({ job: 'job-1', round: 4, weightsCid: cid })
      const b = new FileCheckpointStore({ dir })
      assert.deepEqual(await b.latest('job-1'), { job: 'job-1', round: 4, weightsCid: cid })
      assert.equal(await b.latest('job-2'), undefined)
      await writeFile(join(dir, 'job-1.json'), '{"job":"job-1","round":')
      assert.equal(await b.latest('job-1'), undefined)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses options that cannot work', () => {
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const did = identityOf(1).did
    const bad: Array<[string, () => unknown]> = [
      [
        'H',
        () =>
          makeNode({ bus: hub.bus(did), store, train: suite.task.shards[0]! }, { job: testJob(), did, H: 0 })
      ],
      [
        'k',
        () =>
          makeNode(
            { bus: hub.bus(did), store, train: suite.task.shards[0]! },
            { job: testJob(), did, k: 1.5 }
          )
      ],
      [
        'fetchTimeoutMs',
        () =>
          makeNode(
            { bus: hub.bus(did), store, train: suite.task.shards[0]! },
            { job: testJob(), did, fetchTimeoutMs: -1 }
          )
      ],
      [
        'train',
        () =>
          makeNode(
            { bus: hub.bus(did), store, train: fromTensors(new Float32Array(10), Uint8Array.of(1, 2), [5]) },
            { job: testJob(), did }
          )
      ]
    ]
    for (const [option, make] of bad) {
      assert.throws(
        make,
        (e: unknown) => hasCode(e, 'SWARM_OPTIONS_INVALID') && e.fields.option === option,
        option
      )
    }
  })

  it('announces a signed receipt per round and clips the shared update under privacy', async () => {
    const clipNorm = 0.05
    const job = testJob({
      hyper: { lr: 0.05, batchSize: 32, H: 4, k: 1, rounds: 2 },
      privacy: { clipNorm, noiseMultiplier: 0 }
    })
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const records: RoundRecord[] = []
    const jwtFor = (round: number): string => `eyJhbGciOiJFZERTQSJ9.eyJyb3VuZCI6${round}fQ.c2ln`
    const signer = {
      sign: async (record: RoundRecord): Promise<string> => {
        records.push(record)
        return jwtFor(record.round)
      }
    }
    const stats: RoundStats[][] = [[], []]
    const dids = [1, 2].map((i) => identityOf(i).did)
    const pair = [0, 1].map((i) =>
      makeNode(
        {
          bus: hub.bus(dids[i]!),
          store,
          train: suite.task.shards[i]!,
          ...(i === 0 ? { receipts: signer } : {})
        },
        { job, did: dids[i]! }
      )
    )
    nodes.push(...pair)
    await Promise.all(pair.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))

    assert.equal(records.length, 2)
    const r0 = records[0]!
    assert.equal(r0.job, 'job-test')
    assert.equal(r0.round, 0)
    assert.equal(r0.steps, 4)
    assert.equal(r0.samples, 4 * 32)
    assert.equal(r0.seed, roundSeed(job.seed, 0))
    assert.deepEqual(r0.hyper, { lr: 0.05, batchSize: 32, steps: 4, optimizer: 'sgd' })
    assert.equal(r0.ep, 'cpu')
    assert.equal(r0.weightsCid, stats[0]![0]!.weightsCid)
    assert.equal(records[1]!.baseCid, stats[0]![0]!.checkpointCid, "round 1 starts from round 0's checkpoint")
    const announced = hub.log.filter((e) => e.from === dids[0]).map((e) => e.msg)
    assert.deepEqual(
      announced.map((m) => [m.round, m.receipt, m.samples, m.weightsCid]),
      [0, 1].map((r) => [r, jwtFor(r), 128, stats[0]![r]!.weightsCid])
    )
    assert.ok(announced.every((m) => typeof m.loss === 'number' && m.loss > 0))

    // Round 1 of node 0: base = its round-0 checkpoint; the shared model is within clipNorm of
    // it, though the local steps moved farther.
    const base = decodeWeights(await store.get(stats[0]![0]!.checkpointCid))
    const shared = decodeCompressed(await store.get(stats[0]![1]!.weightsCid))
    const sharedNorm = updateNorm(shared, base)
    const localNorm = updateNorm(records[1]!.weights, base)
    assert.ok(sharedNorm <= clipNorm * (1 + 1e-6), `shared update norm ${sharedNorm}`)
    assert.ok(localNorm > 2 * clipNorm, `local update norm ${localNorm} (clipping not exercised)`)
  })

  it('under privacy the next base is built from the announced (noised) model, never the un-noised one', async () => {
    const job = testJob({
      hyper: { lr: 0.05, batchSize: 32, H: 4, k: 0, rounds: 2 },
      privacy: { clipNorm: 0.05, noiseMultiplier: 1 }
    })
    const did = identityOf(1).did
    const store = new MemoryWeightStore()
    const records: RoundRecord[] = []
    const stats: RoundStats[] = []
    const node = makeNode(
      {
        bus: new MemoryHub().bus(did),
        store,
        train: suite.task.shards[0]!,
        receipts: { sign: async (r) => void records.push(r) }
      },
      { job, did }
    )
    nodes.push(node)
    await node.run({ onRound: (s) => void stats.push(s) })
    const shared = decodeCompressed(await store.get(stats[0]!.weightsCid))
    const checkpoint = decodeWeights(await store.get(stats[0]!.checkpointCid))
    assert.deepEqual(bits(checkpoint), bits(shared), 'the base of round 1 is what round 0 announced')
    assert.notDeepEqual(bits(checkpoint), bits(records[0]!.weights))
  })

  it('a round trained with several CPU threads says so (cpu-parallel): only deterministic rounds claim cpu', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 2, k: 0, rounds: 1 } })
    const did = identityOf(1).did
    const eps: string[] = []
    for (const deterministic of [false, true]) {
      const node = makeNode(
        {
          bus: new MemoryHub().bus(did),
          store: new MemoryWeightStore(),
          train: suite.task.shards[0]!,
          receipts: { sign: async (r) => void eps.push(r.ep) }
        },
        { job, did, deterministic, threads: 2 }
      )
      nodes.push(node)
      await node.run()
    }
    assert.deepEqual(eps, ['cpu-parallel', 'cpu'])
  })

  it('trains alone with k = 0 (no waiting) and stops at the target accuracy', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 0, rounds: 100, targetAccuracy: 0.5 } })
    const did = identityOf(1).did
    const node = makeNode(
      {
        bus: new MemoryHub().bus(did),
        store: new MemoryWeightStore(),
        train: suite.task.shards[0]!,
        test: suite.task.test
      },
      { job, did, peerWaitMs: 60_000 }
    )
    nodes.push(node)
    const stats: RoundStats[] = []
    const result = await node.run({ onRound: (s) => void stats.push(s) })
    assert.equal(result.stopped, 'target')
    assert.ok(result.accuracy! >= 0.5)
    assert.ok(result.roundsRun < 100 && result.roundsRun === stats.length)
    assert.ok(stats.every((s) => s.peersUsed === 0 && s.rule === 'own' && s.netMs < 5_000))
    assert.equal(result.nextRound, stats.length)
  })

  it('run is exclusive; stop ends it and refuses further runs', async () => {
    const job = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 2, k: 1, rounds: 50 } })
    const hub = new MemoryHub()
    const did = identityOf(1).did
    const node = makeNode(
      { bus: hub.bus(did), store: new MemoryWeightStore(), train: suite.task.shards[0]! },
      { job, did, peerWaitMs: 20 }
    )
    nodes.push(node)
    let rounds = 0
    const running = node.run({ onRound: () => void rounds++ })
    await assert.rejects(node.run(), (e: unknown) => hasCode(e, 'SWARM_BUSY'))
    while (rounds < 2) await new Promise((r) => setTimeout(r, 10))
    await node.stop()
    const result = await running
    assert.equal(result.stopped, 'aborted')
    assert.ok(result.roundsRun >= 2 && result.roundsRun < 50)
    await assert.rejects(node.run(), (e: unknown) => hasCode(e, 'SWARM_STOPPED'))
    await node.stop()
  })
})
