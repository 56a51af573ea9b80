import assert from 'node:assert/strict'
import {
  computeLedger,
  decodeReceipt,
  issueReceipt,
  ledgerHash,
  receiptHash,
  verifyStatement,
  type Policy
} from '../../../src/training/index.js'
import { NodeRewards } from '../../../src/node/rewards.js'
import { MemoryGrants, T0, grantFor, honestInput, identity } from '../training/receipts/helpers.js'

describe('node/rewards: data owners in the node’s ledger', function () {
  this.timeout(30_000)
  const [alice, erin] = [identity(81), identity(82)] // data owners
  const [bob, carol, dave] = [identity(83), identity(84), identity(85)] // trainers
  const grants = new MemoryGrants()
    .add(grantFor('g-bob', bob, [0], { owner: alice.did }))
    .add(grantFor('g-carol', carol, [1], { owner: alice.did }))
    .add(grantFor('g-dave', dave, [2], { owner: erin.did, revokedAt: T0 + 10_000 }))
  const jwts = new Map<string, string>()
  let policy: Policy | undefined

  const rewards = (convicted: string[]): NodeRewards =>
    new NodeRewards({
      receipts: {
        ledger: async () => {
          const l = computeLedger([...jwts.values()], { forfeited: new Set(convicted) })
          return { ...l, hash: ledgerHash(l), excluded: convicted }
        },
        get: async (hash) => (jwts.has(hash) ? { jwt: jwts.get(hash)! } : undefined)
      },
      grants,
      policy: () => policy,
      identity: identity(86),
      swarmId: () => 'swarm-r',
      now: () => (T0 + 5_000) * 1000
    })

  before(async () => {
    for (const [who, grant, shard] of [
      [bob, 'g-bob', 0],
      [carol, 'g-carol', 1],
      [dave, 'g-dave', 2]
    ] as const) {
      let prev: string | null = null
      for (let round = 0; round < 2; round++) {
        const jwt: string = await issueReceipt(who, honestInput({ round, grant, shards: [shard] }), prev)
        jwts.set(receiptHash(jwt), jwt)
        prev = jwt
      }
    }
  })

  const samplesOf = (did: string): number =>
    [...jwts.values()]
      .map((j) => decodeReceipt(j).claims)
      .filter((c) => c.iss === did)
      .reduce((s, c) => s + c.samples, 0)

  it('credits the owners of the shards, half a credit per sample by default', async () => {
    policy = undefined
    const l = await rewards([]).ledger()
    assert.equal(l.dataShare, 50)
    // Alice owns the data of bob's and carol's rounds; erin's grant was revoked: forfeited.
    assert.equal(
      l.dataOwners.balances[alice.did],
      Math.floor(samplesOf(bob.did) / 4) * 2 + Math.floor(samplesOf(carol.did) / 4) * 2
    )
    assert.equal(l.dataOwners.balances[erin.did], 0)
    assert.ok(
      l.dataOwners.history.filter((e) => e.owner === erin.did).every((e) => e.forfeited === 'revoked')
    )
    assert.equal(
      l.trainers[dave.did],
      samplesOf(dave.did),
      'the trainer of a later-revoked grant keeps its credits'
    )
    assert.equal(l.totals[alice.did], l.dataOwners.balances[alice.did])
  })

  it('forfeits the owners’ credits of a convicted trainer’s rounds, and follows the policy’s share', async () => {
    policy = undefined
    const l = await rewards([carol.did]).ledger()
    assert.equal(l.trainers[carol.did], 0)
    const fromCarol = l.dataOwners.history.filter((e) => e.trainer === carol.did)
    assert.equal(fromCarol.length, 2)
    assert.ok(fromCarol.every((e) => e.credits === 0 && e.forfeited === 'trainer'))
    assert.equal(l.dataOwners.balances[alice.did], Math.floor(samplesOf(bob.did) / 4) * 2)
    policy = { rewards: { trainer: 100, data: 80 } }
    const more = await rewards([carol.did]).ledger()
    assert.equal(more.dataShare, 80)
    assert.ok(more.dataOwners.balances[alice.did]! > l.dataOwners.balances[alice.did]!)
  })

  it('signs the balances at the ledger hash as a statement anyone can verify', async () => {
    policy = undefined
    const r = rewards([])
    const { jwt, ledger } = await r.statement()
    const claims = await verifyStatement(jwt)
    assert.equal(claims.ledger, ledger)
    assert.equal(claims.swarm, 'swarm-r')
    assert.deepEqual(claims.dataOwners, (await r.ledger()).dataOwners.balances)
  })
})
