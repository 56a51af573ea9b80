/**
 * Language-model rounds in the swarm: three nodes in one process (in-memory hub and store) train
 * a tiny GPT on contiguous (non-IID) shards of a text, with plain averaging, with DiLoCo's
 * outer step and with a warm-up + cosine schedule; their held-out loss falls, they end on one
 * model, and a verifier re-runs their rounds from the receipts bit for bit.
 */
import assert from 'node:assert/strict'
import { decodeCompressed } from '../../../../src/training/aggregate/index.js'
import { decodeWeights } from '../../../../src/training/export/index.js'
import { diffWeights, l2Norm } from '../../../../src/training/privacy/index.js'
import {
  decodeReceipt,
  issueReceipt,
  resultHash,
  type ReceiptClaims
} from '../../../../src/training/receipts/index.js'
import { LmTrainer, compileGpt, initGptParams, trainLmRound } from '../../../../src/training/lm/index.js'
import { jobRoundSchedule, localRounds } from '../../../../src/training/swarm/local/index.js'
import { resolveOptions } from '../../../../src/training/swarm/options.js'
import {
  MemoryCheckpointStore,
  MemoryHub,
  MemoryWeightStore,
  OuterOptimizer,
  RoundReexecutor,
  SwarmTrainer,
  modelParams,
  parseJobSpec,
  rawCid,
  type JobSpec,
  type JobSpecInput,
  type RoundReceiptSigner,
  type RoundStats
} from '../../../../src/training/swarm/index.js'
import { mobyDick, splitText, textTokens } from '../../../../src/training/text/index.js'
import { TINY } from '../lm/tiny.js'
import { CREATOR, DATASET_CID, distance, identityOf, jobInput } from './helpers.js'

const NODES = 3
const ROUNDS = 5

