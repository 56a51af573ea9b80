/**
 * did:key for Ed25519 (https://w3c-ccg.github.io/did-method-key/), its link to the
 * libp2p PeerId, and the X25519 key agreement key derived from it.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { varint } from 'multiformats'
import type { PeerId } from '@libp2p/interface'
import type { JWTVerifyOptions } from 'did-jwt'
import {
  DID_KEY_PREFIX,
  ED25519_KEY_BYTES,
  ED25519_PUB_MULTICODEC,
  X25519_PUB_MULTICODEC
} from './constants.js'
import { InvalidDidError, InvalidKeyError, UnsupportedPeerIdError } from './errors.js'

/** A did-resolver `Resolvable` (the resolver type did-jwt accepts). */
export type Resolvable = NonNullable<JWTVerifyOptions['resolver']>
/** A did-resolver `DIDResolutionResult`. */
export type DIDResolutionResult = Awaited<ReturnType<Resolvable['resolve']>>

function multibaseKey(codec: number, key: Uint8Array): string {
  const prefix = varint.encodeTo(codec, new Uint8Array(varint.encodingLength(codec)))
  const bytes = new Uint8Array(prefix.length + key.length)
  bytes.set(prefix)
  bytes.set(key, prefix.length)
  return base58btc.encode(bytes)
}

/** The did:key (`did:key:z6Mk…`) of a raw 32-byte Ed25519 public key. */
export function didFromPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_KEY_BYTES) {
    throw new InvalidKeyError(`public key must be ${ED25519_KEY_BYTES} bytes`)
  }
  return DID_KEY_PREFIX + multibaseKey(ED25519_PUB_MULTICODEC, publicKey)
}

/** Longest multibase key part of a did:key accepted (an Ed25519 one has 48 characters). */
export const MAX_DID_KEY_MULTIBASE_CHARS = 128

/**
 * The raw Ed25519 public key of a did:key.
 *
 * @throws {InvalidDidError} `INVALID_DID`, with `reason`: `invalidDid` (not `did:key:z…`, or
 * not base58btc), `unsupportedPublicKeyType` (another multicodec), `invalidPublicKeyLength`,
 * `invalidPublicKey` (not a point of the curve).
 */
export function publicKeyFromDid(did: string): Uint8Array {
  if (typeof did !== 'string' || !did.startsWith(DID_KEY_PREFIX)) {
    throw new InvalidDidError(String(did), 'invalidDid', `must start with "${DID_KEY_PREFIX}"`)
  }
  const multibase = did.slice(DID_KEY_PREFIX.length)
  if (!multibase.startsWith('z')) {
    throw new InvalidDidError(did, 'invalidDid', 'the key must be multibase base58btc (start with "z")')
  }
  // An Ed25519 did:key is 48 characters here; base58 decoding takes time quadratic in the
  // length, so a long string (a DID from the network) is refused before decoding it.
  if (multibase.length > MAX_DID_KEY_MULTIBASE_CHARS) {
    throw new InvalidDidError(
      did,
      'invalidDid',
      `the key has ${multibase.length} characters, more than ${MAX_DID_KEY_MULTIBASE_CHARS}`
    )
  }
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(multibase)
  } catch {
    throw new InvalidDidError(did, 'invalidDid', 'the key is not valid base58btc')
  }
  let codec: number
  let offset: number
  try {
    ;[codec, offset] = varint.decode(bytes)
  } catch {
    throw new InvalidDidError(did, 'invalidDid', 'the key has no multicodec prefix')
  }
  if (codec !== ED25519_PUB_MULTICODEC) {
    throw new InvalidDidError(
      did,
      'unsupportedPublicKeyType',
      `multicodec 0x${codec.toString(16)} is not ed25519-pub (0xed)`
    )
  }
  const key = bytes.slice(offset)
  if (key.length !== ED25519_KEY_BYTES) {
    throw new InvalidDidError(
      did,
      'invalidPublicKeyLength',
      `an Ed25519 key has ${ED25519_KEY_BYTES} bytes, got ${key.length}`
    )
  }
  try {
    ed25519.Point.fromBytes(key, false)
  } catch {
    throw new InvalidDidError(did, 'invalidPublicKey', 'the key is not a valid Ed25519 point')
  }
  return key
}

