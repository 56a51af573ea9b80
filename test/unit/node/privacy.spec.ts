import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RdpAccountant } from '../../../src/training/privacy/index.js'
import { issueReceipt, receiptHash } from '../../../src/training/receipts/index.js'
import type { JobSpec } from '../../../src/training/swarm/index.js'
import { NodeDb } from '../../../src/node/db.js'
import { NodePrivacy, epsilonOf, roundStep, roundsWithin } from '../../../src/node/privacy.js'
import { honestInput, identity, shardCid } from '../training/receipts/helpers.js'

const spec = (noiseMultiplier: number | null): Pick<JobSpec, 'privacy'> => ({
  privacy: noiseMultiplier === null ? null : { clipNorm: 1, noiseMultiplier }
})

/** ε after `t` rounds of σ, computed directly with the accountant (record level: σ/2, q = 1). */
function direct(sigma: number, t: number, delta: number): number {
  const acc = new RdpAccountant()
  acc.step({ q: 1, sigma: sigma / 2, steps: t })
  return acc.getPrivacySpent(delta).epsilon
}

describe('node/privacy: per-dataset (ε, δ) from receipts, and the owners’ budgets', function () {
  this.timeout(30_000)

  it('one round of a private job is one SGM step with q = 1 and σ/2 (record level); none without noise', () => {
    assert.deepEqual(roundStep(spec(4)), { q: 1, sigma: 2, steps: 1 })
    assert.equal(epsilonOf([roundStep(spec(null))], 1e-5), Infinity)
    assert.equal(epsilonOf([], 1e-5), 0)
    assert.ok(Math.abs(epsilonOf([{ ...roundStep(spec(4)), steps: 10 }], 1e-5) - direct(4, 10, 1e-5)) < 1e-12)
  })

  it('roundsWithin gives the largest T with ε ≤ ε_max, counting what was already spent', () => {
    const delta = 1e-5
    const budget = { epsMax: 3, delta }
    const t = roundsWithin(spec(8), budget, [], 10_000)
    assert.ok(t > 0)
    assert.ok(direct(8, t, delta) <= 3, `ε(${t}) = ${direct(8, t, delta)}`)
    assert.ok(direct(8, t + 1, delta) > 3, `ε(${t + 1}) = ${direct(8, t + 1, delta)}`)
    // Rounds already spent on the shard count against the same budget.
    const spent = [{ q: 1, sigma: 4, steps: Math.floor(t / 2) }]
    const rest = roundsWithin(spec(8), budget, spent, 10_000)
    assert.ok(rest < t && rest >= t - Math.floor(t / 2) - 1, `${rest} of ${t}`)
    // Capped by the job's rounds; nothing for a noiseless job or a spent budget.
    assert.equal(roundsWithin(spec(8), budget, [], 3), 3)
    assert.equal(roundsWithin(spec(null), budget, [], 100), 0)
    assert.equal(roundsWithin(spec(8), budget, [{ q: 1, sigma: 4, steps: t + 1 }], 100), 0)
  })

  describe('report over stored receipts', () => {
    let dir: string
    let db: NodeDb
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'shoal-privacy-'))
      db = new NodeDb(join(dir, 'db'))
      await db.start()
      const store = async (jwt: string, job: string, issuer: string): Promise<void> =>
        db.put('receipts', receiptHash(jwt), { hash: receiptHash(jwt), jwt, job, round: 0, issuer })
      const alice = identity(1)
      const bob = identity(2)
      // Alice: 4 rounds of the private job on shard 0; Bob: 2 rounds on shard 1 and 1 round of
      // the noiseless job on shard 2.
      let prev: string | null = null
      for (let r = 0; r < 4; r++) {
        prev = await issueReceipt(
          alice,
          honestInput({ round: r, grant: 'g-a', shards: [0], job: 'private' }),
          prev
        )
        await store(prev, 'private', alice.did)
      }
      prev = null
      for (let r = 0; r < 2; r++) {
        prev = await issueReceipt(
          bob,
          honestInput({ round: r, grant: 'g-b', shards: [1], job: 'private' }),
          prev
        )
        await store(prev, 'private', bob.did)
      }
      prev = await issueReceipt(
        bob,
        honestInput({ round: 0, grant: 'g-b2', shards: [2], job: 'open', iat: 1_700_000_600 }),
        prev
      )
      await store(prev, 'open', bob.did)
    })
    after(async () => {
      await db.stop()
      await rm(dir, { recursive: true, force: true })
    })

    const privacy = (): NodePrivacy =>
      new NodePrivacy({
        db,
        job: async (id) =>
          id === 'private' ? (spec(6) as JobSpec) : id === 'open' ? (spec(null) as JobSpec) : undefined
      })

    it('composes each shard’s rounds; the dataset’s ε is its worst shard’s (disjoint records)', async () => {
      const r = await privacy().report('ds', [shardCid(0), shardCid(1)], [{ epsMax: 50, delta: 1e-6 }])
      assert.equal(r.delta, 1e-6)
      assert.equal(r.epsMax, 50)
      assert.equal(r.shards[0]!.rounds, 4)
      assert.equal(r.shards[1]!.rounds, 2)
      assert.ok(Math.abs(r.shards[0]!.epsilon! - direct(6, 4, 1e-6)) < 1e-9)
      assert.ok(Math.abs(r.shards[1]!.epsilon! - direct(6, 2, 1e-6)) < 1e-9)
      assert.equal(r.epsilon, r.shards[0]!.epsilon)
      assert.deepEqual(r.shards[0]!.jobs, [{ job: 'private', rounds: 4, noiseMultiplier: 6 }])
    })

    it('a round shared without noise makes ε unbounded; an untouched shard has ε = 0; default δ', async () => {
      const r = await privacy().report('ds', [shardCid(2), shardCid(5)], [])
      assert.equal(r.delta, 1e-5)
      assert.equal(r.epsMax, null)
      assert.equal(r.shards[0]!.epsilon, null)
      assert.equal(r.shards[1]!.epsilon, 0)
      assert.equal(r.epsilon, null)
    })
  })
})