function lmJob(overrides: Partial<JobSpecInput> = {}): JobSpec {
  return parseJobSpec({
    name: 'tiny-lm',
    model: TINY,
    optimizer: { type: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
    hyper: { lr: 1e-2, batchSize: 8, H: 12, k: NODES - 1, rounds: ROUNDS },
    dataset: DATASET_CID,
    aggregation: 'mean',
    compression: 'none',
    maxNorm: 100,
    seed: 3,
    creator: CREATOR.did,
    ...overrides
  })
}

interface LmRun {
  nodes: SwarmTrainer[]
  stats: RoundStats[][]
  store: MemoryWeightStore
  /** Every round's receipt claims (with signers). */
  claims: ReceiptClaims[]
}

/** Signs each round's receipt as a node does (resultHash of the weights after the local steps). */
function signer(seed: number, job: JobSpec, shard: string, out: ReceiptClaims[]): RoundReceiptSigner {
  const me = identityOf(seed)
  let prev: string | null = null
  return {
    sign: async (r) => {
      const jwt = await issueReceipt(
        me,
        {
          job: r.job,
          round: r.round,
          baseCid: r.baseCid,
          shards: [{ cid: shard, grant: `grant-${seed}` }],
          hyper: r.hyper,
          seed: r.seed,
          samples: r.samples,
          steps: r.steps,
          resultHash: resultHash(r.weights, modelParams(job.model)),
          lossBefore: r.lossBefore,
          lossAfter: r.lossAfter,
          ep: r.ep
        },
        prev
      )
      prev = jwt
      out.push(decodeReceipt(jwt).claims)
      return jwt
    }
  }
}

describe('swarm: language-model rounds', function () {
  this.timeout(120_000)
  // 60 KB of Moby Dick: three contiguous shards (chapters apart) and a held-out tail.
  const { shards, heldOut } = splitText(textTokens(mobyDick()).subarray(0, 60_000), {
    shards: NODES,
    heldOut: 0.1,
    context: TINY.context
  })
  const running: SwarmTrainer[] = []

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async (n) => n.stop()))
  })

  const shardCids = shards.map((tokens) => rawCid(tokens))

  /** What a verifier needs to re-run `run`'s rounds: the job, the stored weights, each shard's text. */
  const reexecComponents = (job: JobSpec, run: LmRun): ConstructorParameters<typeof RoundReexecutor>[0] => ({
    job: async () => job,
    weights: async (cid) => decodeWeights(await run.store.get(cid)),
    shards: async (cids) => ({ tokens: shards[shardCids.indexOf(cids[0]!)]! })
  })

  async function runSwarm(job: JobSpec): Promise<LmRun> {
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const claims: ReceiptClaims[] = []
    const nodes = shards.map((tokens, i) => {
      const did = identityOf(i + 1).did
      return new SwarmTrainer(
        {
          bus: hub.bus(did),
          store,
          checkpoints: new MemoryCheckpointStore(),
          train: { tokens },
          test: { tokens: heldOut },
          receipts: signer(i + 1, job, shardCids[i]!, claims)
        },
        {
          job,
          jobId: 'job-lm',
          did,
          deterministic: true,
          joinWaitMs: 0,
          peerWaitMs: 5_000,
          fetchTimeoutMs: 5_000,
          // Keep every round's base in the store: the verifier reads them afterwards.
          retainRounds: 100
        }
      )
    })
    running.push(...nodes)
    const stats: RoundStats[][] = nodes.map(() => [])
    const results = await Promise.all(
      nodes.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) }))
    )
    for (const r of results) assert.equal(r.stopped, 'done')
    return { nodes, stats, store, claims }
  }

  function check(run: LmRun, job: JobSpec, label: string): number[] {
    const init = initGptParams(compileGpt(TINY), job.seed)
    const weights = run.nodes.map((n) => n.weights()!)
    const moved = Math.min(...weights.map((w) => distance(w, init)))
    let apart = 0
    for (let i = 0; i < NODES; i++)
      for (let j = i + 1; j < NODES; j++) apart = Math.max(apart, distance(weights[i]!, weights[j]!))
    const losses = run.stats.map((s) => s.map((r) => r.testLoss!))
    console.log(
      `      ${label}: held-out nats/char ${losses.map((l) => `${l[0]!.toFixed(3)}→${l.at(-1)!.toFixed(3)}`).join(', ')}; ` +
        `moved ${moved.toFixed(3)}, max pairwise ${apart.toExponential(2)}`
    )
    for (const [i, s] of run.stats.entries()) {
      assert.ok(s.length >= 2, `node ${i} trained ${s.length} rounds`)
      for (const r of s) {
        assert.ok(Number.isFinite(r.testLoss), `node ${i} round ${r.round}: a held-out loss`)
        assert.equal(r.accuracy, undefined)
      }
      assert.ok(
        s.some((r) => r.peersUsed > 0),
        `node ${i} aggregated peer models`
      )
    }
    // From ln 256 ≈ 5.55 nats at the initial weights: the tiny model learns byte frequencies and
    // common pairs within a few rounds.
    for (const l of losses) {
      assert.ok(l.at(-1)! < l[0]!, `held-out loss falls: ${l.join(', ')}`)
      assert.ok(l.at(-1)! < 4, `held-out loss ends below 4 nats/char: ${l.at(-1)}`)
    }
    assert.ok(apart < 1e-3 * moved, `nodes end on one model: ${apart} apart, ${moved} from the start`)
    return losses.map((l) => l.at(-1)!)
  }

  it('plain averaging: held-out loss falls and the nodes end on one model', async () => {
    const job = lmJob()
    check(await runSwarm(job), job, 'mean')
  })

  it("DiLoCo's outer step: held-out loss falls and the nodes end on one model; a verifier re-runs every round bit for bit", async () => {
    const job = lmJob({ outer: { lr: 0.7, momentum: 0.9 } })
    const run = await runSwarm(job)
    check(run, job, 'outer')

    const reexec = new RoundReexecutor(reexecComponents(job, run))
    try {
      assert.equal(run.claims.length, run.stats.flat().length)
      for (const c of run.claims) {
        const r = await reexec.run(c)
        assert.equal(r.resultHash, c.resultHash, `round ${c.round} of ${c.iss.slice(-6)} re-runs to its hash`)
        assert.equal(r.samples, c.samples)
      }
      // Another data order, or another node's shard, gives other weights.
      const c = run.claims[0]!
      assert.notEqual((await reexec.run({ ...c, seed: c.seed + 1 })).resultHash, c.resultHash)
      const other = shardCids.find((s) => s !== c.shards[0]!.cid)!
      assert.notEqual(
        (await reexec.run({ ...c, shards: [{ cid: other, grant: 'g' }] })).resultHash,
        c.resultHash
      )
      // Tensors for a language model's round are refused by name.
      const tensors = new RoundReexecutor({
        job: async () => job,
        weights: async (cid) => decodeWeights(await run.store.get(cid)),
        shards: async () => ({ x: new Float32Array(4), y: new Uint8Array(4), count: 4, sampleShape: [1] })
      })
      await assert.rejects(tensors.run(c), { code: 'REEXEC_SPEC_MISMATCH', message: /language model/ })
      await tensors.close()
    } finally {
      await reexec.close()
    }
  })

  it('whole-update privacy: every shared update is clipped and noised, held-out loss still falls, a verifier re-runs each un-noised result; DP-SGD is refused with its reason', async () => {
    const clipNorm = 3
    const noiseMultiplier = 0.002
    const job = lmJob({ privacy: { clipNorm, noiseMultiplier } })
    const run = await runSwarm(job)
    check(run, job, 'whole-update DP')
    const params = modelParams(job.model)
    const d = params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0)
    // The noise's norm is about σ·C·√d; the clipped update adds at most C.
    const bound = clipNorm + 2 * noiseMultiplier * clipNorm * Math.sqrt(d)
    const reexec = new RoundReexecutor(reexecComponents(job, run))
    try {
      const norms: number[] = []
      for (const [i, stats] of run.stats.entries()) {
        const did = identityOf(i + 1).did
        for (const s of stats) {
          const claim = run.claims.find((c) => c.iss === did && c.round === s.round)!
          const shared = decodeCompressed(await run.store.get(s.weightsCid))
          const base = decodeWeights(await run.store.get(claim.baseCid))
          const norm = l2Norm(diffWeights(shared, base))
          assert.ok(norm <= bound, `round ${s.round} of node ${i}: shared update ${norm} > ${bound}`)
          // What left the node is not what it trained: the receipt names the un-noised result.
          assert.notEqual(resultHash(shared, params), claim.resultHash)
          assert.equal((await reexec.run(claim)).resultHash, claim.resultHash)
          norms.push(norm)
        }
      }
      console.log(
        `      shared update norms ${Math.min(...norms).toFixed(3)}–${Math.max(...norms).toFixed(3)} (bound ${bound.toFixed(3)})`
      )
    } finally {
      await reexec.close()
    }
    // Refused when the job is made, with its reason …
    const privacy = { mode: 'dp-sgd' as const, clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 }
    assert.throws(() => lmJob({ privacy }), {
      code: 'JOB_INVALID',
      message: /privacy\.mode.*DP-SGD is not built for language models/
    })
    // … and by the trainer, for a spec that was not parsed.
    const dpsgd: JobSpec = { ...lmJob(), privacy }
    assert.throws(
      () =>
        new SwarmTrainer(
          {
            bus: new MemoryHub().bus('did:key:a'),
            store: new MemoryWeightStore(),
            checkpoints: new MemoryCheckpointStore(),
            train: { tokens: shards[0]! }
          },
          { job: dpsgd, jobId: 'j', did: 'did:key:a' }
        ),
      { code: 'SWARM_OPTIONS_INVALID', message: /DP-SGD .* not supported for language-model jobs yet/ }
    )
  })

  it('a warm-up + cosine schedule over rounds × H: receipts carry each round’s share, a verifier re-runs it bit for bit; a receipt without it re-runs at the constant rate', async () => {
    const job = lmJob({
      hyper: {
        lr: 1e-2,
        batchSize: 8,
        H: 12,
        k: NODES - 1,
        rounds: ROUNDS,
        schedule: { type: 'warmup-cosine' }
      }
    })
    const run = await runSwarm(job)
    check(run, job, 'scheduled')
    // min(100, 5 % of 60 steps) = 3 warm-up steps, the floor lr / 10.
    for (const c of run.claims) {
      assert.equal(c.hyper.lr, 1e-2)
      assert.deepEqual(c.hyper.schedule, {
        type: 'warmup-cosine',
        step: c.round * 12,
        warmupSteps: 3,
        totalSteps: 60,
        minLr: 1e-3
      })
    }
    const components = reexecComponents(job, run)
    const reexec = new RoundReexecutor(components)
    const loose = new RoundReexecutor(components, { strictHyper: false })
    try {
      for (const c of run.claims) {
        const r = await reexec.run(c)
        assert.equal(r.resultHash, c.resultHash, `round ${c.round} of ${c.iss.slice(-6)} re-runs to its hash`)
      }
      // The last round (past the warm-up, at the end of the decay) without its schedule: a strict
      // verifier refuses it (not the job's schedule); a loose one re-runs it at the constant rate,
      // as an old receipt, which gives other weights than the claimed ones.
      const c = run.claims.at(-1)!
      const { schedule: _dropped, ...old } = c.hyper
      await assert.rejects(reexec.run({ ...c, hyper: old }), {
        code: 'REEXEC_SPEC_MISMATCH',
        field: 'hyper.schedule'
      })
      await assert.rejects(
        reexec.run({ ...c, hyper: { ...c.hyper, schedule: { ...(c.hyper.schedule as object), step: 0 } } }),
        { code: 'REEXEC_SPEC_MISMATCH', field: 'hyper.schedule', message: /other than the job's/ }
      )
      await assert.rejects(
        loose.run({ ...c, hyper: { ...c.hyper, schedule: { type: 'warmup-cosine', step: -1 } } }),
        { code: 'REEXEC_SPEC_MISMATCH', field: 'hyper.schedule', message: /malformed/ }
      )
      const constant = await loose.run({ ...c, hyper: old })
      assert.notEqual(constant.resultHash, c.resultHash)
      const model = compileGpt(TINY)
      const base = decodeWeights(await run.store.get(c.baseCid))
      const trainer = await LmTrainer.create(model, { weights: base, deterministic: true })
      try {
        await trainLmRound(trainer, shards[shardCids.indexOf(c.shards[0]!.cid)]!, {
          H: 12,
          batchSize: 8,
          lr: 1e-2,
          seed: c.seed
        })
        assert.equal(constant.resultHash, resultHash(trainer.weights(), modelParams(job.model)))
      } finally {
        await trainer.close()
      }
    } finally {
      await reexec.close()
      await loose.close()
    }
  })

  it("a round's share of the job's schedule, for a language model or a classifier", async () => {
    const spec = { type: 'warmup-cosine' as const }
    assert.equal(jobRoundSchedule(undefined, { lr: 1, H: 10, rounds: 4 }, 2), undefined)
    assert.deepEqual(jobRoundSchedule(spec, { lr: 1e-2, H: 500, rounds: 2 }, 1), {
      step: 500,
      warmupSteps: 50,
      totalSteps: 1000,
      minLr: 1e-3
    })
    assert.deepEqual(
      jobRoundSchedule({ ...spec, warmupSteps: 7, minLr: 0 }, { lr: 1e-2, H: 20, rounds: 50 }, 3),
      { step: 60, warmupSteps: 7, totalSteps: 1000, minLr: 0 }
    )
    const classifier = parseJobSpec({
      ...jobInput({ hyper: { lr: 0.05, batchSize: 8, H: 4, k: 1, rounds: 2, schedule: spec } }),
      creator: CREATOR.did
    })
    const options = resolveOptions({ job: classifier, jobId: 'j', did: 'did:key:a' })
    const tensors = { x: new Float32Array(784), y: new Uint8Array(1), count: 1, sampleShape: [784] }
    // A classifier takes the schedule too (bench:mixing: cosine + outer step at N = 16); its
    // receipts name each round's share (reexec.spec.ts re-runs them).
    const rounds = localRounds({ job: classifier, jobId: 'j', train: tensors, options })
    assert.deepEqual(rounds.receiptHyper(1), {
      schedule: { type: 'warmup-cosine', step: 4, warmupSteps: 0, totalSteps: 8, minLr: 0.005 }
    })
    assert.throws(
      () => parseJobSpec({ ...lmJob(), hyper: { ...lmJob().hyper, schedule: { type: 'cosine' } } }),
      { code: 'JOB_INVALID' }
    )
  })

  it('refuses tensors for a language model, text for a classifier, and a shard shorter than a window', () => {
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const parts = { bus: hub.bus('did:key:a'), store, checkpoints: new MemoryCheckpointStore() }
    const init = { job: lmJob(), jobId: 'j', did: 'did:key:a' }
    const tensors = { x: new Float32Array(4), y: new Uint8Array(4), count: 4, sampleShape: [1] }
    assert.throws(() => new SwarmTrainer({ ...parts, train: tensors }, init), {
      code: 'SWARM_OPTIONS_INVALID',
      message: /tensors, but the job's model is a language model/
    })
    assert.throws(
      () => new SwarmTrainer({ ...parts, train: { tokens: new Uint8Array(TINY.context) } }, init),
      {
        code: 'SWARM_OPTIONS_INVALID',
        message: /context 16 is longer than the train text allows/
      }
    )
    assert.throws(
      () => new SwarmTrainer({ ...parts, train: { tokens: new Uint8Array(16) }, test: tensors }, init),
      {
        code: 'SWARM_OPTIONS_INVALID'
      }
    )
  })
})