/** The X25519 public key of an Ed25519 public key (birational Edwards→Montgomery map). */
export function x25519PublicKeyFromEd25519(publicKey: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(publicKey)
}

/** The did:key of an X25519 public key (`did:key:z6LS…`), as the did:key spec's keyAgreement ids. */
export function x25519MultibaseFromPublicKey(x25519PublicKey: Uint8Array): string {
  return multibaseKey(X25519_PUB_MULTICODEC, x25519PublicKey)
}

/** The libp2p PeerId of an Ed25519 did:key (identity multihash of the protobuf public key). */
export function peerIdFromDid(did: string): PeerId {
  const key = publicKeyFromRaw(publicKeyFromDid(did))
  return peerIdFromPublicKey(key)
}

/**
 * The did:key of an Ed25519 PeerId.
 *
 * @throws {UnsupportedPeerIdError} `UNSUPPORTED_PEER_ID` for RSA, secp256k1 or URL peer ids.
 */
export function didFromPeerId(peerId: PeerId): string {
  if (peerId.type !== 'Ed25519' || peerId.publicKey === undefined) {
    throw new UnsupportedPeerIdError(peerId.toString(), peerId.type)
  }
  return didFromPublicKey(peerId.publicKey.raw)
}

function didDocument(did: string, publicKey: Uint8Array): Record<string, unknown> {
  const fragment = did.slice(DID_KEY_PREFIX.length)
  const vmId = `${did}#${fragment}`
  const x = x25519MultibaseFromPublicKey(x25519PublicKeyFromEd25519(publicKey))
  return {
    '@context': [
      'https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/suites/ed25519-2020/v1',
      'https://w3id.org/security/suites/x25519-2020/v1'
    ],
    id: did,
    verificationMethod: [
      { id: vmId, type: 'Ed25519VerificationKey2020', controller: did, publicKeyMultibase: fragment }
    ],
    authentication: [vmId],
    assertionMethod: [vmId],
    capabilityDelegation: [vmId],
    capabilityInvocation: [vmId],
    keyAgreement: [
      { id: `${did}#${x}`, type: 'X25519KeyAgreementKey2020', controller: did, publicKeyMultibase: x }
    ]
  }
}

/**
 * An offline did:key resolver for Ed25519 keys, compatible with did-resolver's `Resolvable`
 * (pass it to did-jwt). It builds the DID document of the spec's "Create" section;
 * anything else resolves to `notFound` / `invalidDid` with no document.
 */
export function didKeyResolver(): Resolvable {
  return {
    async resolve(didUrl: string): Promise<DIDResolutionResult> {
      const did = didUrl.split(/[#?/]/, 1)[0] ?? ''
      const contentType = 'application/did+ld+json'
      if (!did.startsWith(DID_KEY_PREFIX)) {
        return {
          didResolutionMetadata: { error: 'methodNotSupported', message: `not a did:key: ${did}` },
          didDocument: null,
          didDocumentMetadata: {}
        }
      }
      try {
        const key = publicKeyFromDid(did)
        return {
          didResolutionMetadata: { contentType },
          didDocument: didDocument(did, key) as unknown as DIDResolutionResult['didDocument'],
          didDocumentMetadata: {}
        }
      } catch (err) {
        const error =
          err instanceof InvalidDidError && err.fields.reason !== 'invalidDid'
            ? err.fields.reason
            : 'invalidDid'
        return {
          didResolutionMetadata: { error, message: (err as Error).message },
          didDocument: null,
          didDocumentMetadata: {}
        }
      }
    }
  }
}
