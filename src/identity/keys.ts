/**
 * Ed25519 key pairs (RFC 8032) with @noble/curves.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { ED25519_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './constants.js'
import { publicKeyFromDid } from './did.js'
import { InvalidKeyError } from './errors.js'

/** An Ed25519 key pair: the 32-byte seed (RFC 8032 private key) and the 32-byte public key. */
export interface Ed25519Keypair {
  /** The 32-byte seed. Secret. */
  secretKey: Uint8Array
  /** The 32-byte public key. */
  publicKey: Uint8Array
}

/** A fresh key pair from the system CSPRNG. */
export function generateKeypair(): Ed25519Keypair {
  return keypairFromSeed(ed25519.utils.randomSecretKey())
}

/**
 * The key pair of a 32-byte seed (copied).
 *
 * @throws {InvalidKeyError} `INVALID_KEY` when the seed is not 32 bytes.
 */
export function keypairFromSeed(seed: Uint8Array): Ed25519Keypair {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_KEY_BYTES) {
    throw new InvalidKeyError(`seed must be ${ED25519_KEY_BYTES} bytes`)
  }
  const secretKey = Uint8Array.from(seed)
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) }
}

/**
 * Verifies a raw Ed25519 signature by the key of `did` (strict RFC 8032 decoding, not
 * ZIP-215). Never throws: an invalid DID or a malformed signature gives `false`.
 */
export function verifySignature(did: string, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_BYTES) return false
  try {
    return ed25519.verify(signature, message, publicKeyFromDid(did), { zip215: false })
  } catch {
    return false
  }
}

/** Raw Ed25519 signature of `message` by `seed`. */
export function signWithSeed(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, seed)
}
