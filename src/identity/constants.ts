/**
 * Constants of the identity layer.
 *
 * did:key: https://w3c-ccg.github.io/did-method-key/ (multicodec table:
 * https://github.com/multiformats/multicodec/blob/master/table.csv).
 */

/** The `did:key` prefix. */
export const DID_KEY_PREFIX = 'did:key:'

/** Multicodec `ed25519-pub` (0xed; the unsigned varint `0xed 0x01` that makes did:keys start `z6Mk`). */
export const ED25519_PUB_MULTICODEC = 0xed
/** Multicodec `x25519-pub` (0xec; did:keys start `z6LS`). */
export const X25519_PUB_MULTICODEC = 0xec

/** Raw Ed25519 public key and seed length in bytes. */
export const ED25519_KEY_BYTES = 32
/** Raw Ed25519 signature length in bytes. */
export const ED25519_SIGNATURE_BYTES = 64

/** The key file inside a keystore directory. */
export const KEY_FILE_NAME = 'self.key'
/** Version of the key file format. */
export const KEY_FILE_VERSION = 1
/** Mode of the keystore directory. */
export const KEYSTORE_DIR_MODE = 0o700
/** Mode of the key file. */
export const KEY_FILE_MODE = 0o600

/**
 * Default scrypt cost for sealing a key file: N = 2^17, r = 8, p = 1 (about 128 MiB
 * and a fraction of a second), the figure OWASP recommends for scrypt.
 */
export const SCRYPT_DEFAULTS = { N: 2 ** 17, r: 8, p: 1 } as const
/** Bounds accepted for scrypt parameters, at init and when loading a file (guards against a hostile file). */
export const SCRYPT_BOUNDS = { minLogN: 10, maxLogN: 20, maxR: 32, maxP: 16, maxMemBytes: 1024 * 1024 * 1024 }
/** Salt length for scrypt, in bytes. */
export const SCRYPT_SALT_BYTES = 16
/** XChaCha20-Poly1305 nonce length, in bytes. */
export const XCHACHA_NONCE_BYTES = 24

/** Clock skew allowed when checking JWT `exp`/`nbf`/`iat`, in seconds (did-jwt's default). */
export const JWT_SKEW_SECONDS = 300
