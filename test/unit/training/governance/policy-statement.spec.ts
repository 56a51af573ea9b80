import assert from 'node:assert/strict'
import { Identity, keypairFromSeed } from '../../../../src/identity/index.js'
import {
  GovernanceError,
  balancesHash,
  jobPolicyProblem,
  signStatement,
  verifyStatement
} from '../../../../src/training/governance/index.js'

const identity = (n: number): Identity => Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(n)))

describe('training/governance: job policy and ledger statements', () => {
  it('refuses a job that breaks the policy in force, and lets one that keeps to it run', () => {
    const dp = { mode: 'dp-sgd', clipNorm: 1, targetEpsilon: 3, delta: 1e-5 }
    assert.equal(jobPolicyProblem({ aggregation: 'mean' }, {}), undefined)
    assert.match(jobPolicyProblem({ aggregation: 'mean' }, { aggregation: 'median' })!, /aggregation mean/)
    assert.equal(
      jobPolicyProblem({ aggregation: 'median', privacy: dp }, { aggregation: 'median' }),
      undefined
    )
    const minDp = { minDp: { epsilon: 4, delta: 1e-4 } }
    assert.match(jobPolicyProblem({ aggregation: 'mean', privacy: null }, minDp)!, /no differential privacy/)
    assert.match(
      jobPolicyProblem({ aggregation: 'mean', privacy: { clipNorm: 1, noiseMultiplier: 1 } }, minDp)!,
      /cannot be checked/
    )
    assert.equal(jobPolicyProblem({ aggregation: 'mean', privacy: dp }, minDp), undefined)
    assert.match(
      jobPolicyProblem({ aggregation: 'mean', privacy: { ...dp, targetEpsilon: 8 } }, minDp)!,
      /weaker/
    )
    assert.match(jobPolicyProblem({ aggregation: 'mean' }, { unverifiable: 'credit' })!, /no-credit/)
    assert.equal(
      jobPolicyProblem({ aggregation: 'mean', unverifiable: 'credit' }, { unverifiable: 'credit' }),
      undefined
    )
  })

  it('signs balances at a ledger hash as a JWT anyone can verify; a changed balance fails', async () => {
    const node = identity(3)
    const a = identity(4).did
    const b = identity(5).did
    const balances = { trainers: { [a]: 100 }, dataOwners: { [b]: 50 }, totals: { [a]: 100, [b]: 50 } }
    const jwt = await signStatement(node, { swarm: 's', ledger: 'f'.repeat(64), ...balances })
    const claims = await verifyStatement(jwt)
    assert.equal(claims.iss, node.did)
    assert.equal(claims.balances, balancesHash(balances))
    assert.deepEqual(claims.dataOwners, { [b]: 50 })
    // Re-signed by someone else with more credits for b: its hash no longer matches.
    const [h, p] = jwt.split('.')
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>
    const tampered: Record<string, unknown> = { ...payload, dataOwners: { [b]: 5000 } }
    const forged = `${h}.${Buffer.from(JSON.stringify(tampered)).toString('base64url')}.${jwt.split('.')[2]}`
    await assert.rejects(
      verifyStatement(forged),
      (e: unknown) => e instanceof GovernanceError && e.fields.reason === 'bad-signature'
    )
    const { iss: _i, kind: _k, balances: _b, iat: _t, ...rest } = tampered
    const lying = await identity(6).signJwt({
      ...rest,
      kind: 'shoal.ledger-statement/1',
      balances: claims.balances
    })
    await assert.rejects(
      verifyStatement(lying),
      (e: unknown) => e instanceof GovernanceError && e.fields.reason === 'malformed'
    )
  })
})
