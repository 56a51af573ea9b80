/**
 * Fuzzing the signed documents: receipts (decode, signature, chain, verifyAll), fraud proofs,
 * grants and revocations, dataset manifests, swarm credentials and invites. Inputs are
 * arbitrary strings, JWT-shaped strings with arbitrary JSON inside, mutations of valid
 * documents, and documents *validly signed* over arbitrary or mutated claims (so that the
 * decoders get past the signature check and into the claims).
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { decodeJWT } from 'did-jwt'
import { Identity, keypairFromSeed } from '../../../src/identity/index.js'
import {
  checkAttestedFraudProof,
  checkFraudProof,
  claimedResultHash,
  decodeFraudProof,
  decodeReceipt,
  issueFraudProof,
  splitJwt,
  verifyAll,
  verifyChain,
  verifySignature
} from '../../../src/training/receipts/index.js'
import {
  createGrant,
  createRevocation,
  grantId,
  readRevocation,
  verifyGrant,
  verifyRevocation
} from '../../../src/storage/grants/index.js'
import {
  buildManifest,
  encodeShard,
  shardEntry,
  verifyManifest,
  decodeShard
} from '../../../src/storage/datasets/index.js'
import type { ManifestBody } from '../../../src/storage/datasets/index.js'
import { createSwarm, issueCredential, verifyCredential } from '../../../src/p2p/index.js'
import { INVITE_PREFIX, decodeInvite, encodeInvite } from '../../../src/node/swarm.js'
import { FakeReexecutor, MemoryGrants, T0, grantFor, honestChain } from '../training/receipts/helpers.js'
import { synthetic } from '../storage/datasets/helpers.js'
import { CREATOR, jobInput } from '../training/swarm/helpers.js'
import { createJob, verifyJob, verifyJobAnnouncement } from '../../../src/training/index.js'
import {
  anyJson,
  anyValue,
  expectNamed,
  expectNoThrow,
  fuzzParams,
  fuzzTimeout,
  jwtShaped,
  mutateJson,
  mutateString,
  nastyString
} from './arbitraries.js'

const ident = (n: number): Identity => Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(n)))
const owner = ident(31)
const other = ident(32)

/** Payload of a JWT (for mutating its claims and re-signing them). */
function claimsOf(jwt: string): Record<string, unknown> {
  return decodeJWT(jwt).payload as Record<string, unknown>
}

/**
 * A JWT input for a decoder: arbitrary strings, JWT-shaped garbage, a mutated sample, or a
 * sample's claims mutated and validly signed again by `signer`.
 */
function jwtInput(
  samples: string[],
  signer: Identity = owner
): fc.Arbitrary<string | (() => Promise<string>)> {
  const sample = fc.constantFrom(...samples)
  return fc.oneof(
    { weight: 1, arbitrary: nastyString },
    { weight: 2, arbitrary: jwtShaped },
    { weight: 3, arbitrary: sample.chain((s) => mutateString(s)) },
    {
      weight: 4,
      arbitrary: sample
        .chain((s) => mutateJson(claimsOf(s)))
        .map((claims) => async () => {
          const payload =
            typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? claims : { v: claims }
          try {
            return await signer.signJwt(payload as Record<string, unknown>)
          } catch {
            return 'unsignable' // the signer refused the payload: still an input
          }
        })
    }
  )
}

async function materialize(x: string | (() => Promise<string>)): Promise<string> {
  return typeof x === 'string' ? x : x()
}

