import { ShoalError, type ErrorCategory } from '../common/index.js'

/** Why a DID was rejected; the names follow the did:key spec's error names. */
export type InvalidDidReason =
  'invalidDid' | 'unsupportedPublicKeyType' | 'invalidPublicKeyLength' | 'invalidPublicKey'

/**
 * Thrown when a string is not a valid Ed25519 `did:key` (wrong prefix, bad base58btc,
 * another multicodec, wrong key length, or bytes that are not a curve point).
 */
export class InvalidDidError extends ShoalError<'INVALID_DID', { did: string; reason: InvalidDidReason }> {
  static override readonly category = 'usage'

  constructor(did: string, reason: InvalidDidReason, detail: string) {
    const shown = did.length > 120 ? `${did.slice(0, 120)}…` : did
    super('INVALID_DID', `invalid did:key ${JSON.stringify(shown)}: ${detail}`, { did: shown, reason })
  }
}

/** Thrown when a PeerId is not an Ed25519 PeerId with an embedded public key, so it has no did:key. */
export class UnsupportedPeerIdError extends ShoalError<
  'UNSUPPORTED_PEER_ID',
  { peerId: string; type: string }
> {
  static override readonly category = 'refused'

  constructor(peerId: string, type: string) {
    super('UNSUPPORTED_PEER_ID', `peer ${peerId} has a ${type} key; only Ed25519 peers have a did:key`, {
      peerId,
      type
    })
  }
}

/** Thrown when key material has the wrong length or a keypair's halves do not match. */
export class InvalidKeyError extends ShoalError<'INVALID_KEY', { detail: string }> {
  static override readonly category = 'usage'

  constructor(detail: string) {
    super('INVALID_KEY', `invalid Ed25519 key: ${detail}`, { detail })
  }
}

/** Why a JWT was rejected. */
export type JwtInvalidReason =
  'malformed' | 'signature' | 'expired' | 'not_yet_valid' | 'audience' | 'issuer' | 'unsupported' | 'invalid'

/** Thrown when a JWT fails verification; `reason` says which check failed. */
export class JwtInvalidError extends ShoalError<'JWT_INVALID', { reason: JwtInvalidReason }> {
  static override readonly category = 'refused'

  constructor(reason: JwtInvalidReason, message: string, options?: { cause?: unknown }) {
    super('JWT_INVALID', `JWT rejected (${reason}): ${message}`, { reason }, options)
  }
}

/** Codes of {@link JweError}. */
export type JweErrorCode = 'JWE_NO_RECIPIENTS' | 'JWE_DECRYPT_FAILED'

/**
 * Thrown when a JWE cannot be made (no recipients) or this identity cannot decrypt it
 * (not a recipient, or the JWE was altered).
 */
export class JweError extends ShoalError<JweErrorCode> {
  static override readonly categories: Record<JweError['code'], ErrorCategory> = {
    JWE_NO_RECIPIENTS: 'usage',
    JWE_DECRYPT_FAILED: 'refused'
  }
}

/** Codes of {@link KeystoreError}. */
export type KeystoreErrorCode =
  | 'KEYSTORE_EXISTS'
  | 'KEYSTORE_NOT_FOUND'
  | 'KEYSTORE_CORRUPT'
  | 'KEYSTORE_INSECURE_PERMISSIONS'
  | 'KEYSTORE_INVALID_OPTIONS'
  | 'PASSPHRASE_REQUIRED'
  | 'WRONG_PASSPHRASE'

/**
 * Thrown when the keystore cannot be created or loaded. `fields.path` names the key file.
 * - `KEYSTORE_EXISTS`: init found a key file and `force` was not set.
 * - `KEYSTORE_NOT_FOUND`: no key file.
 * - `KEYSTORE_CORRUPT`: the file is truncated, unparseable, or its did does not match its key.
 * - `KEYSTORE_INSECURE_PERMISSIONS`: the key file is readable or writable by group or others.
 * - `KEYSTORE_INVALID_OPTIONS`: bad init options (empty passphrase, scrypt cost out of bounds).
 * - `PASSPHRASE_REQUIRED`: the key is sealed and no passphrase was given.
 * - `WRONG_PASSPHRASE`: the passphrase does not open the key.
 */
export class KeystoreError extends ShoalError<KeystoreErrorCode, { path: string } & Record<string, unknown>> {
  static override readonly categories: Record<KeystoreError['code'], ErrorCategory> = {
    KEYSTORE_EXISTS: 'refused',
    KEYSTORE_NOT_FOUND: 'not-found',
    KEYSTORE_CORRUPT: 'internal',
    KEYSTORE_INSECURE_PERMISSIONS: 'refused',
    KEYSTORE_INVALID_OPTIONS: 'usage',
    PASSPHRASE_REQUIRED: 'refused',
    WRONG_PASSPHRASE: 'refused'
  }
}
