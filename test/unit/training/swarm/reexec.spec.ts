/**
 * Receipt re-execution: a verifier re-runs the rounds that SwarmTrainers (deterministic, in
 * memory) signed receipts for, and gets their weights hash bit for bit — from the initial
 * weights and from aggregates, with momentum and Adam state, under differential privacy (the
 * receipt hashes the pre-noise weights), and for a round that stopped on a non-finite loss.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { hasCode } from '../../../../src/common/index.js'
import type { Identity } from '../../../../src/identity/index.js'
import { decodeCompressed } from '../../../../src/training/aggregate/index.js'
import { fromTensors, shapeSize, type TensorDataset } from '../../../../src/training/data/index.js'
import { decodeWeights, encodeWeights } from '../../../../src/training/export/index.js'
import { paramsOf } from '../../../../src/training/graph/index.js'
import {
  decodeReceipt,
  issueReceipt,
  verifyReexecution,
  type ReceiptClaims
} from '../../../../src/training/receipts/index.js'
import { Trainer } from '../../../../src/training/runtime/index.js'
import {
  concatDatasets,
  MemoryHub,
  MemoryWeightStore,
  rawCid,
  RoundReexecutor,
  type ClassifierJobSpec,
  type JobSpec,
  type JobSpecInput,
  type RoundRecord,
  type RoundReceiptSigner,
  type RoundReexecutorComponents,
  type RoundStats
} from '../../../../src/training/swarm/index.js'
import { identityOf, makeNode, smallTask, testJob } from './helpers.js'

/** One signed round: the trainer's record, the sha-256 of its weights and the receipt. */
interface Signed {
  record: RoundRecord
  hash: string
  jwt: string
  claims: ReceiptClaims
}

interface Swarm {
  jobId: string
  job: ClassifierJobSpec
  store: MemoryWeightStore
  signed: Signed[]
  stats: RoundStats[][]
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Shards by CID (the memory store's raw CIDs of their samples). */
const shardsByCid = new Map<string, TensorDataset>()
const jobs = new Map<string, JobSpec>()
/** Every swarm's weight store. */
const stores: MemoryWeightStore[] = []

function addShard(d: TensorDataset): string {
  const cid = rawCid(new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength))
  shardsByCid.set(cid, d)
  return cid
}

/** A data set cut in two shards. */
function halves(d: TensorDataset): [TensorDataset, TensorDataset] {
  const S = shapeSize(d.sampleShape)
  const h = Math.floor(d.count / 2)
  return [
    fromTensors(d.x.slice(0, h * S), d.y.slice(0, h), d.sampleShape),
    fromTensors(d.x.slice(h * S, d.count * S), d.y.slice(h, d.count), d.sampleShape)
  ]
}

/** Sign receipts for a node's rounds as the node does (resultHash of the record's weights). */
function signer(
  identity: Identity,
  job: ClassifierJobSpec,
  shardCids: string[],
  out: Signed[]
): RoundReceiptSigner {
  let prev: string | null = null
  return {
    sign: async (r: RoundRecord): Promise<string> => {
      const hash = sha256(encodeWeights(r.weights, paramsOf(job.model)))
      const jwt = await issueReceipt(
        identity,
        {
          job: r.job,
          round: r.round,
          baseCid: r.baseCid,
          shards: shardCids.map((cid) => ({ cid, grant: `grant-${identity.did.slice(-6)}` })),
          hyper: r.hyper,
          seed: r.seed,
          samples: r.samples,
          steps: r.steps,
          resultHash: hash,
          lossBefore: Number.isFinite(r.lossBefore) ? r.lossBefore : 0,
          lossAfter: Number.isFinite(r.lossAfter) ? r.lossAfter : 0,
          ep: r.ep
        },
        prev
      )
      prev = jwt
      out.push({ record: r, hash, jwt, claims: decodeReceipt(jwt).claims })
      return jwt
    }
  }
}

/** Run `data.length` deterministic SwarmTrainers of one job in memory, each on two shards. */
async function runSwarm(jobId: string, input: Partial<JobSpecInput>, data: TensorDataset[]): Promise<Swarm> {
  const job = testJob(input)
  jobs.set(jobId, job)
  const hub = new MemoryHub()
  const store = new MemoryWeightStore()
  stores.push(store)
  const signed: Signed[] = []
  const stats: RoundStats[][] = data.map(() => [])
  const nodes = data.map((d, i) => {
    const me = identityOf(10 + i)
    const parts = halves(d)
    const cids = parts.map(addShard)
    return makeNode(
      { bus: hub.bus(me.did), store, train: concatDatasets(parts), receipts: signer(me, job, cids, signed) },
      // Keep every round's base in the store: the verifier reads them afterwards.
      { job, jobId, did: me.did, retainRounds: 100, noiseSeed: 5 + i }
    )
  })
  try {
    await Promise.all(nodes.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))
  } finally {
    await Promise.all(nodes.map(async (n) => n.stop()))
  }
  return { jobId, job, store, signed, stats }
}

