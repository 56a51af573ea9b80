/**
 * Fuzzing identity and storage formats: did:key strings, JWT verification, key files (sealed
 * and unsealed) as they sit in a data dir, encrypted-object envelopes, and JWEs addressed to
 * this node. The property: a value or a named error (KEYSTORE_*, JWT_INVALID, INTEGRITY, …).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import {
  Identity,
  Keystore,
  encryptForDids,
  keypairFromSeed,
  peerIdFromDid,
  publicKeyFromDid,
  verifyJwt
} from '../../../src/identity/index.js'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { decodeEnvelope, encodeEnvelope } from '../../../src/storage/index.js'
import {
  anyJson,
  deepJsonText,
  expectNamed,
  fuzzParams,
  fuzzTimeout,
  jwtShaped,
  mutateBytes,
  mutateJson,
  mutateString,
  nastyString,
  safeStringify
} from './arbitraries.js'

const me = Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(21)))

describe('fuzz: identity and storage formats', function () {
  this.timeout(fuzzTimeout(60_000))
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-fuzz-identity-'))
  })
  after(async () => rm(dir, { recursive: true, force: true }))

  it('did:key strings: a public key and PeerId, or a named error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(nastyString, mutateString(me.did), fc.constant(me.did)), async (did) => {
        const key = await expectNamed('did.publicKey', () => publicKeyFromDid(did))
        if (key !== undefined) assert.equal(key.length, 32)
        await expectNamed('did.peerId', () => peerIdFromDid(did))
      }),
      fuzzParams(600)
    )
  })

  it('regression: a long did:key is INVALID_DID at once (base58 decoding took ~45 s for 200 KB, quadratic)', async () => {
    const long = 'did:key:z' + '2'.repeat(200_000)
    let t0 = Date.now()
    assert.throws(
      () => publicKeyFromDid(long),
      (err: unknown) => (err as { code?: string }).code === 'INVALID_DID'
    )
    assert.ok(Date.now() - t0 < 100, `${Date.now() - t0} ms`)
    // The same through a JWT's issuer (any gossiped document): refused as fast.
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
    const jwt = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ iss: 'did:key:z' + '2'.repeat(60_000) })}.${b64('sig')}`
    t0 = Date.now()
    await assert.rejects(
      verifyJwt(jwt),
      (err: unknown) => typeof (err as { code?: unknown }).code === 'string'
    )
    assert.ok(Date.now() - t0 < 500, `${Date.now() - t0} ms`)
  })

  it('verifyJwt: the payload and issuer, or a named error', async () => {
    const jwt = await me.signJwt({ hello: 'world', n: 1 })
    await fc.assert(
      fc.asyncProperty(fc.oneof(nastyString, jwtShaped, mutateString(jwt)), async (input) => {
        const v = await expectNamed('jwt.verify', () => verifyJwt(input))
        if (v !== undefined) assert.equal(typeof v.issuer, 'string')
      }),
      fuzzParams(300)
    )
  })

  it('key files (unsealed and sealed): the identity, or a KEYSTORE_* error', async () => {
    const plainDir = join(dir, 'plain')
    const sealedDir = join(dir, 'sealed')
    await Keystore.init(plainDir, { keypair: keypairFromSeed(new Uint8Array(32).fill(4)) })
    await Keystore.init(sealedDir, {
      keypair: keypairFromSeed(new Uint8Array(32).fill(5)),
      passphrase: 'pw',
      kdf: { N: 1024, r: 8, p: 1 }
    })
    const plain = await readFile(Keystore.keyFile(plainDir))
    const sealed = await readFile(Keystore.keyFile(sealedDir))
    const target = join(dir, 'target')
    await Keystore.init(target)
    const enc = new TextEncoder()
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(plain, sealed).chain((s) => mutateBytes(s)),
          fc
            .constantFrom(plain, sealed)
            .chain((s) => mutateJson(JSON.parse(s.toString()) as unknown))
            .map((v) => enc.encode(safeStringify(v))),
          anyJson.map((v) => enc.encode(safeStringify(v))),
          deepJsonText.map((t) => enc.encode(t))
        ),
        fc.option(fc.constantFrom('pw', 'wrong', ''), { nil: undefined }),
        async (bytes, passphrase) => {
          await writeFile(Keystore.keyFile(target), bytes)
          const opts = passphrase === undefined ? {} : { passphrase }
          await expectNamed('keystore.load', () => Keystore.load(target, opts))
        }
      ),
      fuzzParams(150)
    )
  })

  it('envelopes of encrypted objects: the envelope, or INTEGRITY / UNSUPPORTED_FORMAT', async () => {
    const wrappedKey = await encryptForDids(new Uint8Array(32).fill(1), [me.did])
    const envelope = {
      type: 'shoal/encrypted-object' as const,
      v: 1,
      alg: 'AES-256-GCM' as const,
      chunkSize: 1_048_576,
      size: 10,
      sha256: new Uint8Array(32).fill(2),
      ciphertext: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'),
      keyCommitment: new Uint8Array(32).fill(3),
      owner: me.did,
      wrappedKey,
      name: 'x'
    }
    const { bytes } = await encodeEnvelope(envelope)
    const asJson = JSON.parse(
      safeStringify({ ...envelope, ciphertext: envelope.ciphertext.toString() })
    ) as unknown
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 128 }),
          mutateBytes(bytes),
          // Re-encoded as dag-cbor after a structural mutation (wrong types, missing fields, …).
          mutateJson(asJson).map((v) => {
            try {
              return dagCbor.encode(v)
            } catch {
              return bytes
            }
          })
        ),
        async (block) => {
          await expectNamed('envelope.decode', () => decodeEnvelope(block))
        }
      ),
      fuzzParams(400)
    )
  })

  it('JWEs addressed to this node: the plaintext, or a named error', async () => {
    const jwe = await encryptForDids(new Uint8Array([1, 2, 3]), [me.did])
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutateJson(jwe), anyJson), async (value) => {
        await expectNamed('jwe.decrypt', () => me.decryptJwe(value as never))
      }),
      fuzzParams(300)
    )
  })
})
