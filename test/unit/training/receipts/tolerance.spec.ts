/**
 * Verification with a tolerance, as pure functions: how a claimed update is compared with the
 * re-run's, which receipts can be checked that way, and every path of `verifyReexecution` for
 * them with a stand-in re-executor (the real one: test/unit/training/swarm/reexec-tolerance.spec.ts).
 */
import assert from 'node:assert/strict'
import {
  acceptedWithin,
  checkFraudProof,
  issueFraudProof,
  judgeTolerance,
  type UpdateComparison,
  adaptiveLimit,
  compareUpdates,
  perturbWeights,
  computeLedger,
  issueReceipt,
  reexecutionConvicts,
  TOLERANCE_BOUNDS,
  toleranceFor,
  verifiability,
  verifyAll,
  verifyReexecution,
  withinTolerance,
  type ClaimedResult,
  type ReceiptClaims,
  type ReexecutionResult,
  type Reexecutor
} from '../../../../src/training/receipts/index.js'
import { fakeCid, grantFor, honestInput, identity, MemoryGrants } from './helpers.js'

type W = Map<string, Float32Array>
const w = (a: number[], b: number[] = [0]): W =>
  new Map([
    ['a', Float32Array.from(a)],
    ['b', Float32Array.from(b)]
  ])
const hashOf = (weights: ReadonlyMap<string, Float32Array>): string =>
  [...weights.values()]
    .flatMap((t) => [...t])
    .map((v) => v.toFixed(6))
    .join(',')
    .padEnd(64, '0')
    .slice(0, 64)
    .replace(/[^0-9a-f]/g, 'f')

/** A re-executor whose re-run is `rerun` from `base`, and whose published result is `claimed`. */
class StubReexecutor implements Reexecutor {
  runs = 0
  constructor(
    private readonly base: W,
    private readonly rerun: W,
    private readonly claimed: W | Error,
    private readonly claimedHash?: string
  ) {}
  async run(_claims: ReceiptClaims, opts: { keepWeights?: boolean } = {}): Promise<ReexecutionResult> {
    this.runs++
    return {
      resultHash: hashOf(this.rerun),
      ...(opts.keepWeights === true ? { weights: this.rerun, base: this.base } : {})
    }
  }
  async result(): Promise<ClaimedResult> {
    if (this.claimed instanceof Error) throw this.claimed
    return { weights: this.claimed, resultHash: this.claimedHash ?? hashOf(this.claimed) }
  }
}

async function receiptFor(claimed: W, over: Partial<ReceiptClaims> = {}): Promise<string> {
  return issueReceipt(
    identity(7),
    {
      ...honestInput({ round: 0, grant: 'g', shards: [0] }),
      ep: 'cpu-parallel',
      threads: 4,
      resultCid: fakeCid('published-dag-pb-stand-in').replace(/^bafkrei/, 'bafybei'),
      resultHash: hashOf(claimed),
      ...over
    },
    null
  )
}

