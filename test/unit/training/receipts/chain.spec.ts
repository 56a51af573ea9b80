import assert from 'node:assert/strict'
import { Rng } from '../../../../src/common/rng.js'
import {
  checkChainEvidence,
  issueReceipt,
  receiptHash,
  verifyChain
} from '../../../../src/training/receipts/index.js'
import type { ChainEvidence } from '../../../../src/training/receipts/index.js'
import { T0, honestChain, honestInput, identity } from './helpers.js'

const NOW = { now: T0 + 86_400 }

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs]
  const rng = new Rng(seed)
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

describe('training/receipts: chain level', () => {
  const alice = identity(21)
  const bob = identity(22)
  let chain: string[]

  before(async () => {
    chain = await honestChain(alice, 'g-a', [0], 5)
  })

  it('an honest chain verifies in any order, and gives the chain order', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await verifyChain(shuffled(chain, seed), NOW)
      assert.ok(r.ok, JSON.stringify(r))
      assert.equal(r.did, alice.did)
      assert.deepEqual(r.order, chain.map(receiptHash))
    }
  })

  it('a window of a chain (its first prev outside the set) verifies; a hole in it does not', async () => {
    const window = chain.slice(2)
    const r = await verifyChain(window, NOW)
    assert.ok(r.ok, JSON.stringify(r))
    const holed = [chain[0]!, chain[1]!, chain[3]!, chain[4]!]
    const g = await verifyChain(holed, NOW)
    assert.ok(!g.ok)
    assert.equal(g.level, 'chain')
    assert.equal(g.reason, 'gap')
    assert.deepEqual(
      g.issues.map((i) => i.receipt).sort(),
      [receiptHash(chain[3]!), receiptHash(chain[4]!)].sort()
    )
    assert.deepEqual(g.order, [receiptHash(chain[0]!), receiptHash(chain[1]!)])
    assert.equal(g.evidence.length, 0, 'a gap is not misbehaviour')
  })

  it('a fork (two receipts with the same prev) is equivocation, with evidence anyone can re-check', async () => {
    // Alice signs two different round-3 receipts on top of round 2.
    const fork = await issueReceipt(
      alice,
      { ...honestInput({ round: 3, grant: 'g-a', shards: [0] }), lossAfter: 0.1 },
      chain[2]!
    )
    const r = await verifyChain([...chain, fork], NOW)
    assert.ok(!r.ok)
    assert.equal(r.reason, 'equivocation')
    assert.equal(r.evidence.length, 1)
    const ev = r.evidence[0]!
    assert.equal(ev.kind, 'equivocation')
    assert.equal(ev.did, alice.did)
    assert.equal(ev.prev, receiptHash(chain[2]!))
    assert.deepEqual([...ev.receipts].sort(), [chain[3]!, fork].sort())
    assert.deepEqual(
      r.issues
        .filter((i) => i.reason === 'equivocation')
        .map((i) => i.receipt)
        .sort(),
      [receiptHash(chain[3]!), receiptHash(fork)].sort()
    )
    const check = await checkChainEvidence(ev, NOW)
    assert.deepEqual(check, { ok: true, did: alice.did })
    // Two genesis receipts are a fork too.
    const genesis2 = await issueReceipt(alice, honestInput({ round: 9, grant: 'g-a', shards: [0] }), null)
    const r2 = await verifyChain([...chain, genesis2], NOW)
    assert.ok(!r2.ok && r2.reason === 'equivocation' && r2.evidence[0]?.prev === null)
  })

  it('forged evidence against an honest node fails checkChainEvidence', async () => {
    const other = await honestChain(bob, 'g-b', [1], 1)
    const cases: ChainEvidence[] = [
      // Two receipts of the same honest chain (different prevs).
      {
        kind: 'equivocation',
        did: alice.did,
        receipts: [chain[1]!, chain[2]!],
        prev: receiptHash(chain[0]!)
      },
      // The same receipt twice.
      { kind: 'replay', did: alice.did, receipts: [chain[1]!, chain[1]!], job: 'job-1', round: 1 },
      // Receipts of two DIDs.
      { kind: 'equivocation', did: alice.did, receipts: [chain[0]!, other[0]!], prev: null },
      // A tampered receipt (a different round, same prev) that Alice never signed.
      {
        kind: 'equivocation',
        did: alice.did,
        receipts: [chain[1]!, chain[1]!.replace(/\.[^.]+\./, (m) => m.slice(0, -3) + 'AA.')],
        prev: receiptHash(chain[0]!)
      },
      // Different rounds as a "replay".
      { kind: 'replay', did: alice.did, receipts: [chain[1]!, chain[2]!], job: 'job-1', round: 1 }
    ]
    for (const ev of cases) {
      const r = await checkChainEvidence(ev, NOW)
      assert.equal(r.ok, false, JSON.stringify(ev.kind))
    }
  })

  it('a replayed receipt is detected: the same receipt twice, or a second receipt for a (job, round)', async () => {
    const dup = await verifyChain([...chain, chain[1]!], NOW)
    assert.ok(!dup.ok && dup.reason === 'replay')
    assert.equal(dup.evidence.length, 0, 'a copy of a receipt proves nothing against its issuer')
    // Alice re-issues her round-1 claims as her newest receipt (new iat, prev = the tip).
    const replay = await issueReceipt(
      alice,
      { ...honestInput({ round: 1, grant: 'g-a', shards: [0] }), iat: T0 + 3600 },
      chain[4]!
    )
    const r = await verifyChain([...chain, replay], NOW)
    assert.ok(!r.ok)
    assert.equal(r.reason, 'replay')
    assert.deepEqual(
      r.issues.map((i) => i.receipt),
      [receiptHash(replay)]
    )
    assert.equal(r.evidence.length, 1)
    assert.equal(r.evidence[0]!.kind, 'replay')
    assert.deepEqual(await checkChainEvidence(r.evidence[0]!, NOW), { ok: true, did: alice.did })
  })

  it('a round retrained after unlearning (its receipt names the excluded grants) is not a replay', async () => {
    const retrain = await issueReceipt(
      alice,
      { ...honestInput({ round: 1, grant: 'g-a', shards: [0] }), iat: T0 + 3600, excluded: ['g-revoked'] },
      chain[4]!
    )
    const r = await verifyChain([...chain, retrain], NOW)
    assert.ok(r.ok, JSON.stringify(r))
    // A second retrain of the same round with the same exclusions is a replay again.
    const again = await issueReceipt(
      alice,
      { ...honestInput({ round: 1, grant: 'g-a', shards: [0] }), iat: T0 + 3700, excluded: ['g-revoked'] },
      retrain
    )
    const twice = await verifyChain([...chain, retrain, again], NOW)
    assert.ok(!twice.ok && twice.reason === 'replay')
  })

  it('iat must not go backwards along the chain; receipts of several DIDs are refused', async () => {
    const tip = chain[4]!
    const bobs = await issueReceipt(bob, honestInput({ round: 0, grant: 'g-b', shards: [1] }), null)
    const mixed = await verifyChain([...chain, bobs], NOW)
    assert.ok(!mixed.ok && mixed.reason === 'mixed-issuers')
    // The same iat as the tip is fine.
    const next = honestInput({ round: 5, grant: 'g-a', shards: [0], iat: T0 + 60 * 4 })
    const ok = await issueReceipt(alice, next, tip)
    assert.ok((await verifyChain([...chain, ok], NOW)).ok)
    // An earlier one is not; issueReceipt refuses to make it, so Alice signs it by hand.
    const { iat: _iat, ...rest } = next
    const jwt = await alice.signJwt({
      ...rest,
      kind: 'shoal.receipt/1',
      iat: T0 + 1,
      prev: receiptHash(tip)
    })
    const r = await verifyChain([...chain, jwt], NOW)
    assert.ok(!r.ok && r.reason === 'iat-order', JSON.stringify(!r.ok && r.issues))
  })

  it('never throws on junk, and reports invalid receipts', async () => {
    const r = await verifyChain([...chain, 'junk', chain[0]!.slice(0, -2) + 'xx'], NOW)
    assert.ok(!r.ok)
    assert.equal(r.issues.filter((i) => i.reason === 'invalid-receipt').length, 2)
    const empty = await verifyChain([], NOW)
    assert.ok(empty.ok)
    assert.deepEqual(empty.order, [])
  })
})
