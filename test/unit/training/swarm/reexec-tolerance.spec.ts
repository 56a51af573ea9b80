/**
 * Verification with a tolerance, on real rounds: SwarmTrainers train with two CPU threads (not
 * bit-reproducible, `ep: cpu-parallel`) and publish their exact result weights (`resultCid`);
 * a verifier re-runs each round deterministically on one thread and accepts it within the
 * provider's bound although the hashes differ. Dishonest rounds — half the steps, the update
 * scaled, another node's data, an interpolation towards the base — fall outside, and the fraud
 * proofs they produce re-check; a proof against an honest round does not.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { Identity } from '../../../../src/identity/index.js'
import { type TensorDataset } from '../../../../src/training/data/index.js'
import { decodeWeights, encodeWeights } from '../../../../src/training/export/index.js'
import { paramsOf } from '../../../../src/training/graph/index.js'
import {
  checkFraudProof,
  computeLedger,
  decodeReceipt,
  issueFraudProof,
  issueReceipt,
  reexecutionConvicts,
  verifiability,
  verifyReexecution,
  type ReceiptClaims,
  type ReceiptInput
} from '../../../../src/training/receipts/index.js'
import {
  MemoryHub,
  MemoryWeightStore,
  rawCid,
  RoundReexecutor,
  type ClassifierJobSpec,
  type RoundRecord,
  type RoundReceiptSigner
} from '../../../../src/training/swarm/index.js'
import { identityOf, makeNode, smallTask, testJob } from './helpers.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

interface Signed {
  record: RoundRecord
  jwt: string
  claims: ReceiptClaims
  identity: Identity
}

type Weights = Map<string, Float32Array>

describe('swarm: re-execution within a tolerance (multi-threaded CPU rounds)', function () {
  this.timeout(60_000)
  const JOB = 'job-parallel'
  let job: ClassifierJobSpec
  const store = new MemoryWeightStore()
  const shards = new Map<string, TensorDataset>()
  const signed: Signed[] = []
  const shardOf = new Map<string, string>()
  let reexec: RoundReexecutor

  const get = async (cid: string): Promise<Uint8Array> => store.get(cid)

  function signer(identity: Identity, shardCid: string): RoundReceiptSigner {
    let prev: string | null = null
    return {
      sign: async (r: RoundRecord): Promise<string> => {
        const jwt = await issueReceipt(
          identity,
          {
            job: r.job,
            round: r.round,
            baseCid: r.baseCid,
            shards: [{ cid: shardCid, grant: `grant-${identity.did.slice(-6)}` }],
            hyper: r.hyper,
            seed: r.seed,
            samples: r.samples,
            steps: r.steps,
            resultHash: sha256(encodeWeights(r.weights, paramsOf(job.model))),
            lossBefore: Number.isFinite(r.lossBefore) ? r.lossBefore : 0,
            lossAfter: Number.isFinite(r.lossAfter) ? r.lossAfter : 0,
            ep: r.ep,
            ...(r.resultCid === undefined ? {} : { resultCid: r.resultCid }),
            ...(r.threads === undefined ? {} : { threads: r.threads })
          },
          prev
        )
        prev = jwt
        signed.push({ record: r, jwt, claims: decodeReceipt(jwt).claims, identity })
        return jwt
      }
    }
  }

  /** A dishonest receipt for `honest`'s round whose published weights are `weights`. */
  async function forge(honest: Signed, weights: Weights, over: Partial<ReceiptInput> = {}): Promise<string> {
    const resultCid = await store.put(encodeWeights(weights, paramsOf(job.model)))
    const { kind: _k, iss: _i, iat: _t, prev: _p, ...claims } = honest.claims
    return issueReceipt(
      honest.identity,
      { ...claims, resultCid, resultHash: sha256(encodeWeights(weights, paramsOf(job.model))), ...over },
      null
    )
  }

  const lerp = (a: Weights, b: Weights, t: number): Weights =>
    new Map([...a].map(([k, va]) => [k, va.map((v, i) => v + t * (b.get(k)![i]! - v))]))

  before(async function () {
    this.timeout(120_000)
    job = testJob({ hyper: { lr: 0.05, batchSize: 16, H: 12, k: 1, rounds: 2 } })
    const task = await smallTask(2, { trainCount: 400, testCount: 10 })
    const hub = new MemoryHub()
    const nodes = task.shards.map((d, i) => {
      const me = identityOf(40 + i)
      const cid = rawCid(new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength))
      shards.set(cid, d)
      shardOf.set(me.did, cid)
      return makeNode(
        { bus: hub.bus(me.did), store, train: d, receipts: signer(me, cid) },
        { job, jobId: JOB, did: me.did, deterministic: false, threads: 2, retainRounds: 100 }
      )
    })
    try {
      await Promise.all(nodes.map(async (n) => n.run()))
    } finally {
      await Promise.all(nodes.map(async (n) => n.stop()))
    }
    reexec = new RoundReexecutor({
      job: async (id) => {
        if (id !== JOB) throw new Error(`unknown job ${id}`)
        return job
      },
      weights: async (cid) => decodeWeights(await get(cid)),
      shards: async (cids) => {
        const d = shards.get(cids[0]!)
        if (d === undefined || cids.length !== 1) throw new Error('no such shard')
        return d
      }
    })
  })

  after(async () => {
    await reexec?.close()
  })

  it('honest multi-threaded rounds name cpu-parallel, their threads and published weights, and verify within the bound', async () => {
    assert.equal(signed.length, 4)
    for (const s of signed) {
      assert.equal(s.claims.ep, 'cpu-parallel')
      assert.equal(s.claims.threads, 2)
      assert.ok(s.claims.resultCid !== undefined)
      assert.equal(verifiability(s.claims), 'tolerance')
      const check = await verifyReexecution(s.jwt, reexec)
      assert.ok(check.ok, `round ${s.claims.round}: ${check.ok ? '' : check.detail}`)
      assert.equal(check.mode, 'tolerance')
      // Usually about 1e-6; a round that amplifies rounding may pass by its sensitivity instead.
      assert.ok(check.comparison!.relDistance <= 0.1, `relative distance ${check.comparison!.relDistance}`)
    }
  })

  it('dishonest rounds fall outside the bound, and their fraud proofs re-check', async () => {
    const honest = signed.find((s) => s.claims.round === 1)!
    const other = signed.find((s) => s.claims.round === 1 && s.identity !== honest.identity)!
    const base = decodeWeights(await get(honest.claims.baseCid))
    const claimed = decodeWeights(await get(honest.claims.resultCid!))
    // Half the steps: the deterministic re-run of the first H/2 steps.
    const half = await reexec.run(
      { ...honest.claims, steps: 6, hyper: { ...honest.claims.hyper } },
      { keepWeights: true }
    )
    const cheats: Array<[string, Weights]> = [
      ['half the steps', new Map(half.weights!)],
      ['scaled update ×1.5', lerp(base, claimed, 1.5)],
      ['interpolated halfway to the base', lerp(base, claimed, 0.5)],
      ['trained on another node’s data', decodeWeights(await get(other.claims.resultCid!))],
      ['update nudged by 1 %', lerp(claimed, lerp(base, claimed, 1.5), 0.02)]
    ]
    const verifier = identityOf(90)
    for (const [what, weights] of cheats) {
      const jwt = await forge(honest, weights)
      const check = await verifyReexecution(jwt, reexec)
      assert.ok(!check.ok, what)
      assert.equal(check.reason, 'outside-tolerance', `${what}: ${check.detail}`)
      assert.ok(reexecutionConvicts(check.reason))
      const proof = await issueFraudProof(verifier, {
        receipt: jwt,
        claimedHash: check.claimedHash!,
        expectedHash: check.expectedHash!
      })
      const recheck = await checkFraudProof(proof, reexec)
      assert.ok(recheck.ok, `${what}: ${recheck.ok ? '' : recheck.detail}`)
    }
    // Published weights that are not what the receipt's resultHash commits to: a raw CID is
    // its own hash, so such a receipt cannot even be signed (the schema refuses it).
    const wrongCid = await store.put(encodeWeights(lerp(base, claimed, 0.9), paramsOf(job.model)))
    await assert.rejects(forge(honest, claimed, { resultCid: wrongCid }), { code: 'RECEIPT_INVALID_CLAIMS' })
  })

  it('a fraud proof against an honest multi-threaded round is refused (no-mismatch)', async () => {
    const honest = signed[0]!
    const rerun = await reexec.run(honest.claims)
    assert.notEqual(rerun.resultHash, honest.claims.resultHash, 'the hashes differ: not bit-exact')
    const proof = await issueFraudProof(identityOf(91), {
      receipt: honest.jwt,
      claimedHash: honest.claims.resultHash!,
      expectedHash: rerun.resultHash
    })
    const recheck = await checkFraudProof(proof, reexec)
    assert.ok(!recheck.ok && recheck.reason === 'no-mismatch', recheck.ok ? '' : recheck.detail)
  })

  it('unpublished weights make a round unverifiable, and the ledger follows the job’s policy for it', async () => {
    const honest = signed[0]!
    const { kind: _k, iss: _i, iat: _t, prev: _p, resultCid: _r, ...claims } = honest.claims
    const hidden = await issueReceipt(honest.identity, claims, null)
    assert.equal(verifiability(decodeReceipt(hidden).claims), 'unverifiable')
    const check = await verifyReexecution(hidden, reexec)
    assert.ok(!check.ok && check.reason === 'unverifiable' && !reexecutionConvicts(check.reason))

    const forfeited = new Set<string>()
    const credited = computeLedger([honest.jwt, hidden], { forfeited, unverifiable: 'credit' })
    const unpaid = computeLedger([hidden], { forfeited })
    const excluded = computeLedger([hidden], { forfeited, unverifiable: () => 'exclude' })
    assert.equal(credited.history.length, 1, 'one receipt per (did, job, round)')
    assert.equal(unpaid.history[0]!.credits, 0)
    assert.equal(unpaid.history[0]!.unverifiable, true)
    assert.deepEqual(excluded.history, [])
    assert.deepEqual(computeLedger([hidden], { forfeited, unverifiable: 'credit' }).balances, {
      [honest.identity.did]: honest.claims.samples
    })
  })
})