describe('receipts: verification within a tolerance', () => {
  const base = w([1, 2, 3], [0])
  const rerun = w([1.1, 2.2, 2.9], [0.1]) // update (0.1, 0.2, -0.1, 0.1)

  it('compares updates in float64: relative distance, cosine, norms, and edge cases', () => {
    const same = compareUpdates(base, rerun, rerun)
    assert.ok(typeof same !== 'string')
    assert.equal(same.relDistance, 0)
    assert.ok(Math.abs(same.cosine - 1) < 1e-12)
    assert.ok(Math.abs(same.updateNorm - Math.sqrt(0.07)) < 1e-6)
    const doubled = compareUpdates(base, w([1.2, 2.4, 2.8], [0.2]), rerun)
    assert.ok(typeof doubled !== 'string')
    assert.ok(
      Math.abs(doubled.relDistance - 1) < 1e-5,
      `scaled ×2 is one update away: ${doubled.relDistance}`
    )
    assert.ok(Math.abs(doubled.cosine - 1) < 1e-6, 'same direction')
    const flipped = compareUpdates(base, w([0.9, 1.8, 3.1], [-0.1]), rerun)
    assert.ok(typeof flipped !== 'string' && Math.abs(flipped.cosine + 1) < 1e-6)
    // No update on either side (a round that stopped at once) is a match; on one side only is not.
    const still = compareUpdates(base, base, base)
    assert.deepEqual(still, { relDistance: 0, cosine: 1, updateNorm: 0, claimedNorm: 0 })
    const moved = compareUpdates(base, rerun, base)
    assert.ok(typeof moved !== 'string' && moved.relDistance === Infinity && moved.cosine === 0)
    // Layouts that do not match, and non-finite values, are reasons, not numbers.
    assert.match(compareUpdates(base, new Map([['a', Float32Array.of(1, 2, 3)]]), rerun) as string, /counts/)
    assert.match(compareUpdates(base, w([1, 2]), rerun) as string, /size/)
    assert.match(compareUpdates(base, w([1, 2, NaN]), rerun) as string, /non-finite/)
    const renamed = new Map([...rerun].map(([k, v]) => [`${k}x`, v]))
    assert.match(compareUpdates(base, renamed, rerun) as string, /missing/)
  })

  it('classifies receipts: exact on deterministic CPU, tolerance with published weights, else unverifiable', () => {
    const c = { resultHash: 'a'.repeat(64), resultCid: fakeCid('r') }
    assert.equal(verifiability({ ...c, ep: 'cpu' }), 'exact')
    assert.equal(
      verifiability({ ep: 'cpu', resultCid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' }),
      'unverifiable'
    )
    for (const ep of ['cpu-parallel', 'cuda', 'webgpu']) {
      assert.equal(verifiability({ ...c, ep }), 'tolerance', ep)
      assert.equal(verifiability({ resultHash: c.resultHash, ep }), 'unverifiable', `${ep} without resultCid`)
    }
    assert.equal(verifiability({ ...c, ep: 'tpu' }), 'unverifiable')
    assert.equal(toleranceFor('constructor'), undefined, 'no prototype keys')
    for (const bound of Object.values(TOLERANCE_BOUNDS)) {
      assert.ok(bound.maxRelDistance > 0 && bound.maxRelDistance < 0.1)
      assert.ok(bound.minCosine > 0.99 && bound.minCosine < 1)
    }
    const close = compareUpdates(base, w([1.1000001, 2.2, 2.9], [0.1]), rerun)
    assert.ok(typeof close !== 'string' && withinTolerance(close, toleranceFor('cpu-parallel')!))
  })

  it('accepts a round within the bound though the hashes differ, and refuses one outside it', async () => {
    const near = w([1.1 + 1e-7, 2.2, 2.9 - 1e-7], [0.1])
    const ok = await verifyReexecution(await receiptFor(near), new StubReexecutor(base, rerun, near))
    assert.ok(ok.ok && ok.mode === 'tolerance' && ok.comparison!.relDistance < 1e-5, JSON.stringify(ok))

    const scaled = w([1.15, 2.3, 2.85], [0.15])
    const out = await verifyReexecution(await receiptFor(scaled), new StubReexecutor(base, rerun, scaled))
    assert.ok(!out.ok && out.reason === 'outside-tolerance', JSON.stringify(out))
    assert.ok(reexecutionConvicts(out.reason))
    assert.ok(out.comparison!.relDistance > 0.4)
    assert.equal(out.expectedHash, hashOf(rerun))
  })

  it('outside the tight stage, judges by the round’s own sensitivity to rounding (a perturbed re-run)', async () => {
    // A round that amplifies rounding: its re-run from the perturbed base lands about 1e-3 away.
    const sensitive: Reexecutor = {
      run: async (_c, opts = {}) => ({
        resultHash: hashOf(rerun),
        ...(opts.keepWeights === true
          ? { weights: opts.perturbBase !== undefined ? w([1.1003, 2.2, 2.9], [0.1]) : rerun, base }
          : {})
      }),
      result: async () => ({ weights: claimedNow, resultHash: hashOf(claimedNow) })
    }
    let claimedNow = w([1.1 + 0.02, 2.2, 2.9], [0.1]) // ≈ 7.6e-2: beyond 20 × the sensitivity (1.1e-3 → 2.3e-2)
    const far = await verifyReexecution(await receiptFor(claimedNow), sensitive)
    assert.ok(!far.ok && far.reason === 'outside-tolerance', JSON.stringify(far))
    assert.ok(far.comparison!.sensitivity! > 1e-3 && far.comparison!.sensitivity! < 1.3e-3)
    assert.match(far.detail, /sensitivity/)
    claimedNow = w([1.1 + 0.005, 2.2, 2.9], [0.1]) // ≈ 1.9e-2: outside the tight stage, within 20 × the sensitivity
    const near = await verifyReexecution(await receiptFor(claimedNow), sensitive)
    assert.ok(
      near.ok && near.mode === 'tolerance' && near.comparison!.sensitivity !== undefined,
      JSON.stringify(near)
    )
    // A tame round (the perturbed re-run lands on the re-run) leaves only the tight stage.
    const tame = new StubReexecutor(base, rerun, claimedNow)
    const r = await verifyReexecution(await receiptFor(claimedNow), tame)
    assert.ok(!r.ok && r.reason === 'outside-tolerance' && r.comparison!.sensitivity === 0)
    // The cap holds however sensitive the round.
    const bound = toleranceFor('cpu-parallel')!
    assert.equal(adaptiveLimit(1, bound), bound.maxAdaptiveRelDistance)
    assert.equal(
      acceptedWithin({ relDistance: 0.2, cosine: 0.99, updateNorm: 1, claimedNorm: 1 }, bound, 1),
      false
    )
  })

  it('judges within, outside, or (for a round too chaotic to tell) no verdict', async () => {
    const bound = toleranceFor('cpu-parallel')!
    const c = (relDistance: number): UpdateComparison => ({
      relDistance,
      cosine: 0.9,
      updateNorm: 1,
      claimedNorm: 1
    })
    assert.equal(judgeTolerance({ ...c(1e-6), cosine: 1 }, bound), 'within')
    assert.equal(judgeTolerance(c(0.05), bound), 'outside', 'no sensitivity measured')
    assert.equal(judgeTolerance(c(0.05), bound, 0.01), 'within', '≤ min(0.1, 20 × 0.01)')
    assert.equal(judgeTolerance(c(0.05), bound, 0.001), 'outside', '> 20 × 0.001')
    assert.equal(
      judgeTolerance(c(0.4), bound, 0.5),
      'inconclusive',
      'beyond the cap, within the round’s own noise'
    )
    assert.equal(judgeTolerance(c(11), bound, 0.5), 'outside', 'beyond even 20 × the noise')
    // End to end: a chaotic round (its perturbed re-run lands 0.5 away) and a claim 0.3 away.
    const perturbedFar = w([1.1 + 0.15, 2.2, 2.9], [0.1]) // ≈ 0.57 of the update
    const claimed = w([1.1 + 0.08, 2.2, 2.9], [0.1]) // ≈ 0.3
    const chaotic: Reexecutor = {
      run: async (_c, opts = {}) => ({
        resultHash: hashOf(rerun),
        ...(opts.keepWeights === true
          ? { weights: opts.perturbBase !== undefined ? perturbedFar : rerun, base }
          : {})
      }),
      result: async () => ({ weights: claimed, resultHash: hashOf(claimed) })
    }
    const jwt = await receiptFor(claimed)
    const r = await verifyReexecution(jwt, chaotic)
    assert.ok(!r.ok && r.reason === 'inconclusive' && !reexecutionConvicts(r.reason), JSON.stringify(r))
    const proof = await issueFraudProof(identity(9), {
      receipt: jwt,
      claimedHash: hashOf(claimed),
      expectedHash: hashOf(rerun)
    })
    const check = await checkFraudProof(proof, chaotic)
    assert.ok(!check.ok && check.reason === 'inconclusive', 'nobody is convicted on an inconclusive check')
  })

  it('perturbs weights by a bit or two in three deterministic variants', () => {
    const variants = [0, 1, 2].map((v) => perturbWeights(w([1, -2, 0.5], [3]), v))
    assert.notDeepEqual(variants[0], variants[1])
    assert.notDeepEqual(variants[0], variants[2])
    assert.equal(variants[2]!.get('a')![1], -2, 'variant 2 leaves every other value')
    for (const v of variants) {
      for (const [k, t] of w([1, -2, 0.5], [3])) {
        const u = v.get(k)!
        for (let i = 0; i < t.length; i++) assert.ok(Math.abs(u[i]! - t[i]!) <= Math.abs(t[i]!) * 2 ** -21)
      }
    }
  })

  it('perturbs weights by one bit each, deterministically', () => {
    const p = perturbWeights(w([1, -2, 0.5], [3]))
    const q = perturbWeights(w([1, -2, 0.5], [3]))
    assert.deepEqual(p, q)
    for (const [k, t] of w([1, -2, 0.5], [3])) {
      const u = p.get(k)!
      for (let i = 0; i < t.length; i++) {
        assert.notEqual(u[i], t[i])
        assert.ok(Math.abs(u[i]! - t[i]!) <= Math.abs(t[i]!) * 2 ** -22)
      }
    }
  })

  it('gives no verdict when the claimed weights cannot be had, or the re-executor cannot fetch them', async () => {
    const jwt = await receiptFor(rerun)
    const gone = await verifyReexecution(jwt, new StubReexecutor(base, rerun, new Error('not found')))
    assert.ok(!gone.ok && gone.reason === 'result-unavailable' && !reexecutionConvicts(gone.reason))
    const plain: Reexecutor = { run: async () => ({ resultHash: hashOf(rerun), weights: rerun, base }) }
    const noFetch = await verifyReexecution(jwt, plain)
    assert.ok(!noFetch.ok && noFetch.reason === 'reexecution-error', JSON.stringify(noFetch))
    const noWeights: Reexecutor = {
      run: async () => ({ resultHash: hashOf(rerun) }),
      result: async () => ({ weights: rerun, resultHash: hashOf(rerun) })
    }
    const blind = await verifyReexecution(jwt, noWeights)
    assert.ok(!blind.ok && blind.reason === 'reexecution-error')
  })

  it('convicts published weights that are not the ones the receipt commits to', async () => {
    const jwt = await receiptFor(rerun)
    const other = new StubReexecutor(base, rerun, rerun, 'b'.repeat(64))
    const r = await verifyReexecution(jwt, other)
    assert.ok(!r.ok && r.reason === 'result-mismatch' && /hash to/.test(r.detail), JSON.stringify(r))
    const misfit = await verifyReexecution(jwt, new StubReexecutor(base, rerun, w([1, 2]), hashOf(rerun)))
    assert.ok(!misfit.ok && misfit.reason === 'result-mismatch' && /do not fit/.test(misfit.detail))
  })

  it('never re-runs an unverifiable round, and verifyAll excludes nobody for one', async () => {
    const stub = new StubReexecutor(base, rerun, rerun)
    const gpu = await receiptFor(rerun, { ep: 'cuda', resultCid: undefined })
    const r = await verifyReexecution(gpu, stub)
    assert.ok(!r.ok && r.reason === 'unverifiable' && stub.runs === 0)
    const grants = new MemoryGrants().add(grantFor('g', identity(7), [0]))
    const all = await verifyAll([gpu], { grants, reexec: stub, fraction: 1 })
    assert.deepEqual([...all.excluded], [])
    assert.equal(all.verified.length, 1, 'signature, chain and lineage still pass')
    // What it earns is the ledger's policy.
    const forfeited = new Set<string>()
    assert.equal(computeLedger(all.verified, { forfeited }).history[0]!.credits, 0)
    assert.ok(computeLedger(all.verified, { forfeited, unverifiable: 'credit' }).history[0]!.credits > 0)
    assert.equal(computeLedger(all.verified, { forfeited, unverifiable: 'exclude' }).history.length, 0)
    // verifyAll convicts a round outside its tolerance like a hash mismatch.
    const scaled = w([1.3, 2.6, 2.7], [0.3])
    const cheat = await receiptFor(scaled)
    const judged = await verifyAll([cheat], {
      grants,
      reexec: new StubReexecutor(base, rerun, scaled),
      fraction: 1
    })
    assert.deepEqual([...judged.excluded], [identity(7).did])
  })
})
