import assert from 'node:assert/strict'
import { createJWT, decodeJWT, EdDSASigner, verifyJWT } from 'did-jwt'
import { didKeyResolver, verifySignature as verifyEd25519 } from '../../../../src/identity/index.js'
import {
  ReceiptClaimsError,
  ReceiptMalformedError,
  ReceiptClaimsSchema,
  decodeReceipt,
  issueReceipt,
  receiptHash,
  receiptConstants,
  verifySignature
} from '../../../../src/training/receipts/index.js'
import { CID } from 'multiformats/cid'
import { createHash } from 'node:crypto'
import { T0, honestChain, honestInput, identity, payloadText, withPayload } from './helpers.js'

describe('training/receipts: issuing, hashing, signature level', () => {
  const alice = identity(11)
  const bob = identity(12)
  let chain: string[]

  before(async () => {
    chain = await honestChain(alice, 'g-alice', [0, 1], 3)
  })

  it('a receipt is a standard EdDSA did-jwt JWT with the documented claims', async () => {
    const jwt = chain[1]!
    const { header, payload } = decodeJWT(jwt)
    assert.equal(header.alg, 'EdDSA')
    assert.equal(payload.iss, alice.did)
    // Any did-jwt verifier with a did:key resolver accepts it…
    const verified = await verifyJWT(jwt, { resolver: didKeyResolver(), policies: { now: T0 + 3600 } })
    assert.equal(verified.issuer, alice.did)
    // …and so does a bare Ed25519 check of `header.payload` (no custom signature format).
    const [h, p, s] = jwt.split('.')
    assert.ok(verifyEd25519(alice.did, new TextEncoder().encode(`${h}.${p}`), Buffer.from(s!, 'base64url')))
    const claims = ReceiptClaimsSchema.parse(payload)
    assert.equal(claims.kind, receiptConstants.RECEIPT_KIND)
    assert.equal(claims.job, 'job-1')
    assert.equal(claims.round, 1)
    assert.equal(claims.iat, T0 + 60)
    assert.equal(claims.prev, receiptHash(chain[0]!))
    assert.deepEqual(
      claims.shards.map((x) => x.grant),
      ['g-alice', 'g-alice']
    )
    assert.equal(claims.hyper.momentum, 0.9, 'extra hyper-parameters are kept')
    assert.equal(decodeReceipt(chain[0]!).claims.prev, null)
  })

  it('receiptHash is the CIDv1(raw, sha2-256) of the JWT bytes', () => {
    const jwt = chain[0]!
    const cid = CID.parse(receiptHash(jwt))
    assert.equal(cid.version, 1)
    assert.equal(cid.code, 0x55)
    assert.equal(cid.multihash.code, 0x12)
    assert.deepEqual(Buffer.from(cid.multihash.digest), createHash('sha256').update(jwt).digest())
    assert.match(receiptHash(jwt), /^bafkrei/)
    assert.equal(decodeReceipt(jwt).hash, receiptHash(jwt))
  })

  it('an honest receipt verifies at the signature level', async () => {
    for (const jwt of chain) {
      const r = await verifySignature(jwt, { now: T0 + 3600 })
      assert.ok(r.ok, JSON.stringify(r))
      assert.equal(r.claims.iss, alice.did)
      assert.equal(r.hash, receiptHash(jwt))
    }
  })

  it('changing one byte of any claim in the payload fails at the signature level', async () => {
    const jwt = chain[1]!
    const text = payloadText(jwt)
    const keys = Object.keys(JSON.parse(text) as Record<string, unknown>)
    assert.ok(keys.length >= 15, keys.join(','))
    for (const key of keys) {
      const start = text.indexOf(`"${key}":`) + key.length + 3
      // The first letter or digit of the claim's value.
      let i = start
      while (!/[A-Za-z0-9]/.test(text[i]!)) i++
      const c = text[i]!
      const swapped = /[0-8]/.test(c)
        ? String(Number(c) + 1)
        : c === '9'
          ? '8'
          : c === 'z'
            ? 'y'
            : c === 'Z'
              ? 'Y'
              : String.fromCharCode(c.charCodeAt(0) + 1)
      const tamperedText = text.slice(0, i) + swapped + text.slice(i + 1)
      assert.notEqual(tamperedText, text)
      JSON.parse(tamperedText) // still JSON: only the signature can catch it
      const r = await verifySignature(withPayload(jwt, tamperedText), { now: T0 + 3600 })
      assert.equal(r.ok, false, `claim ${key}`)
      if (r.ok) continue
      assert.equal(r.level, 'signature', `claim ${key}`)
      // Changing the DID in `iss` makes it another (or no) did:key: the issuer check catches it first.
      const expected = key === 'iss' ? ['issuer', 'bad-signature'] : ['bad-signature']
      assert.ok(expected.includes(r.reason), `claim ${key}: ${r.reason}: ${r.detail}`)
    }
  })

  it('rejects forgeries, other algorithms and bad encodings without throwing', async () => {
    const jwt = chain[0]!
    const payload = JSON.parse(payloadText(jwt)) as Record<string, unknown>
    // Signed by Bob, claiming to be Alice.
    const forged = await createJWT(
      { ...payload },
      { issuer: alice.did, signer: EdDSASigner(new Uint8Array(32).fill(12)) },
      { alg: 'EdDSA' }
    )
    const r1 = await verifySignature(forged, { now: T0 + 3600 })
    assert.ok(!r1.ok && r1.level === 'signature' && r1.reason === 'bad-signature', JSON.stringify(r1))
    // Bob's valid JWT that is not a receipt.
    const notReceipt = await bob.signJwt({ hello: 'world', iat: T0 })
    const r2 = await verifySignature(notReceipt, { now: T0 + 3600 })
    assert.ok(!r2.ok && r2.reason === 'schema', JSON.stringify(r2))
    // A header with another alg.
    const [, p, s] = jwt.split('.')
    const es256 = `${Buffer.from('{"alg":"ES256K","typ":"JWT"}').toString('base64url')}.${p}.${s}`
    const r3 = await verifySignature(es256, { now: T0 + 3600 })
    assert.ok(!r3.ok && r3.level === 'signature', JSON.stringify(r3))
    // A non-canonical base64url segment (same bytes, another string) is refused.
    const sig = jwt.split('.')[2]!
    const last = sig.at(-1)!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!
    const nonCanonical = jwt.slice(0, -1) + twin
    assert.deepEqual(
      Buffer.from(nonCanonical.split('.')[2]!, 'base64url'),
      Buffer.from(sig, 'base64url'),
      'same signature bytes'
    )
    const r4 = await verifySignature(nonCanonical, { now: T0 + 3600 })
    assert.ok(!r4.ok && r4.reason === 'malformed', JSON.stringify(r4))
    for (const junk of ['', 'a.b', 'not.a.jwt', 'x'.repeat(40_000), 42 as unknown as string]) {
      const r = await verifySignature(junk)
      assert.equal(r.ok, false)
      assert.equal(r.ok ? '' : r.level, 'signature')
    }
    // A receipt issued in the future (beyond the skew) is not yet valid.
    const r5 = await verifySignature(jwt, { now: T0 - 3600 })
    assert.ok(!r5.ok && r5.reason === 'not-yet-valid', JSON.stringify(r5))
  })

  it('issueReceipt refuses bad claims and a previous receipt of another DID', async () => {
    const good = honestInput({ round: 0, grant: 'g', shards: [0] })
    await assert.rejects(
      issueReceipt(alice, { ...good, baseCid: 'not-a-cid' }, null),
      (e: unknown) => e instanceof ReceiptClaimsError && e.code === 'RECEIPT_INVALID_CLAIMS'
    )
    const { resultHash: _r, ...noResult } = good
    await assert.rejects(issueReceipt(alice, noResult, null), ReceiptClaimsError)
    await assert.rejects(issueReceipt(alice, { ...good, samples: -1 }, null), ReceiptClaimsError)
    await assert.rejects(issueReceipt(alice, { ...good, shards: [] }, null), ReceiptClaimsError)
    const bobs = await issueReceipt(bob, good, null)
    await assert.rejects(issueReceipt(alice, { ...good, round: 1 }, bobs), ReceiptClaimsError)
    await assert.rejects(issueReceipt(alice, { ...good, iat: T0 - 1 }, chain[2]!), ReceiptClaimsError)
    assert.throws(() => decodeReceipt('nope'), ReceiptMalformedError)
  })

  it('is deterministic: the same claims and key give the same receipt and hash', async () => {
    const input = honestInput({ round: 0, grant: 'g', shards: [0] })
    const a = await issueReceipt(alice, input, null)
    const b = await issueReceipt(alice, input, null)
    assert.equal(a, b)
    assert.equal(receiptHash(a), receiptHash(b))
  })
})