describe('fuzz: signed documents', function () {
  this.timeout(fuzzTimeout(60_000))
  const alice = ident(11)
  let chain: string[]
  let proof: string

  before(async () => {
    chain = await honestChain(alice, 'g-alice', [0, 1], 3)
    const claimed = decodeReceipt(chain[1]!).claims
    proof = await issueFraudProof(
      other,
      {
        receipt: chain[1]!,
        claimedHash: claimedResultHash(claimed)!,
        expectedHash: 'ab'.repeat(32)
      },
      { iat: T0 + 600 }
    )
  })

  it('receipts: splitJwt/decodeReceipt return claims or RECEIPT_MALFORMED; verifySignature and verifyChain never throw', async () => {
    await fc.assert(
      fc.asyncProperty(
        jwtInput(chain, alice),
        fc.oneof(anyValue, fc.constant(undefined)),
        async (input, junk) => {
          const jwt = await materialize(input)
          await expectNamed('receipt.split', () => splitJwt(jwt))
          await expectNamed('receipt.decode', () => decodeReceipt(jwt))
          const sig = await expectNoThrow('receipt.verifySignature', () =>
            verifySignature(jwt, { now: T0 + 3600 })
          )
          assert.equal(typeof sig.ok, 'boolean')
          const res = await expectNoThrow('receipt.verifyChain', () =>
            verifyChain([chain[0]!, jwt, junk as string], { now: T0 + 3600 })
          )
          assert.equal(typeof res.ok, 'boolean')
        }
      ),
      fuzzParams(250)
    )
  })

  it('receipts: verifyAll over batches with mutated and foreign receipts never throws', async () => {
    const grants = new MemoryGrants().add(grantFor('g-alice', alice, [0, 1]))
    await fc.assert(
      fc.asyncProperty(fc.array(jwtInput(chain, alice), { maxLength: 4 }), async (inputs) => {
        const batch = [...chain, ...(await Promise.all(inputs.map(materialize)))]
        await expectNoThrow('receipt.verifyAll', () =>
          verifyAll(batch, {
            grants,
            reexec: new FakeReexecutor(),
            now: T0 + 3600,
            fraction: 1,
            proofs: [proof]
          })
        )
      }),
      fuzzParams(60)
    )
  })

  it('fraud proofs: decodeFraudProof returns claims or a named error; the checks never throw', async () => {
    const samples = [proof]
    await fc.assert(
      fc.asyncProperty(jwtInput(samples, other), async (input) => {
        const jwt = await materialize(input)
        await expectNamed('fraud.decode', () => decodeFraudProof(jwt))
        await expectNoThrow('fraud.check', () =>
          checkFraudProof(jwt, new FakeReexecutor(), { now: T0 + 3600 })
        )
        await expectNoThrow('fraud.checkAttested', () =>
          checkAttestedFraudProof(jwt, async () => true, { now: T0 + 3600 })
        )
      }),
      fuzzParams(200)
    )
  })

  describe('grants, revocations and manifests', () => {
    let manifest: ManifestBody
    let manifestJwt: string
    let manifestCid: string
    let grant: string
    let revocation: string

    before(async () => {
      const shards = [synthetic(4), synthetic(5, { seed: 2 })].map((d) => decodeShard(encodeShard(d)))
      const cids = await Promise.all(
        shards.map(async (d, i) => CID.createV1(0x55, await sha256.digest(new Uint8Array([i]))).toString())
      )
      const signed = await buildManifest(owner, {
        name: 'fuzz',
        schema: { shape: [3, 2], dtype: 'uint8', classes: 10 },
        shards: shards.map((d, i) => shardEntry(cids[i]!, d)),
        source: 'synthetic',
        split: { kind: 'iid', seed: 1 }
      })
      manifest = signed.body
      manifestJwt = signed.jwt
      manifestCid = CID.createV1(0x71, await sha256.digest(new TextEncoder().encode(manifestJwt))).toString()
      grant = await createGrant(owner, {
        manifest,
        manifestCid,
        grantee: alice.did,
        purpose: 'job-1',
        keys: new Map(manifest.shards.map((s) => [s.cid, new Uint8Array(32).fill(7)]))
      })
      revocation = await createRevocation(owner, grantId(grant), { dataset: manifestCid, reason: 'fuzz' })
    })

    it('verifyGrant: a verified grant or GRANT_INVALID / GRANT_NOT_OWNER', async () => {
      await fc.assert(
        fc.asyncProperty(jwtInput([grant]), async (input) => {
          const jwt = await materialize(input)
          await expectNamed('grant.verify', () => verifyGrant(jwt, { manifest, manifestCid }))
        }),
        fuzzParams(200)
      )
    })

    it('readRevocation/verifyRevocation: a verified revocation or REVOCATION_INVALID', async () => {
      await fc.assert(
        fc.asyncProperty(jwtInput([revocation]), async (input) => {
          const jwt = await materialize(input)
          await expectNamed('revocation.read', () => readRevocation(jwt))
          await expectNamed('revocation.verify', () =>
            verifyRevocation(jwt, { id: grantId(grant), owner: owner.did, dataset: manifestCid })
          )
        }),
        fuzzParams(200)
      )
    })

    it('verifyManifest: a manifest body or MANIFEST_INVALID', async () => {
      await fc.assert(
        fc.asyncProperty(jwtInput([manifestJwt]), anyJson, async (input, body) => {
          const jwt = await materialize(input)
          await expectNamed('manifest.verify', () => verifyManifest(jwt))
          await expectNamed('manifest.verifyWithBody', () =>
            verifyManifest({ jwt, body: body as ManifestBody })
          )
        }),
        fuzzParams(150)
      )
    })
  })

  it('signed jobs: verifyJob / verifyJobAnnouncement return the job or JOB_INVALID', async () => {
    const job = await createJob(CREATOR, jobInput())
    await fc.assert(
      fc.asyncProperty(
        jwtInput([job.jwt], CREATOR),
        fc.oneof(fc.constant(job.id), nastyString),
        anyValue,
        async (input, jobId, junk) => {
          const jwt = await materialize(input)
          const verified = await expectNamed('job.verify', () => verifyJob(jwt))
          if (verified !== undefined) assert.equal(verified.spec.creator, CREATOR.did)
          await expectNamed('job.announcement', () => verifyJobAnnouncement({ type: 'job', jobId, jwt }))
          await expectNamed('job.announcement', () => verifyJobAnnouncement(junk))
        }
      ),
      fuzzParams(200)
    )
  })

  describe('swarm credentials and invites', () => {
    const { swarm, founder } = createSwarm({ name: 'fuzz', private: true, founder: owner })
    let credential: string
    let invite: string

    before(async () => {
      credential = await issueCredential(founder, swarm, alice.did)
      invite = encodeInvite({ v: 1, swarm, bootstrap: ['/ip4/127.0.0.1/tcp/4001'], credential })
    })

    it('verifyCredential: a verified member or a MembershipError', async () => {
      await fc.assert(
        fc.asyncProperty(jwtInput([credential], founder), async (input) => {
          const jwt = await materialize(input)
          await expectNamed('credential.verify', () => verifyCredential(jwt, swarm))
        }),
        fuzzParams(200)
      )
    })

    it('regression: an invite whose payload is JSON null, or whose bootstrap holds a non-string, is INVITE_INVALID (was a TypeError)', () => {
      const isInvalid = (err: unknown): boolean => (err as { code?: string }).code === 'INVITE_INVALID'
      assert.throws(() => decodeInvite('shoal-invite:bnVsbA'), isInvalid) // base64url of `null`
      const bad = { v: 1, swarm, bootstrap: [{ toString: 1 }], credential }
      assert.throws(
        () => decodeInvite(INVITE_PREFIX + Buffer.from(JSON.stringify(bad)).toString('base64url')),
        isInvalid
      )
      assert.deepEqual(decodeInvite(invite).bootstrap, ['/ip4/127.0.0.1/tcp/4001'])
    })

    it('decodeInvite: an invite or INVITE_INVALID', async () => {
      const prefix = INVITE_PREFIX
      const payload = JSON.parse(Buffer.from(invite.slice(prefix.length), 'base64url').toString()) as unknown
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            nastyString,
            mutateString(invite),
            mutateJson(payload).map(
              (p) => prefix + Buffer.from(JSON.stringify(p) ?? 'null').toString('base64url')
            ),
            anyJson.map((p) => prefix + Buffer.from(JSON.stringify(p) ?? 'null').toString('base64url'))
          ),
          async (text) => {
            const out = await expectNamed('invite.decode', () => decodeInvite(text))
            if (out !== undefined) assert.ok(out.bootstrap.every((b) => typeof b === 'string'))
          }
        ),
        fuzzParams(400)
      )
    })
  })
})
