/**
 * A node's identity: one Ed25519 key that is at once its did:key, its libp2p PeerId, its
 * JWT signing key and (through Edwards→Montgomery) its X25519 key for JWEs.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { createJWT, decryptJWE, EdDSASigner, createAnonDecrypter } from 'did-jwt'
import type { JWE, JWTPayload } from 'did-jwt'
import { ED25519_KEY_BYTES } from './constants.js'
import { didFromPublicKey, x25519PublicKeyFromEd25519 } from './did.js'
import { InvalidKeyError, JweError } from './errors.js'
import { signWithSeed } from './keys.js'
import type { Ed25519Keypair } from './keys.js'

/** Options of {@link Identity.signJwt}. */
export interface SignJwtOptions {
  /** Lifetime in seconds: sets `exp = (nbf ?? iat) + expiresIn`. */
  expiresIn?: number
  /** Sets `aud`. */
  audience?: string
}

/** One node's identity; holds the secret seed in a private field (never serialised or logged). */
export class Identity {
  readonly did: string
  readonly publicKey: Uint8Array
  readonly peerId: PeerId
  /** @libp2p/crypto Ed25519 private key: `createLibp2p({ privateKey: identity.libp2pPrivateKey })`. */
  readonly libp2pPrivateKey: PrivateKey
  /** The X25519 public key (Edwards→Montgomery of {@link publicKey}) that JWEs are wrapped for. */
  readonly x25519PublicKey: Uint8Array
  readonly #seed: Uint8Array
  readonly #x25519SecretKey: Uint8Array

  private constructor(seed: Uint8Array, publicKey: Uint8Array) {
    this.#seed = seed
    this.publicKey = publicKey
    this.did = didFromPublicKey(publicKey)
    const raw = new Uint8Array(ED25519_KEY_BYTES * 2)
    raw.set(seed)
    raw.set(publicKey, ED25519_KEY_BYTES)
    this.libp2pPrivateKey = privateKeyFromRaw(raw)
    this.peerId = peerIdFromPrivateKey(this.libp2pPrivateKey)
    this.x25519PublicKey = x25519PublicKeyFromEd25519(publicKey)
    this.#x25519SecretKey = ed25519.utils.toMontgomerySecret(seed)
  }

  /**
   * The identity of a key pair (copied).
   *
   * @throws {InvalidKeyError} `INVALID_KEY` when a key is not 32 bytes or the public key is not the seed's.
   */
  static fromKeypair(kp: Ed25519Keypair): Identity {
    if (!(kp.secretKey instanceof Uint8Array) || kp.secretKey.length !== ED25519_KEY_BYTES) {
      throw new InvalidKeyError(`secret key (seed) must be ${ED25519_KEY_BYTES} bytes`)
    }
    const seed = Uint8Array.from(kp.secretKey)
    const publicKey = ed25519.getPublicKey(seed)
    if (!(kp.publicKey instanceof Uint8Array) || !bytesEqual(publicKey, kp.publicKey)) {
      throw new InvalidKeyError('the public key does not belong to the secret key')
    }
    return new Identity(seed, publicKey)
  }

  /** A raw 64-byte Ed25519 signature of `message`. */
  sign(message: Uint8Array): Uint8Array {
    return signWithSeed(this.#seed, message)
  }

  /** A did-jwt JWT (`alg: EdDSA`, `iss` = this DID, `iat` = now). */
  async signJwt(payload: Record<string, unknown>, opts: SignJwtOptions = {}): Promise<string> {
    const full: Partial<JWTPayload> = { ...payload }
    if (opts.audience !== undefined) full.aud = opts.audience
    return createJWT(
      full,
      { issuer: this.did, signer: EdDSASigner(this.#seed), expiresIn: opts.expiresIn },
      { alg: 'EdDSA' }
    )
  }

  /**
   * Opens a JWE addressed to this identity's X25519 key (see `encryptForDids`).
   *
   * @throws {JweError} `JWE_DECRYPT_FAILED` when this identity is not a recipient or the JWE was altered.
   */
  async decryptJwe(jwe: JWE): Promise<Uint8Array> {
    try {
      return await decryptJWE(jwe, createAnonDecrypter(this.#x25519SecretKey))
    } catch (err) {
      throw new JweError(
        'JWE_DECRYPT_FAILED',
        `cannot decrypt JWE as ${this.did}: ${(err as Error).message}`,
        {
          did: this.did
        }
      )
    }
  }

  /** Only the public parts (so that logging an identity never shows the key). */
  toJSON(): { did: string; peerId: string } {
    return { did: this.did, peerId: this.peerId.toString() }
  }
}

/** Constant-time comparison of two byte arrays of equal length. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return diff === 0
}