/** A verifier's components over the swarms' stores and the shard library. */
function components(calls = { job: 0, active: 0, maxActive: 0 }): RoundReexecutorComponents {
  return {
    job: async (id) => {
      calls.job++
      const spec = jobs.get(id)
      if (spec === undefined) throw new Error(`unknown job ${id}`)
      return spec
    },
    weights: async (cid) => {
      calls.active++
      calls.maxActive = Math.max(calls.maxActive, calls.active)
      try {
        await new Promise((resolve) => setImmediate(resolve))
        for (const s of stores) if (s.has(cid)) return decodeWeights(await s.get(cid))
        throw new Error(`no weights ${cid}`)
      } finally {
        calls.active--
      }
    },
    shards: async (cids) =>
      concatDatasets(
        cids.map((cid) => {
          const d = shardsByCid.get(cid)
          if (d === undefined) throw new Error(`no shard ${cid}`)
          return d
        })
      )
  }
}

async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  fields: Record<string, unknown> = {}
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(hasCode(e, code), `expected ${code}, got ${String(e)}`)
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e.fields[k], v, k)
    return true
  })
}

describe('swarm: receipt re-execution', function () {
  this.timeout(30_000)
  let plain: Swarm
  let dp: Swarm
  let reexec: RoundReexecutor

  before(async function () {
    this.timeout(60_000)
    const task = await smallTask(3, { trainCount: 240, testCount: 10 })
    // Three nodes, SGD with momentum, int8-compressed exchange, mean of k = 2 peers.
    plain = await runSwarm(
      'job-plain',
      {
        optimizer: { type: 'sgd', momentum: 0.9 },
        hyper: { lr: 0.05, batchSize: 16, H: 3, k: 2, rounds: 3 },
        compression: 'int8'
      },
      task.shards
    )
    // Two nodes, Adam, clipped and noised shared updates.
    dp = await runSwarm(
      'job-dp',
      {
        optimizer: { type: 'adam' },
        hyper: { lr: 0.01, batchSize: 16, H: 3, k: 1, rounds: 2 },
        privacy: { clipNorm: 0.05, noiseMultiplier: 1 }
      },
      task.shards.slice(0, 2)
    )
    reexec = new RoundReexecutor(components())
  })

  after(async () => {
    await reexec?.close()
  })

  it('reproduces every round of three trainers, from the initial weights and from aggregates', async () => {
    assert.equal(plain.signed.length, 9)
    for (const s of plain.signed) {
      const check = await verifyReexecution(s.jwt, reexec)
      assert.deepEqual(
        check,
        { ok: true, mode: 'exact', resultHash: s.hash, samples: s.record.samples },
        `round ${s.record.round}`
      )
      assert.equal(s.record.samples, 3 * 16)
    }
    // Rounds 1 and 2 started from aggregates of the node's model with its peers'.
    for (const [i, rounds] of plain.stats.entries()) {
      for (const st of rounds.slice(0, 2)) {
        assert.ok(st.peersUsed > 0, `node ${i} round ${st.round} aggregated no peer model`)
        const next = plain.signed.find(
          (s) => s.record.round === st.round + 1 && s.record.baseCid === st.checkpointCid
        )
        assert.ok(next !== undefined, `node ${i} round ${st.round + 1} starts from the aggregate`)
      }
    }
    const bases = new Set(plain.signed.map((s) => s.record.baseCid))
    assert.ok(bases.size >= 4, `${bases.size} distinct bases`)
  })

  it('reproduces rounds of a private job: the receipt hashes the weights before the noise', async () => {
    assert.equal(dp.signed.length, 4)
    for (const s of dp.signed) {
      const r = await reexec.run(s.claims)
      assert.deepEqual(
        { resultHash: r.resultHash, samples: r.samples },
        { resultHash: s.hash, samples: s.record.samples }
      )
      assert.ok(r.trainMs! > 0)
      // What the node shared is the clipped, noised model: another hash.
      const shared = decodeCompressed(await dp.store.get(s.record.weightsCid))
      assert.notEqual(sha256(encodeWeights(shared, paramsOf(dp.job.model))), s.hash)
    }
    assert.ok(
      dp.signed.some((s) => s.record.round === 1 && s.record.baseCid !== dp.signed[0]!.record.baseCid)
    )
  })

  it('reproduces rounds of a classifier job with a warm-up + cosine schedule and the outer step; the receipt names each round’s share', async () => {
    const task = await smallTask(2, { trainCount: 160, testCount: 10 })
    const sched = await runSwarm(
      'job-scheduled',
      {
        optimizer: { type: 'sgd', momentum: 0.9 },
        hyper: { lr: 0.05, batchSize: 16, H: 4, k: 1, rounds: 3, schedule: { type: 'warmup-cosine' } },
        outer: { lr: 0.7, momentum: 0.9 }
      },
      task.shards
    )
    const loose = new RoundReexecutor(components(), { strictHyper: false })
    try {
      assert.equal(sched.signed.length, 6)
      for (const s of sched.signed) {
        // 12 steps: min(100, 5 % of 12) = 1 warm-up step, then cosine down to lr / 10.
        assert.deepEqual(s.claims.hyper.schedule, {
          type: 'warmup-cosine',
          step: s.record.round * 4,
          warmupSteps: 1,
          totalSteps: 12,
          minLr: 0.005
        })
        const check = await verifyReexecution(s.jwt, reexec)
        assert.deepEqual(check, { ok: true, mode: 'exact', resultHash: s.hash, samples: 4 * 16 })
      }
      // The schedule is applied: the last round re-run at the constant rate gives other weights.
      const last = sched.signed.at(-1)!
      const { schedule: _dropped, ...constant } = last.claims.hyper
      const r = await loose.run({ ...last.claims, hyper: constant })
      assert.notEqual(r.resultHash, last.hash)
      await rejectsWith(reexec.run({ ...last.claims, hyper: constant }), 'REEXEC_SPEC_MISMATCH', {
        field: 'hyper.schedule'
      })
    } finally {
      await loose.close()
    }
  })

  it('a receipt whose hash, samples or training were altered does not match', async () => {
    const me = identityOf(30)
    const s = plain.signed[4]!
    const input = (over: Partial<ReceiptClaims>): Parameters<typeof issueReceipt>[1] =>
      stripped({ ...s.claims, ...over })
    const otherHash = plain.signed[5]!.hash
    const wrongHash = await verifyReexecution(
      await issueReceipt(me, input({ resultHash: otherHash }), null),
      reexec
    )
    assert.equal(wrongHash.ok, false)
    assert.ok(!wrongHash.ok && wrongHash.reason === 'result-mismatch')
    assert.equal(!wrongHash.ok && wrongHash.expectedHash, s.hash)

    const wrongSamples = await verifyReexecution(
      await issueReceipt(me, input({ samples: s.claims.samples + 16 }), null),
      reexec
    )
    assert.ok(!wrongSamples.ok && wrongSamples.reason === 'samples-mismatch', JSON.stringify(wrongSamples))

    // Claims that describe another round than the one whose hash they carry.
    for (const over of [{ seed: (s.claims.seed + 1) >>> 0 }, { baseCid: plain.signed[0]!.claims.baseCid }]) {
      const r = await reexec.run({ ...s.claims, ...over })
      assert.notEqual(r.resultHash, s.hash, JSON.stringify(over))
    }
    // Shards in another order are other data.
    const swapped = await reexec.run({ ...s.claims, shards: [...s.claims.shards].reverse() })
    assert.notEqual(swapped.resultHash, s.hash)
  })

  it('refuses rounds it cannot run with stable codes', async () => {
    const s = plain.signed[3]!
    const unknown = rawCid(new TextEncoder().encode('not stored anywhere'))
    await rejectsWith(reexec.run({ ...s.claims, baseCid: unknown }), 'REEXEC_INPUT_UNAVAILABLE', {
      input: 'base',
      cid: unknown
    })
    const check = await verifyReexecution(
      await issueReceipt(identityOf(31), { ...stripped(s.claims), baseCid: unknown }, null),
      reexec
    )
    assert.ok(!check.ok && check.reason === 'reexecution-error')
    await rejectsWith(reexec.run({ ...s.claims, job: 'job-unknown' }), 'REEXEC_INPUT_UNAVAILABLE', {
      input: 'job'
    })
    await rejectsWith(
      reexec.run({ ...s.claims, shards: [{ cid: unknown, grant: 'g' }] }),
      'REEXEC_INPUT_UNAVAILABLE',
      { input: 'shards', cids: [unknown] }
    )
    const hyper = s.claims.hyper
    await rejectsWith(
      reexec.run({ ...s.claims, hyper: { ...hyper, optimizer: 'adam' } }),
      'REEXEC_SPEC_MISMATCH',
      {
        field: 'hyper.optimizer'
      }
    )
    await rejectsWith(reexec.run({ ...s.claims, hyper: { ...hyper, lr: 0.5 } }), 'REEXEC_SPEC_MISMATCH', {
      field: 'hyper.lr'
    })
    await rejectsWith(reexec.run({ ...s.claims, hyper: { ...hyper, steps: 1000 } }), 'REEXEC_SPEC_MISMATCH', {
      field: 'hyper.steps'
    })
    await rejectsWith(reexec.run({ ...s.claims, steps: hyper.steps + 1 }), 'REEXEC_SPEC_MISMATCH', {
      field: 'steps'
    })
    // Base weights of another model.
    const alien = await plain.store.put(encodeWeights(new Map([['w', Float32Array.of(1, 2)]])))
    await rejectsWith(reexec.run({ ...s.claims, baseCid: alien }), 'REEXEC_SPEC_MISMATCH', {
      field: 'baseCid'
    })
    await rejectsWith(reexec.run({ ...s.claims, ep: 'tpu' }), 'REEXEC_NOT_REPRODUCIBLE', { ep: 'tpu' })
    const aborted = AbortSignal.abort(new Error('verifier shutting down'))
    await assert.rejects(reexec.run(s.claims, { signal: aborted }), /verifier shutting down/)
    // Still sound after the refusals.
    assert.equal((await reexec.run(s.claims)).resultHash, s.hash)

    // With strictHyper off, the receipt's own learning rate is used (and gives another model).
    const lax = new RoundReexecutor(components(), { strictHyper: false })
    try {
      const r = await lax.run({ ...s.claims, hyper: { ...hyper, lr: 0.5 } })
      assert.notEqual(r.resultHash, s.hash)
      assert.equal(r.samples, s.record.samples)
      await rejectsWith(
        lax.run({ ...s.claims, hyper: { ...hyper, optimizer: 'adam' } }),
        'REEXEC_SPEC_MISMATCH'
      )
    } finally {
      await lax.close()
    }
    assert.throws(
      () => new RoundReexecutor(components(), { maxTrainers: 0 }),
      (e: unknown) => hasCode(e, 'SWARM_OPTIONS_INVALID') && e.fields.option === 'maxTrainers'
    )
  })

  it('runs one at a time, keeps maxTrainers jobs and closes the evicted trainers', async () => {
    const calls = { job: 0, active: 0, maxActive: 0 }
    const one = new RoundReexecutor(components(calls), { maxTrainers: 1 })
    const closeTrainer = Trainer.prototype.close
    let closed = 0
    Trainer.prototype.close = async function (this: Trainer): Promise<void> {
      closed++
      return closeTrainer.call(this)
    }
    try {
      // Alternate the two jobs, all submitted at once.
      const order = [plain.signed[0]!, dp.signed[0]!, plain.signed[8]!, plain.signed[7]!, dp.signed[3]!]
      const results = await Promise.all(order.map(async (s) => one.run(s.claims)))
      assert.deepEqual(
        results.map((r) => r.resultHash),
        order.map((s) => s.hash)
      )
      assert.equal(calls.maxActive, 1, 'runs overlapped')
      assert.equal(calls.job, 4, 'job switches: plain, dp, plain, dp')
      assert.equal(closed, 3, 'each eviction closes the evicted trainer')
      // A run queued behind a long one is refused once the executor closes.
      const pending = [one.run(plain.signed[1]!.claims), one.run(plain.signed[2]!.claims)]
      await one.close()
      for (const p of pending) await rejectsWith(p, 'REEXEC_CLOSED')
      assert.equal(closed, 4)
      await rejectsWith(one.run(plain.signed[1]!.claims), 'REEXEC_CLOSED')
      await one.close()
    } finally {
      Trainer.prototype.close = closeTrainer
      await one.close()
    }
  })

  it('reproduces a round that stopped early on a non-finite loss', async () => {
    const task = await smallTask(1, { trainCount: 60, testCount: 10 })
    const diverging = await runSwarm(
      'job-diverging',
      { optimizer: { type: 'sgd' }, hyper: { lr: 1e20, batchSize: 16, H: 8, k: 0, rounds: 1 } },
      task.shards
    )
    const s = diverging.signed[0]!
    assert.ok(s.record.steps >= 1 && s.record.steps < 8, `the round stopped after ${s.record.steps} steps`)
    const r = await reexec.run(s.claims)
    assert.deepEqual(
      { resultHash: r.resultHash, samples: r.samples },
      { resultHash: s.hash, samples: s.record.samples }
    )
    // Claiming to have stopped one step earlier does not reproduce.
    const early = await reexec.run({ ...s.claims, steps: s.claims.steps - 1 })
    assert.notEqual(early.resultHash, s.hash)
  })
})

function stripped(c: ReceiptClaims): Parameters<typeof issueReceipt>[1] {
  const { kind: _k, iss: _i, iat: _t, prev: _p, ...rest } = c
  return rest
}
