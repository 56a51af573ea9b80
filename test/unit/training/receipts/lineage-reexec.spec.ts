import assert from 'node:assert/strict'
import {
  FraudProofInputError,
  checkFraudProof,
  decodeFraudProof,
  decodeReceipt,
  issueFraudProof,
  issueReceipt,
  receiptHash,
  shouldReexecute,
  verifyLineage,
  verifyReexecution
} from '../../../../src/training/receipts/index.js'
import type { GrantInfo, Reexecutor } from '../../../../src/training/receipts/index.js'
import {
  FakeReexecutor,
  MemoryGrants,
  SHARD_SIZES,
  T0,
  fakeCid,
  grantFor,
  honestInput,
  identity,
  sha256Hex,
  shardCid
} from './helpers.js'

const NOW = {} // the real clock: every receipt here was issued in 2023

describe('training/receipts: lineage, re-execution, fraud proofs', () => {
  const alice = identity(31)
  const mallory = identity(32)
  const verifier = identity(33)
  const grants = new MemoryGrants()
    .add(grantFor('g-a', alice, [0, 1]))
    .add(grantFor('g-any', alice, [2], { purpose: 'any' }))
    .add(grantFor('g-other-job', alice, [3], { purpose: 'job-2' }))
    .add(grantFor('g-m', mallory, [4]))
    .add(grantFor('g-exp', alice, [5], { exp: T0 + 100 }))
    .add(grantFor('g-rev', alice, [6], { revokedAt: T0 + 100 }))
    .add(grantFor('g-late', alice, [7], { iat: T0 + 100 }))
    .add(grantFor('g-nosize', alice, [7], { shardSizes: undefined }))

  const receipt = async (
    who = alice,
    over: Partial<ReturnType<typeof honestInput>> = {},
    base: Parameters<typeof honestInput>[0] = { round: 0, grant: 'g-a', shards: [0, 1] }
  ): Promise<string> => issueReceipt(who, { ...honestInput(base), ...over }, null)

  describe('lineage', () => {
    it('an honest receipt whose shards are granted verifies', async () => {
      const r = await verifyLineage(await receipt(), grants)
      assert.ok(r.ok, JSON.stringify(r))
      assert.equal(r.available, SHARD_SIZES[shardCid(0)]! + SHARD_SIZES[shardCid(1)]!)
      const any = await verifyLineage(
        await receipt(alice, {}, { round: 0, grant: 'g-any', shards: [2] }),
        grants
      )
      assert.ok(any.ok, JSON.stringify(any))
    })

    it('fails with a reason for each way a shard can be uncovered', async () => {
      const cases: Array<[string, Promise<string>]> = [
        ['grant-not-found', receipt(alice, {}, { round: 0, grant: 'g-missing', shards: [0] })],
        ['wrong-grantee', receipt(alice, {}, { round: 0, grant: 'g-m', shards: [4] })],
        ['wrong-purpose', receipt(alice, {}, { round: 0, grant: 'g-other-job', shards: [3] })],
        ['shard-not-granted', receipt(alice, {}, { round: 0, grant: 'g-a', shards: [0, 2] })],
        ['grant-expired', receipt(alice, {}, { round: 0, grant: 'g-exp', shards: [5], iat: T0 + 100 })],
        ['grant-revoked', receipt(alice, {}, { round: 0, grant: 'g-rev', shards: [6], iat: T0 + 200 })],
        ['grant-not-yet-valid', receipt(alice, {}, { round: 0, grant: 'g-late', shards: [7], iat: T0 + 99 })],
        ['duplicate-shard', receipt(alice, {}, { round: 0, grant: 'g-a', shards: [0, 0] })]
      ]
      for (const [reason, jwt] of cases) {
        const r = await verifyLineage(await jwt, grants)
        assert.ok(!r.ok, reason)
        assert.equal(r.level, 'lineage')
        assert.equal(r.reason, reason, r.detail)
      }
      // Just before expiry and revocation, the grants still cover the shard.
      for (const [grant, shard] of [
        ['g-exp', 5],
        ['g-rev', 6]
      ] as const) {
        const r = await verifyLineage(
          await receipt(alice, {}, { round: 0, grant, shards: [shard], iat: T0 + 99 }),
          grants
        )
        assert.ok(r.ok, `${grant}: ${JSON.stringify(r)}`)
      }
    })

    it('work rule: samples = steps × min(batchSize, N), steps ≤ hyper.steps', async () => {
      const honest = honestInput({ round: 0, grant: 'g-a', shards: [0, 1] })
      // Ten times the samples, same steps.
      const inflated = await verifyLineage(await receipt(alice, { samples: honest.samples * 10 }), grants)
      assert.ok(!inflated.ok && inflated.reason === 'samples-mismatch', JSON.stringify(inflated))
      // Fewer samples than the steps must have seen (when N is known) is wrong too.
      const short = await verifyLineage(await receipt(alice, { samples: honest.samples - 1 }), grants)
      assert.ok(!short.ok && short.reason === 'samples-mismatch')
      // Batches larger than the shards: each step sees N examples.
      const big = honestInput({ round: 0, grant: 'g-a', shards: [0], batchSize: 4096, steps: 3 })
      assert.equal(big.samples, 3 * SHARD_SIZES[shardCid(0)]!)
      assert.ok((await verifyLineage(await issueReceipt(alice, big, null), grants)).ok)
      const padded = await verifyLineage(
        await issueReceipt(alice, { ...big, samples: 3 * 4096 }, null),
        grants
      )
      assert.ok(!padded.ok && padded.reason === 'samples-mismatch')
      // More steps than the round allows.
      const steps = await verifyLineage(await receipt(alice, { steps: honest.hyper.steps + 1 }), grants)
      assert.ok(!steps.ok && steps.reason === 'steps-exceeded')
      // Without shard sizes the rule is an upper bound.
      const unsized = honestInput({ round: 0, grant: 'g-nosize', shards: [7] })
      assert.ok((await verifyLineage(await issueReceipt(alice, { ...unsized, samples: 5 }, null), grants)).ok)
      const over = await verifyLineage(
        await issueReceipt(alice, { ...unsized, samples: unsized.steps * unsized.hyper.batchSize + 1 }, null),
        grants
      )
      assert.ok(!over.ok && over.reason === 'samples-mismatch')
    })

    it('exclusions must name grants that had ended (revoked or expired) by the receipt’s iat', async () => {
      const iat = T0 + 200
      const ok = await receipt(alice, { iat, excluded: ['g-exp', 'g-rev'] })
      assert.ok((await verifyLineage(ok, grants)).ok)
      const early = await receipt(alice, { iat: T0 + 50, excluded: ['g-rev'] })
      const r1 = await verifyLineage(early, grants)
      assert.ok(!r1.ok && r1.reason === 'bogus-exclusion' && r1.grant === 'g-rev', JSON.stringify(r1))
      const live = await receipt(alice, { iat, excluded: ['g-any'] })
      const r2 = await verifyLineage(live, grants)
      assert.ok(!r2.ok && r2.reason === 'bogus-exclusion')
      const unknown = await receipt(alice, { iat, excluded: ['g-nobody'] })
      const r3 = await verifyLineage(unknown, grants)
      assert.ok(!r3.ok && r3.reason === 'bogus-exclusion')
      await assert.rejects(receipt(alice, { iat, excluded: ['g-rev', 'g-exp'] }), /sorted and distinct/)
    })

    it('never throws: a failing lookup, a grant with another id, a malformed receipt', async () => {
      const throwing = {
        find: async (): Promise<GrantInfo | undefined> => {
          throw new Error('datastore closed')
        }
      }
      const r1 = await verifyLineage(await receipt(), throwing)
      assert.ok(!r1.ok && r1.reason === 'grant-lookup-failed')
      const liar = { find: async (): Promise<GrantInfo | undefined> => grantFor('g-zzz', alice, [0, 1]) }
      const r2 = await verifyLineage(await receipt(), liar)
      assert.ok(!r2.ok && r2.reason === 'grant-mismatch')
      const r3 = await verifyLineage('junk', grants)
      assert.ok(!r3.ok && r3.reason === 'malformed')
    })
  })

  describe('re-execution and fraud proofs', () => {
    const reexec = new FakeReexecutor()

    it('an honest receipt re-executes to the same hash and samples', async () => {
      const r = await verifyReexecution(await receipt(), reexec)
      assert.ok(r.ok, JSON.stringify(r))
    })

    it('random weights announced with a real-training receipt: mismatch → fraud proof that re-checks', async () => {
      const jwt = await receipt(
        mallory,
        { resultHash: sha256Hex('random weights') },
        { round: 0, grant: 'g-m', shards: [4] }
      )
      const r = await verifyReexecution(jwt, reexec)
      assert.ok(!r.ok)
      assert.equal(r.level, 'reexecution')
      assert.equal(r.reason, 'result-mismatch')
      assert.equal(r.claimedHash, sha256Hex('random weights'))
      const proof = await issueFraudProof(
        verifier,
        { receipt: jwt, expectedHash: r.expectedHash!, claimedHash: r.claimedHash! },
        { iat: T0 + 500 }
      )
      const claims = decodeFraudProof(proof)
      assert.equal(claims.iss, verifier.did)
      assert.equal(claims.offender, mallory.did)
      assert.equal(claims.receiptHash, receiptHash(jwt))
      const check = await checkFraudProof(proof, new FakeReexecutor(), NOW)
      assert.ok(check.ok, JSON.stringify(check))
      assert.equal(check.offender, mallory.did)
      assert.equal(check.verifier, verifier.did)
      assert.equal(check.receipt, receiptHash(jwt))
    })

    it('a forged accusation against an honest node fails checkFraudProof', async () => {
      const honest = await receipt()
      const claimed = decodeReceipt(honest).claims.resultHash!
      // The accuser signs a proof with a made-up "expected" hash.
      const forged = await issueFraudProof(mallory, {
        receipt: honest,
        expectedHash: sha256Hex('made up'),
        claimedHash: claimed
      })
      const r1 = await checkFraudProof(forged, reexec, NOW)
      assert.ok(
        !r1.ok && r1.level === 'fraud-proof' && r1.reason === 'expected-hash-wrong',
        JSON.stringify(r1)
      )
      // Even if the accuser states the true hash as "expected" (hand-signed, since issueFraudProof refuses it).
      const payload = decodeFraudProof(forged)
      const { iss: _iss, ...rest } = payload
      const sneaky = await mallory.signJwt({ ...rest, expectedHash: claimed })
      const r2 = await checkFraudProof(sneaky, reexec, NOW)
      assert.ok(!r2.ok && r2.reason === 'no-mismatch', JSON.stringify(r2))
      // A proof embedding a tampered receipt (claims changed) fails on the receipt's signature.
      const [h, p, s] = honest.split('.')
      const text = Buffer.from(p!, 'base64url')
        .toString()
        .replace(`"resultHash":"${claimed}"`, `"resultHash":"${sha256Hex('x')}"`)
      const tampered = `${h}.${Buffer.from(text).toString('base64url')}.${s}`
      const r3 = await checkFraudProof(
        await mallory.signJwt({
          ...rest,
          receipt: tampered,
          receiptHash: receiptHash(tampered),
          claimedHash: sha256Hex('x')
        }),
        reexec,
        NOW
      )
      assert.ok(!r3.ok && r3.reason === 'receipt-invalid', JSON.stringify(r3))
      // A proof whose own signature is broken.
      const [ph, pp, ps] = forged.split('.')
      const r4 = await checkFraudProof(`${ph}.${pp}.${ps!.slice(0, -4)}AAAA`, reexec, NOW)
      assert.ok(!r4.ok && (r4.reason === 'bad-signature' || r4.reason === 'malformed'), JSON.stringify(r4))
      // Junk never throws.
      assert.equal((await checkFraudProof('junk', reexec)).ok, false)
      // issueFraudProof refuses an accusation with nothing to prove or a wrong claimed hash.
      await assert.rejects(
        issueFraudProof(mallory, { receipt: honest, expectedHash: claimed, claimedHash: claimed }),
        (e: unknown) => e instanceof FraudProofInputError && e.fields.reason === 'no-mismatch'
      )
      await assert.rejects(
        issueFraudProof(mallory, { receipt: honest, expectedHash: claimed, claimedHash: sha256Hex('y') }),
        FraudProofInputError
      )
    })

    it('a re-executor that fails gives no verdict (reexecution-error), never a throw', async () => {
      const broken: Reexecutor = {
        run: async () => {
          throw new Error('shard not readable')
        }
      }
      const r = await verifyReexecution(await receipt(), broken)
      assert.ok(!r.ok && r.reason === 'reexecution-error')
    })

    it('a samples-only lie (steps and hash honest) is caught by the re-run count and proven', async () => {
      // Mallory's shard has 900 samples; she claims batch-limited samples as if N were larger.
      const base = honestInput({ round: 0, grant: 'g-m', shards: [4], batchSize: 64, steps: 10 })
      const jwt = await issueReceipt(mallory, { ...base, samples: base.samples - 10 }, null)
      const r = await verifyReexecution(jwt, reexec)
      assert.ok(!r.ok && r.reason === 'samples-mismatch', JSON.stringify(r))
      const proof = await issueFraudProof(verifier, {
        receipt: jwt,
        expectedHash: r.expectedHash!,
        claimedHash: r.claimedHash!,
        expectedSamples: r.expectedSamples!,
        claimedSamples: r.claimedSamples!
      })
      const check = await checkFraudProof(proof, reexec, NOW)
      assert.ok(check.ok, JSON.stringify(check))
    })
  })

  describe('sampling which receipts to re-execute', () => {
    const hashes = Array.from({ length: 4000 }, (_, i) => fakeCid(`receipt-${i}`))

    it('is deterministic per (receipt, verifier) and hits the fraction', () => {
      for (const fraction of [0.05, 0.1, 0.5]) {
        const picked = hashes.filter((h) => shouldReexecute(h, verifier.did, fraction))
        const again = hashes.filter((h) => shouldReexecute(h, verifier.did, fraction))
        assert.deepEqual(picked, again)
        const rate = picked.length / hashes.length
        assert.ok(
          Math.abs(rate - fraction) < 4 * Math.sqrt((fraction * (1 - fraction)) / hashes.length),
          `${fraction}: ${rate}`
        )
      }
      assert.equal(hashes.filter((h) => shouldReexecute(h, verifier.did, 0)).length, 0)
      assert.equal(hashes.filter((h) => shouldReexecute(h, verifier.did, 1)).length, hashes.length)
    })

    it('different verifiers choose independently; with a key the choice is private', () => {
      const a = hashes.slice(0, 1000).map((h) => shouldReexecute(h, alice.did, 0.5))
      const b = hashes.slice(0, 1000).map((h) => shouldReexecute(h, mallory.did, 0.5))
      const agree = a.filter((x, i) => x === b[i]).length
      assert.ok(agree > 430 && agree < 570, `agreement ${agree}/1000`)
      // Keyed (one Ed25519 signature each): deterministic for the verifier, not the DID-only choice.
      const some = hashes.slice(0, 300)
      const keyed = some.map((h) => shouldReexecute(h, verifier, 0.5))
      assert.deepEqual(
        some.slice(0, 50).map((h) => shouldReexecute(h, verifier, 0.5)),
        keyed.slice(0, 50)
      )
      const byDid = some.map((h) => shouldReexecute(h, verifier.did, 0.5))
      const same = keyed.filter((x, i) => x === byDid[i]).length
      assert.ok(same > 110 && same < 190, `agreement ${same}/300`)
      const rate = keyed.filter(Boolean).length / 300
      assert.ok(rate > 0.38 && rate < 0.62, String(rate))
    })
  })
})
