/**
 * Identifiers every layer validates the same way: CIDs and did:key DIDs, as zod schemas with
 * one set of limits and messages.
 */
import { CID } from 'multiformats/cid'
import { z } from 'zod'

/** Longest CID string accepted (a CIDv1 sha2-256 in base32 is 59 characters). */
export const MAX_CID_CHARS = 256
/** Longest DID accepted (an Ed25519 did:key is 56 characters). */
export const MAX_DID_CHARS = 128

/** True when `s` parses as a CID (CIDv0, or CIDv1 in base32 or base58btc). */
export function isCid(s: string): boolean {
  try {
    CID.parse(s)
    return true
  } catch {
    return false
  }
}

/** A CID as a string. */
export const CidString = z.string().max(MAX_CID_CHARS).refine(isCid, { message: 'not a CID' })

/** A did:key DID (base58btc multibase). */
export const DidKeyString = z
  .string()
  .max(MAX_DID_CHARS)
  .regex(/^did:key:z[1-9A-HJ-NP-Za-km-z]+$/, 'not a did:key')
