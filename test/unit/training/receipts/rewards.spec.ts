import assert from 'node:assert/strict'
import {
  computeLedger,
  issueReceipt,
  ledgerHash,
  LedgerInputError
} from '../../../../src/training/receipts/index.js'
import { dataRewards, totalBalances } from '../../../../src/training/receipts/rewards.js'
import { decodeReceipt } from '../../../../src/training/receipts/index.js'
import { honestInput, identity } from './helpers.js'

describe('training/receipts: rewards for data owners', function () {
  this.timeout(30_000)
  const trainer = identity(61)
  const other = identity(62)
  const ownerA = identity(63).did
  const ownerB = identity(64).did
  const owners = new Map([
    ['g-a', ownerA],
    ['g-b', ownerB]
  ])
  let r0: string, r1: string, r2: string, o0: string

  before(async () => {
    // Round 0 on one shard of A; round 1 on a shard of A and one of B; the other trainer on B.
    r0 = await issueReceipt(trainer, honestInput({ round: 0, grant: 'g-a', shards: [0] }), null)
    const two = honestInput({ round: 1, grant: 'g-a', shards: [0, 1] })
    two.shards = [two.shards[0]!, { ...two.shards[1]!, grant: 'g-b' }]
    r1 = await issueReceipt(trainer, two, r0)
    r2 = await issueReceipt(trainer, honestInput({ round: 2, grant: 'g-unknown', shards: [0] }), r1)
    o0 = await issueReceipt(other, honestInput({ round: 0, grant: 'g-b', shards: [1] }), null)
  })

  const samples = (jwt: string): number => decodeReceipt(jwt).claims.samples

  it('credits the owners of the shards a round trained on, beside the trainer', () => {
    const ledger = computeLedger([r0, r1, o0], { forfeited: new Set(), rewards: { data: 50, owners } })
    assert.equal(ledger.balances[trainer.did], samples(r0) + samples(r1))
    const half0 = Math.floor(samples(r0) / 2)
    const pool1 = Math.floor(samples(r1) / 2)
    const [a1, b1] = [Math.floor(pool1 / 2) + (pool1 % 2), Math.floor(pool1 / 2)]
    assert.deepEqual(ledger.dataOwners!.balances, {
      ...sortedRecord({ [ownerA]: half0 + a1, [ownerB]: b1 + Math.floor(samples(o0) / 2) })
    })
    assert.equal(ledger.dataOwners!.history.length, 4)
    assert.equal(ledger.totals![ownerA], half0 + a1)
    assert.equal(ledger.totals![trainer.did], samples(r0) + samples(r1))
  })

  it('gives nobody the data share of a grant whose owner is unknown', () => {
    const ledger = computeLedger([r2], { forfeited: new Set(), rewards: { data: 50, owners } })
    assert.deepEqual(ledger.dataOwners!.balances, {})
    assert.equal(ledger.balances[trainer.did], samples(r2))
  })

  it('forfeits the data credits of a convicted trainer’s rounds and of revoked grants', () => {
    const convicted = computeLedger([r0, r1, o0], {
      forfeited: new Set([trainer.did]),
      rewards: { data: 50, owners }
    })
    assert.equal(convicted.balances[trainer.did], 0)
    assert.deepEqual(
      convicted.dataOwners!.balances,
      sortedRecord({ [ownerA]: 0, [ownerB]: Math.floor(samples(o0) / 2) })
    )
    assert.ok(
      convicted
        .dataOwners!.history.filter((e) => e.trainer === trainer.did)
        .every((e) => e.forfeited === 'trainer')
    )
    const revoked = computeLedger([r0, r1, o0], {
      forfeited: new Set(),
      rewards: { data: 50, owners, revoked: new Set(['g-b']) }
    })
    assert.equal(revoked.dataOwners!.balances[ownerB], 0)
    assert.ok(revoked.dataOwners!.balances[ownerA]! > 0)
    assert.equal(revoked.balances[other.did], samples(o0)) // the trainer keeps its work
  })

  it('applies the trainer share, and leaves the ledger as it was without rewards', () => {
    const plain = computeLedger([r0, r1], { forfeited: new Set() })
    assert.deepEqual(Object.keys(plain).sort(), ['balances', 'history'])
    const shared = computeLedger([r0, r1], {
      forfeited: new Set(),
      rewards: { trainer: 70, data: 30, owners }
    })
    assert.equal(
      shared.balances[trainer.did],
      Math.floor((samples(r0) * 70) / 100) + Math.floor((samples(r1) * 70) / 100)
    )
    assert.notEqual(ledgerHash(shared), ledgerHash(plain))
  })

  it('is independent of the order of the receipts', () => {
    const x = computeLedger([r0, r1, o0, r2], { forfeited: new Set(), rewards: { data: 50, owners } })
    const y = computeLedger([o0, r2, r1, r0, r1], { forfeited: new Set(), rewards: { data: 50, owners } })
    assert.equal(ledgerHash(x), ledgerHash(y))
  })

  it('refuses shares outside [0, 1000]', () => {
    assert.throws(
      () => computeLedger([r0], { forfeited: new Set(), rewards: { data: -1, owners } }),
      (err: unknown) => err instanceof LedgerInputError
    )
    assert.throws(() => dataRewards([], 1, new Set(), { data: 1.5, owners }), LedgerInputError)
    assert.deepEqual(totalBalances({ b: 1, a: 2 }, { a: 3 }), { a: 5, b: 1 })
  })
})

function sortedRecord(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
