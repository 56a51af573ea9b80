/**
 * Formats, limits and defaults of the grants module. The documents are described in
 * docs/grants.md.
 */

/** `typ` claim of a grant JWT. */
export const GRANT_TYPE = 'shoal/grant'

/** `typ` claim of a revocation JWT. */
export const REVOCATION_TYPE = 'shoal/revocation'

/** The purpose that lets a grant be used for every job. */
export const PURPOSE_ANY = 'any'

/** A purpose: a job id (as in topic names) or {@link PURPOSE_ANY}. */
export const PURPOSE_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Largest grant or revocation JWT, in characters. A consent gossip message carries the JWT
 * inline inside an envelope with the author's membership credential (at most 4 KiB), and the
 * consent topic accepts messages up to 32 KiB: 24 KiB leaves room for both.
 */
export const MAX_DOCUMENT_BYTES = 24_576

/**
 * Most shards one grant may cover (each costs about 140 characters of JWT: its CID and its
 * wrapped key). A larger dataset is granted with several grants.
 */
export const MAX_GRANT_SHARDS = 128

/** Longest `reason` of a revocation. */
export const MAX_REASON_LENGTH = 512

/** Bytes of one shard content key inside a grant's JWE (the content store's key size). */
export const GRANT_KEY_BYTES = 32

/**
 * Revocations received before their grant are kept (signature checked) until the grant
 * arrives; at most this many, so that a stream of revocations for unknown grants cannot
 * fill the disk.
 */
export const MAX_PENDING_REVOCATIONS = 1_024
