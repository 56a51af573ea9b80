import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { createLibp2p } from 'libp2p'
import {
  didFromPeerId,
  didFromPublicKey,
  didKeyResolver,
  generateKeypair,
  Identity,
  InvalidDidError,
  keypairFromSeed,
  peerIdFromDid,
  publicKeyFromDid,
  verifySignature
} from '../../../src/identity/index.js'

const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const didOfBytes = (bytes: number[]): string => `did:key:${base58btc.encode(Uint8Array.from(bytes))}`

function assertInvalid(did: string, reason: string): void {
  assert.throws(
    () => publicKeyFromDid(did),
    (err: unknown) => {
      assert.ok(err instanceof InvalidDidError, String(err))
      assert.equal(err.code, 'INVALID_DID')
      assert.equal(err.fields.reason, reason, err.message)
      return true
    }
  )
}

describe('identity: did:key and PeerId', () => {
  const id = Identity.fromKeypair(keypairFromSeed(seed(7)))

  it('did ↔ public key round trip', () => {
    for (let i = 0; i < 20; i++) {
      const kp = generateKeypair()
      const did = didFromPublicKey(kp.publicKey)
      assert.match(did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/)
      assert.deepEqual(publicKeyFromDid(did), kp.publicKey)
    }
  })

  it('the PeerId is the identity multihash of the protobuf Ed25519 key, byte for byte', () => {
    const protobuf = Uint8Array.from([0x08, 0x01, 0x12, 0x20, ...id.publicKey])
    const multihash = Uint8Array.from([0x00, protobuf.length, ...protobuf])
    assert.deepEqual(id.peerId.toMultihash().bytes, multihash)
    assert.deepEqual(peerIdFromDid(id.did).toMultihash().bytes, multihash)
    assert.equal(id.peerId.type, 'Ed25519')
    assert.match(id.peerId.toString(), /^12D3KooW/)
  })

  it('did → peerId → did round trip, also through the string form', () => {
    for (let i = 0; i < 10; i++) {
      const did = didFromPublicKey(generateKeypair().publicKey)
      const peerId = peerIdFromDid(did)
      assert.equal(didFromPeerId(peerId), did)
      assert.equal(didFromPeerId(peerIdFromString(peerId.toString())), did)
    }
    assert.ok(peerIdFromDid(id.did).equals(id.peerId))
  })

  it('the libp2p private key is the same key: same PeerId, same signatures', async () => {
    assert.ok(peerIdFromPrivateKey(id.libp2pPrivateKey).equals(id.peerId))
    assert.equal(id.libp2pPrivateKey.type, 'Ed25519')
    const msg = new TextEncoder().encode('same key')
    const libp2pSig = await id.libp2pPrivateKey.sign(msg)
    assert.deepEqual(id.sign(msg), Uint8Array.from(libp2pSig))
    assert.ok(await id.libp2pPrivateKey.publicKey.verify(msg, id.sign(msg)))
  })

  it('createLibp2p({ privateKey }) runs as this identity', async () => {
    const node = await createLibp2p({ privateKey: id.libp2pPrivateKey, start: false })
    try {
      assert.ok(node.peerId.equals(id.peerId))
      assert.equal(didFromPeerId(node.peerId), id.did)
    } finally {
      await node.stop()
    }
  })

  it('didFromPeerId rejects a non-Ed25519 peer', async () => {
    const peerId = peerIdFromPrivateKey(await generateKeyPair('secp256k1'))
    assert.throws(() => didFromPeerId(peerId), { code: 'UNSUPPORTED_PEER_ID' })
  })

  it('invalid DIDs give INVALID_DID with the reason', () => {
    const good = id.did
    assertInvalid('did:web:example.com', 'invalidDid')
    assertInvalid(good.replace('did:key:', 'did:kee:'), 'invalidDid')
    assertInvalid(good.replace('did:key:z', 'did:key:'), 'invalidDid') // no multibase prefix
    assertInvalid(good.replace('did:key:z', 'did:key:f'), 'invalidDid') // base16 multibase
    assertInvalid(`${good.slice(0, 20)}0${good.slice(21)}`, 'invalidDid') // '0' is not base58
    assertInvalid(`${good.slice(0, 20)}l${good.slice(21)}`, 'invalidDid') // nor is 'l'
    assertInvalid('did:key:z', 'invalidDid')
    assertInvalid('', 'invalidDid')
    // X25519 (0xec) did:key from the spec, and secp256k1 (0xe7)
    assertInvalid('did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F', 'unsupportedPublicKeyType')
    assertInvalid(didOfBytes([0xe7, 0x01, ...new Array<number>(33).fill(2)]), 'unsupportedPublicKeyType')
    assertInvalid(didOfBytes([0xed, 0x01, ...id.publicKey.slice(0, 31)]), 'invalidPublicKeyLength')
    assertInvalid(didOfBytes([0xed, 0x01, ...id.publicKey, 0]), 'invalidPublicKeyLength')
    assertInvalid(didOfBytes([0xed, 0x01]), 'invalidPublicKeyLength')
    // y = 2 is not the y-coordinate of any point of edwards25519
    assertInvalid(didOfBytes([0xed, 0x01, 2, ...new Array<number>(31).fill(0)]), 'invalidPublicKey')
    assert.deepEqual(publicKeyFromDid(good), id.publicKey)
  })

  it('verifySignature: raw Ed25519, false (never a throw) for anything wrong', () => {
    const msg = new TextEncoder().encode('hello shoal')
    const sig = id.sign(msg)
    assert.equal(sig.length, 64)
    assert.ok(verifySignature(id.did, msg, sig))
    const other = Identity.fromKeypair(keypairFromSeed(seed(8)))
    assert.ok(!verifySignature(other.did, msg, sig))
    assert.ok(!verifySignature(id.did, new TextEncoder().encode('hello shoaL'), sig))
    const flipped = Uint8Array.from(sig)
    flipped[10] = (flipped[10] ?? 0) ^ 1
    assert.ok(!verifySignature(id.did, msg, flipped))
    assert.ok(!verifySignature(id.did, msg, sig.slice(0, 63)))
    assert.ok(!verifySignature('did:key:nope', msg, sig))
  })

  it('Identity.fromKeypair rejects mismatched or short keys', () => {
    const a = keypairFromSeed(seed(1))
    const b = keypairFromSeed(seed(2))
    assert.throws(() => Identity.fromKeypair({ secretKey: a.secretKey, publicKey: b.publicKey }), {
      code: 'INVALID_KEY'
    })
    assert.throws(() => keypairFromSeed(new Uint8Array(31)), { code: 'INVALID_KEY' })
    assert.throws(() => didFromPublicKey(new Uint8Array(33)), { code: 'INVALID_KEY' })
  })

  it('Identity never serialises its secret', () => {
    const json = JSON.stringify(id)
    assert.deepEqual(JSON.parse(json), { did: id.did, peerId: id.peerId.toString() })
  })

  it('didKeyResolver resolves did:key (DID URLs too) and reports errors without throwing', async () => {
    const resolver = didKeyResolver()
    const ok = await resolver.resolve(`${id.did}#${id.did.slice(8)}`)
    assert.equal(ok.didDocument?.id, id.did)
    assert.equal(ok.didResolutionMetadata.error, undefined)
    const bad = await resolver.resolve('did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F')
    assert.equal(bad.didDocument, null)
    assert.equal(bad.didResolutionMetadata.error, 'unsupportedPublicKeyType')
    const web = await resolver.resolve('did:web:example.com')
    assert.equal(web.didResolutionMetadata.error, 'methodNotSupported')
  })
})