describe('OuterOptimizer', () => {
  const w = (v: number): Map<string, Float32Array> => new Map([['a', Float32Array.of(v, 2 * v)]])

  it('without options the aggregate is the next base', () => {
    const o = new OuterOptimizer(undefined)
    const agg = w(1)
    assert.equal(o.next(w(0), agg), agg)
    assert.equal(o.momentum, undefined)
  })

  it('keeps its momentum between rounds; reset forgets it', () => {
    const o = new OuterOptimizer({ lr: 1, momentum: 0.5 })
    // Δ = 1 − 0 … base 1, aggregate 0: v = 1, next = 1 − (1 + 0.5) = −0.5
    assert.deepEqual([...o.next(w(1), w(0)).get('a')!], [-0.5, -1])
    // v = 0.5·1 + 1 = 1.5; next = 1 − (1 + 0.75) = −0.75
    assert.deepEqual([...o.next(w(1), w(0)).get('a')!], [-0.75, -1.5])
    o.reset()
    assert.deepEqual([...o.next(w(1), w(0)).get('a')!], [-0.5, -1])
  })

  it('saves its momentum for a checkpoint and loads it back; refuses a buffer of another layout', async () => {
    const store = new MemoryWeightStore()
    const layout = { params: [{ name: 'a', shape: [2] }] }
    const o = new OuterOptimizer({ lr: 1, momentum: 0.5 })
    assert.equal(await o.save(store, layout.params), undefined, 'nothing to keep before the first step')
    o.next(w(1), w(0))
    const cid = (await o.save(store, layout.params))!
    const again = new OuterOptimizer({ lr: 1, momentum: 0.5 })
    again.reset(await OuterOptimizer.load(store, cid, layout))
    // As if it had never stopped: v = 1.5, next = −0.75.
    assert.deepEqual([...again.next(w(1), w(0)).get('a')!], [-0.75, -1.5])
    await assert.rejects(OuterOptimizer.load(store, cid, { params: [{ name: 'a', shape: [3] }] }))
    assert.equal(await new OuterOptimizer(undefined).save(store, layout.params), undefined)
  })
})
