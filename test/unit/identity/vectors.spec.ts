/**
 * W3C did:key test vectors (test/vectors/did-key, see its README for the source).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import {
  didFromPublicKey,
  didKeyResolver,
  keypairFromSeed,
  publicKeyFromDid,
  x25519MultibaseFromPublicKey,
  x25519PublicKeyFromEd25519
} from '../../../src/identity/index.js'

const dir = new URL('../../vectors/did-key/', import.meta.url)

/** A key in the vector file: base58 (entries 1-4) or JWK (entry 5, JsonWebKey2020). */
interface VectorKey {
  id: string
  publicKeyBase58?: string
  privateKeyBase58?: string
  publicKeyJwk?: { x: string }
  privateKeyJwk?: { d: string }
}
interface SeedVector {
  seed: string
  verificationKeyPair: VectorKey
  keyAgreementKeyPair: VectorKey
  didDocument: { id: string }
}
interface SpecExample {
  did: string
  publicKeyMultibase: string
  x25519PublicKeyMultibase: string
  ed25519Jwk?: { x: string }
  x25519Jwk?: { x: string }
}

const seedVectors = Object.entries(
  JSON.parse(readFileSync(new URL('ed25519-x25519.json', dir), 'utf8')) as Record<string, SeedVector>
)
const specExamples = (
  JSON.parse(readFileSync(new URL('spec-examples.json', dir), 'utf8')) as { examples: SpecExample[] }
).examples

const b58 = (s: string): Uint8Array => base58btc.decode(`z${s}`)
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))
const b64url = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64url'))

function publicOf(k: VectorKey): Uint8Array {
  if (k.publicKeyBase58 !== undefined) return b58(k.publicKeyBase58)
  if (k.publicKeyJwk !== undefined) return b64url(k.publicKeyJwk.x)
  throw new Error(`vector ${k.id} has no public key`)
}
function privateOf(k: VectorKey): Uint8Array {
  if (k.privateKeyBase58 !== undefined) return b58(k.privateKeyBase58)
  if (k.privateKeyJwk !== undefined) return b64url(k.privateKeyJwk.d)
  throw new Error(`vector ${k.id} has no private key`)
}
/** The fragment of a key id (`#z6LS…` or `did:key:…#z6LS…`). */
const fragment = (id: string): string => id.slice(id.indexOf('#') + 1)

describe('identity: did:key test vectors (w3c-ccg/did-method-key)', () => {
  it('has the vectors', () => {
    assert.equal(seedVectors.length, 5)
    assert.equal(specExamples.length, 2)
  })

  for (const [did, v] of seedVectors) {
    describe(`seed ${v.seed.slice(-4)} → ${did.slice(0, 20)}…`, () => {
      it('seed → Ed25519 public key → did', () => {
        const kp = keypairFromSeed(hex(v.seed))
        assert.deepEqual(kp.publicKey, publicOf(v.verificationKeyPair))
        assert.equal(didFromPublicKey(kp.publicKey), did)
        assert.equal(v.didDocument.id, did)
        assert.equal(fragment(v.verificationKeyPair.id), did.slice('did:key:'.length))
        if (v.verificationKeyPair.privateKeyJwk !== undefined) {
          assert.deepEqual(privateOf(v.verificationKeyPair), hex(v.seed))
        }
      })

      it('did → Ed25519 public key', () => {
        assert.deepEqual(publicKeyFromDid(did), publicOf(v.verificationKeyPair))
      })

      it('Ed25519 → X25519 public and private key', () => {
        const x = x25519PublicKeyFromEd25519(publicKeyFromDid(did))
        assert.deepEqual(x, publicOf(v.keyAgreementKeyPair))
        assert.equal(x25519MultibaseFromPublicKey(x), fragment(v.keyAgreementKeyPair.id))
        assert.deepEqual(ed25519.utils.toMontgomerySecret(hex(v.seed)), privateOf(v.keyAgreementKeyPair))
      })
    })
  }

  for (const ex of specExamples) {
    it(`spec example ${ex.did.slice(0, 24)}…: multibase, JWK and keyAgreement`, async () => {
      const key = publicKeyFromDid(ex.did)
      assert.equal(`did:key:${ex.publicKeyMultibase}`, ex.did)
      assert.equal(didFromPublicKey(key), ex.did)
      if (ex.ed25519Jwk !== undefined) assert.deepEqual(key, b64url(ex.ed25519Jwk.x))
      const x = x25519PublicKeyFromEd25519(key)
      if (ex.x25519Jwk !== undefined) assert.deepEqual(x, b64url(ex.x25519Jwk.x))
      assert.equal(x25519MultibaseFromPublicKey(x), ex.x25519PublicKeyMultibase)

      const { didDocument } = await didKeyResolver().resolve(ex.did)
      assert.ok(didDocument)
      assert.equal(didDocument.id, ex.did)
      const vm = didDocument.verificationMethod?.[0]
      assert.equal(vm?.id, `${ex.did}#${ex.publicKeyMultibase}`)
      assert.equal(vm?.publicKeyMultibase, ex.publicKeyMultibase)
      const ka = didDocument.keyAgreement?.[0]
      assert.ok(ka !== undefined && typeof ka !== 'string')
      assert.equal(ka.publicKeyMultibase, ex.x25519PublicKeyMultibase)
    })
  }
})
