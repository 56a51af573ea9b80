/** Defaults and format constants of the storage layer. */

/** Plaintext bytes per encrypted chunk (1 MiB). Each sealed chunk is this plus the AEAD tag. */
export const DEFAULT_CHUNK_SIZE = 1_048_576

/** Smallest and largest chunk sizes accepted on write and on read. */
export const MIN_CHUNK_SIZE = 1_024
export const MAX_CHUNK_SIZE = 4_194_304

/** The AEAD used for new objects. */
export const DEFAULT_ALGORITHM = 'AES-256-GCM'

/** Bytes of a content key. */
export const CONTENT_KEY_BYTES = 32

/** Bytes of an AEAD authentication tag (both algorithms). */
export const TAG_BYTES = 16

/** Bytes of an AEAD nonce (both algorithms). */
export const NONCE_BYTES = 12

/** Version of the envelope format and the chunk construction. */
export const ENVELOPE_VERSION = 1

/** The `type` field that marks a dag-cbor block as a Shoal envelope. */
export const ENVELOPE_TYPE = 'shoal/encrypted-object'

/** Largest envelope block we will decode (it holds a JWE with a few recipients). */
export const MAX_ENVELOPE_BYTES = 65_536

/**
 * How long `get`/`stat`/`contentKey` wait for the root block (envelope or UnixFS root) when it
 * is not in the local blockstore and the caller gave no signal, before reporting NOT_FOUND.
 */
export const ROOT_FETCH_TIMEOUT_MS = 30_000

/** Pin metadata key that records what kind of object a pin holds. */
export const PIN_KIND_KEY = 'shoal'

/**
 * Objects of at least this many bytes (and streams of unknown length) are encrypted and
 * decrypted in ContentStore's worker thread; smaller ones on the calling thread.
 */
export const WORKER_MIN_BYTES = 4_194_304
