import assert from 'node:assert/strict'
import {
  createSwarm,
  issueCredential,
  MembershipError,
  parseSwarmDescriptor,
  swarmIdFromFounders,
  verifyCredential
} from '../../../src/p2p/index.js'
import type { MembershipErrorCode, SwarmDescriptor } from '../../../src/p2p/index.js'
import { identityOf } from './helpers.js'

async function assertRefused(p: Promise<unknown>, code: MembershipErrorCode, reason: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MembershipError, String(err))
    assert.equal(err.code, code, err.message)
    assert.equal(err.fields.reason, reason, err.message)
    return true
  })
}

describe('p2p: swarms and membership credentials', () => {
  const founder = identityOf(1)
  const member = identityOf(2)
  const stranger = identityOf(3)
  const { swarm } = createSwarm({ name: 'mnist', private: true, founder })

  it('derives the swarm id from the founders and checks descriptors', () => {
    assert.deepEqual(swarm.founders, [founder.did])
    assert.equal(swarm.id, swarmIdFromFounders([founder.did]))
    assert.match(swarm.id, /^b[a-z2-7]{26}$/)
    assert.equal(
      swarmIdFromFounders([member.did, founder.did]),
      swarmIdFromFounders([founder.did, member.did])
    )
    assert.notEqual(swarmIdFromFounders([member.did]), swarm.id)
    assert.deepEqual(parseSwarmDescriptor(JSON.parse(JSON.stringify(swarm))), swarm)
    assert.throws(() => parseSwarmDescriptor({ ...swarm, founders: [member.did] }), RangeError)
    assert.throws(() => parseSwarmDescriptor({ ...swarm, founders: ['did:web:example.com'] }), RangeError)
    const fresh = createSwarm({ name: 'x', private: false })
    assert.equal(fresh.swarm.founders[0], fresh.founder.did)
    assert.notEqual(fresh.swarm.id, swarm.id)
  })

  it('issues a credential that verifies for its subject', async () => {
    const jwt = await issueCredential(founder, swarm, member.did, { expiresIn: 3600 })
    const now = Math.floor(Date.now() / 1000)
    const v = await verifyCredential(jwt, swarm, { subject: member.did })
    assert.equal(v.member, member.did)
    assert.equal(v.issuer, founder.did)
    assert.ok(Math.abs(v.expiresAt - (now + 3600)) <= 2)
    // without a subject it still checks issuer, swarm and expiry
    assert.equal((await verifyCredential(jwt, swarm)).member, member.did)
  })

  it('refuses a credential for another swarm', async () => {
    // same founder, a second swarm with one more founder: a different id
    const other: SwarmDescriptor = {
      id: swarmIdFromFounders([founder.did, stranger.did]),
      name: 'other',
      private: true,
      founders: [founder.did, stranger.did]
    }
    const jwt = await issueCredential(founder, other, member.did)
    await assertRefused(verifyCredential(jwt, swarm, { subject: member.did }), 'NOT_A_MEMBER', 'wrong_swarm')
  })

  it('refuses a credential signed by someone who is not a founder', async () => {
    const forged = await stranger.signJwt({ swarm: swarm.id, sub: member.did }, { expiresIn: 3600 })
    await assertRefused(
      verifyCredential(forged, swarm, { subject: member.did }),
      'NOT_A_MEMBER',
      'issuer_not_founder'
    )
    await assertRefused(issueCredential(stranger, swarm, member.did), 'NOT_A_FOUNDER', 'not_a_founder')
  })

  it('refuses a credential whose subject is not the remote peer', async () => {
    const jwt = await issueCredential(founder, swarm, member.did)
    await assertRefused(
      verifyCredential(jwt, swarm, { subject: stranger.did }),
      'NOT_A_MEMBER',
      'subject_mismatch'
    )
  })

  it('refuses an expired credential', async () => {
    const jwt = await issueCredential(founder, swarm, member.did, { expiresIn: 60 })
    const later = Math.floor(Date.now() / 1000) + 3600
    await assertRefused(verifyCredential(jwt, swarm, { now: later }), 'CREDENTIAL_EXPIRED', 'expired')
    const past = await issueCredential(founder, swarm, member.did, { expiresIn: -3600 })
    await assertRefused(verifyCredential(past, swarm), 'CREDENTIAL_EXPIRED', 'expired')
  })

  it('refuses tampered, malformed and exp-less credentials', async () => {
    const jwt = await issueCredential(founder, swarm, member.did)
    const [h, p, s] = jwt.split('.') as [string, string, string]
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
    const swapped = Buffer.from(JSON.stringify({ ...payload, sub: stranger.did })).toString('base64url')
    await assertRefused(
      verifyCredential(`${h}.${swapped}.${s}`, swarm),
      'CREDENTIAL_INVALID',
      'bad_signature'
    )
    await assertRefused(verifyCredential('not-a-jwt', swarm), 'CREDENTIAL_INVALID', 'malformed')
    const noExp = await founder.signJwt({ swarm: swarm.id, sub: member.did })
    await assertRefused(verifyCredential(noExp, swarm), 'CREDENTIAL_INVALID', 'malformed')
  })
})
