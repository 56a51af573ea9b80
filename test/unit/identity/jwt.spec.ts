import assert from 'node:assert/strict'
import { createJWT, decodeJWT, EdDSASigner } from 'did-jwt'
import {
  encryptForDids,
  Identity,
  JweError,
  JwtInvalidError,
  keypairFromSeed,
  verifyJwt
} from '../../../src/identity/index.js'

const identity = (n: number): Identity => Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(n)))

async function rejects(p: Promise<unknown>, reason?: string): Promise<JwtInvalidError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof JwtInvalidError, String(err))
    assert.equal(err.code, 'JWT_INVALID')
    if (reason !== undefined) assert.equal(err.fields.reason, reason, err.message)
    return err
  }
  assert.fail('expected JWT_INVALID')
}

const b64urlJson = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')

describe('identity: JWT (did-jwt EdDSA) and JWE', () => {
  const alice = identity(1)
  const bob = identity(2)
  const carol = identity(3)

  it('sign → verify; iss is the DID, header alg EdDSA', async () => {
    const jwt = await alice.signJwt({ job: 'mnist', round: 3, nested: { a: [1, 2] } }, { expiresIn: 600 })
    const { header } = decodeJWT(jwt)
    assert.equal(header.alg, 'EdDSA')
    const { payload, issuer } = await verifyJwt(jwt)
    assert.equal(issuer, alice.did)
    assert.equal(payload.iss, alice.did)
    assert.equal(payload.job, 'mnist')
    assert.equal(payload.round, 3)
    assert.deepEqual(payload.nested, { a: [1, 2] })
    assert.equal(payload.exp, (payload.iat ?? 0) + 600)
  })

  it('a JWT with one payload character changed fails with JWT_INVALID', async () => {
    const jwt = await alice.signJwt({ grant: 'dataset-1', purpose: 'any' })
    const [h, p, s] = jwt.split('.') as [string, string, string]
    // change one character in the middle of the payload (keeps it decodable base64url)
    const i = Math.floor(p.length / 2)
    const c = p[i] === 'A' ? 'B' : 'A'
    await rejects(verifyJwt(`${h}.${p.slice(0, i)}${c}${p.slice(i + 1)}.${s}`))
    // a well-formed but altered payload under the old signature: a signature failure
    const claims = decodeJWT(jwt).payload
    await rejects(verifyJwt(`${h}.${b64urlJson({ ...claims, purpose: 'job-9' })}.${s}`), 'signature')
  })

  it('a JWT signed by one key but naming another DID as iss fails', async () => {
    const forged = await createJWT(
      { claim: 1 },
      { issuer: alice.did, signer: EdDSASigner(new Uint8Array(32).fill(2)) },
      { alg: 'EdDSA' }
    )
    await rejects(verifyJwt(forged), 'signature')
  })

  it('an expired JWT fails; a live one passes (with 300 s skew)', async () => {
    const jwt = await alice.signJwt({ x: 1 }, { expiresIn: 60 })
    const iat = decodeJWT(jwt).payload.iat ?? 0
    await verifyJwt(jwt, { now: iat + 30 })
    await verifyJwt(jwt, { now: iat + 60 + 299 })
    await rejects(verifyJwt(jwt, { now: iat + 60 + 301 }), 'expired')
    await rejects(verifyJwt(jwt, { now: iat - 3600 }), 'not_yet_valid')
  })

  it('audience is enforced', async () => {
    const jwt = await alice.signJwt({ x: 1 }, { audience: bob.did })
    assert.equal((await verifyJwt(jwt, { audience: bob.did })).payload.aud, bob.did)
    await rejects(verifyJwt(jwt, { audience: carol.did }), 'audience')
    await rejects(verifyJwt(jwt), 'audience')
  })

  it('rejects garbage, other algorithms and non-did:key issuers', async () => {
    await rejects(verifyJwt('not a jwt'), 'malformed')
    await rejects(verifyJwt('a.b.c'), 'malformed')
    const jwt = await alice.signJwt({ x: 1 })
    const [, p, s] = jwt.split('.') as [string, string, string]
    await rejects(verifyJwt(`${b64urlJson({ alg: 'none', typ: 'JWT' })}.${p}.`), 'malformed')
    await rejects(verifyJwt(`${b64urlJson({ alg: 'none', typ: 'JWT' })}.${p}.${s}`), 'unsupported')
    await rejects(verifyJwt(`${b64urlJson({ alg: 'ES256K', typ: 'JWT' })}.${p}.${s}`), 'unsupported')
    const h = jwt.split('.')[0] ?? ''
    await rejects(verifyJwt(`${h}.${b64urlJson({ iss: 'did:web:example.com', iat: 1 })}.${s}`), 'issuer')
    await rejects(verifyJwt(`${h}.${b64urlJson({ iat: 1 })}.${s}`), 'issuer')
  })

  it('JWE for two DIDs: each opens it, a third identity cannot', async () => {
    const plaintext = new TextEncoder().encode('content key 0123456789abcdef')
    const jwe = await encryptForDids(plaintext, [alice.did, bob.did])
    assert.equal(jwe.recipients?.length, 2)
    const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString()) as Record<string, unknown>
    assert.equal(header.enc, 'XC20P')
    for (const r of jwe.recipients ?? []) assert.equal(r.header.alg, 'ECDH-ES+XC20PKW')
    assert.ok(!JSON.stringify(jwe).includes(Buffer.from(plaintext).toString('base64url').slice(0, 12)))
    assert.deepEqual(await alice.decryptJwe(jwe), plaintext)
    assert.deepEqual(await bob.decryptJwe(jwe), plaintext)
    await assert.rejects(carol.decryptJwe(jwe), (err: unknown) => {
      assert.ok(err instanceof JweError)
      assert.equal(err.code, 'JWE_DECRYPT_FAILED')
      return true
    })
  })

  it('a tampered JWE does not decrypt', async () => {
    const jwe = await encryptForDids(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), [alice.did])
    const ct = Buffer.from(jwe.ciphertext, 'base64url')
    ct[0] = (ct[0] ?? 0) ^ 1
    await assert.rejects(alice.decryptJwe({ ...jwe, ciphertext: ct.toString('base64url') }), {
      code: 'JWE_DECRYPT_FAILED'
    })
  })

  it('encryptForDids needs at least one valid DID', async () => {
    await assert.rejects(encryptForDids(new Uint8Array(1), []), { code: 'JWE_NO_RECIPIENTS' })
    await assert.rejects(encryptForDids(new Uint8Array(1), ['did:key:zzz']), { code: 'INVALID_DID' })
  })
})
