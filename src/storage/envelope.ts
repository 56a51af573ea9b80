/**
 * The envelope of an encrypted object: one dag-cbor block that names the ciphertext and says
 * how to open it. Its CID is the object's CID. See docs/storage.md for the format.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { JWE } from '../identity/index.js'
import { AEAD_ALGORITHMS, type AeadAlgorithm } from './crypto.js'
import {
  ENVELOPE_TYPE,
  ENVELOPE_VERSION,
  MAX_CHUNK_SIZE,
  MAX_ENVELOPE_BYTES,
  MIN_CHUNK_SIZE
} from './constants.js'
import { IntegrityError, UnsupportedFormatError } from './errors.js'

/** An encrypted object's envelope (version 1), as stored in dag-cbor. */
export interface Envelope {
  /** Always `shoal/encrypted-object`. */
  type: typeof ENVELOPE_TYPE
  /** Format version (1). */
  v: number
  /** AEAD of the chunk construction. */
  alg: AeadAlgorithm
  /** Plaintext bytes per chunk. */
  chunkSize: number
  /** Plaintext length in bytes. */
  size: number
  /** SHA-256 of the plaintext (32 bytes). */
  sha256: Uint8Array
  /** Root of the ciphertext (a UnixFS file whose leaves are the sealed chunks). */
  ciphertext: CID
  /** HKDF commitment to the content key (32 bytes). */
  keyCommitment: Uint8Array
  /** DID of the identity that added the object. */
  owner: string
  /** The content key wrapped for the owner (JWE, ECDH-ES+X25519 key agreement). */
  wrappedKey: JWE
  /** Optional name (public metadata: visible to anyone who holds the envelope). */
  name?: string
}

/** Encode an envelope into a dag-cbor block and its CID (CIDv1, sha2-256). */
export async function encodeEnvelope(env: Envelope): Promise<{ cid: CID; bytes: Uint8Array }> {
  const value: Record<string, unknown> = {
    type: env.type,
    v: env.v,
    alg: env.alg,
    chunkSize: env.chunkSize,
    size: env.size,
    sha256: env.sha256,
    ciphertext: env.ciphertext,
    keyCommitment: env.keyCommitment,
    owner: env.owner,
    // did-jwt objects may carry `undefined` members, which dag-cbor refuses.
    wrappedKey: JSON.parse(JSON.stringify(env.wrappedKey)) as unknown
  }
  if (env.name !== undefined) value.name = env.name
  const bytes = dagCbor.encode(value)
  const cid = CID.createV1(dagCbor.code, await sha256.digest(bytes))
  return { cid, bytes }
}

/** True when a decoded dag-cbor value claims to be an envelope. */
export function looksLikeEnvelope(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === ENVELOPE_TYPE
}

/**
 * Decode and validate an envelope block.
 *
 * @throws {UnsupportedFormatError} when the block is not an envelope, or of an unknown version or algorithm.
 * @throws {IntegrityError} when a field is missing or out of range.
 */
export function decodeEnvelope(bytes: Uint8Array, cid?: CID): Envelope {
  if (bytes.byteLength > MAX_ENVELOPE_BYTES) {
    throw new IntegrityError('envelope block too large', { cid: cid?.toString(), length: bytes.byteLength })
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new IntegrityError('envelope is not valid dag-cbor', { cid: cid?.toString() }, { cause: err })
  }
  if (!looksLikeEnvelope(value)) {
    throw new UnsupportedFormatError('block is not a Shoal envelope', { cid: cid?.toString() })
  }
  const o = value as Record<string, unknown>
  const bad = (field: string): IntegrityError =>
    new IntegrityError(`envelope field ${field} is missing or invalid`, { cid: cid?.toString(), field })
  if (o.v !== ENVELOPE_VERSION) {
    throw new UnsupportedFormatError(`unsupported envelope version ${String(o.v)}`, {
      cid: cid?.toString(),
      version: o.v
    })
  }
  if (typeof o.alg !== 'string' || !AEAD_ALGORITHMS.includes(o.alg as AeadAlgorithm)) {
    throw new UnsupportedFormatError(`unsupported algorithm ${String(o.alg)}`, {
      cid: cid?.toString(),
      algorithm: o.alg
    })
  }
  const cs = o.chunkSize
  if (typeof cs !== 'number' || !Number.isSafeInteger(cs) || cs < MIN_CHUNK_SIZE || cs > MAX_CHUNK_SIZE) {
    throw bad('chunkSize')
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw bad('size')
  if (!(o.sha256 instanceof Uint8Array) || o.sha256.byteLength !== 32) throw bad('sha256')
  if (!(o.keyCommitment instanceof Uint8Array) || o.keyCommitment.byteLength !== 32)
    throw bad('keyCommitment')
  const ciphertext = CID.asCID(o.ciphertext)
  if (ciphertext == null) throw bad('ciphertext')
  if (typeof o.owner !== 'string' || !o.owner.startsWith('did:')) throw bad('owner')
  if (!isJwe(o.wrappedKey)) throw bad('wrappedKey')
  if (o.name !== undefined && typeof o.name !== 'string') throw bad('name')
  const env: Envelope = {
    type: ENVELOPE_TYPE,
    v: o.v,
    alg: o.alg as AeadAlgorithm,
    chunkSize: cs,
    size: o.size,
    sha256: o.sha256,
    ciphertext,
    keyCommitment: o.keyCommitment,
    owner: o.owner,
    wrappedKey: o.wrappedKey
  }
  if (typeof o.name === 'string') env.name = o.name
  return env
}

function isJwe(x: unknown): x is JWE {
  if (typeof x !== 'object' || x === null) return false
  const j = x as Record<string, unknown>
  return (
    typeof j.protected === 'string' &&
    typeof j.iv === 'string' &&
    typeof j.ciphertext === 'string' &&
    typeof j.tag === 'string'
  )
}
