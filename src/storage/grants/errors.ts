import { ShoalError } from '../../common/index.js'

/** Codes of {@link GrantError}. */
export type GrantErrorCode =
  /** The document is not a valid grant (signature, schema, type, size, shards, keys). */
  | 'GRANT_INVALID'
  /** The grant is signed by someone other than the dataset's owner. */
  | 'GRANT_NOT_OWNER'
  /** The grant is addressed to another DID. */
  | 'GRANT_NOT_FOR_YOU'
  /** The grant's `exp` has passed (an expired grant counts as revoked). */
  | 'GRANT_EXPIRED'
  /** The owner revoked the grant. */
  | 'GRANT_REVOKED'
  /** No grant covers the shard for this purpose, or no such grant is known. */
  | 'GRANT_MISSING'
  /** The document is not a valid revocation of the grant it names. */
  | 'REVOCATION_INVALID'

/**
 * Facts of a grant failure. `grant` is the grant id whenever one grant is concerned (the
 * message names it as well); `reason` is a short stable word for GRANT_INVALID and
 * REVOCATION_INVALID (`signature`, `schema`, `type`, `too-large`, `dataset`, `shards`, `keys`,
 * `not-owner`, `wrong-grant`).
 */
export interface GrantErrorFields extends Record<string, unknown> {
  grant?: string
  reason?: string
  shard?: string
}

/**
 * Thrown when a grant or a revocation is refused, or when no usable grant gives access to a
 * shard: `GRANT_INVALID`, `GRANT_NOT_OWNER`, `GRANT_NOT_FOR_YOU`, `GRANT_EXPIRED`,
 * `GRANT_REVOKED`, `GRANT_MISSING`, `REVOCATION_INVALID`. Match on `code`.
 */
export class GrantError extends ShoalError<GrantErrorCode, GrantErrorFields> {
  static override readonly category = 'refused'
}

/** Thrown when a GrantStore is used before `start()` or after `stop()`. */
export class StoreClosedError extends ShoalError<'STORE_CLOSED'> {
  static override readonly category = 'refused'
}
