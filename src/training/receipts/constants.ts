/**
 * Constants of receipts, fraud proofs and the ledger. The formats are described in
 * docs/receipts.md.
 */

/** The `kind` claim of a contribution receipt (version 1). */
export const RECEIPT_KIND = 'shoal.receipt/1'

/** The `kind` claim of a fraud proof (version 1). */
export const FRAUD_PROOF_KIND = 'shoal.fraud/1'

/** Domain-separation tag of the re-execution sampling input. */
export const REEXEC_SAMPLING_TAG = 'shoal.reexec-sample/1'

/** Largest receipt JWT accepted, in bytes (a receipt travels inside gossip messages and fraud proofs). */
export const MAX_RECEIPT_BYTES = 32 * 1024

/** Largest fraud-proof JWT accepted, in bytes (it embeds one receipt). */
export const MAX_FRAUD_PROOF_BYTES = 64 * 1024

/** Most shards one receipt may name. */
export const MAX_SHARDS_PER_RECEIPT = 256

/** Longest identifier (job id, grant id, CID string) accepted in a claim. */
export const MAX_ID_CHARS = 256

/** Default credits per trained sample (an integer, so balances never drift). */
export const DEFAULT_CREDIT_PER_SAMPLE = 1

/**
 * What an unverifiable round earns in the ledger by default: nothing (it stays in the history
 * with 0 credits), so that claiming a GPU without publishing the result cannot earn credit
 * unchecked. A job may say otherwise (`unverifiable: credit | no-credit | exclude`).
 */
export const DEFAULT_UNVERIFIABLE_POLICY = 'no-credit' as const

/** Default fraction of receipts that `verifyAll` re-executes when it has a re-executor. */
export const DEFAULT_REEXEC_FRACTION = 0.1

/** Receipt hashes are CIDv1(raw, sha2-256) of the JWT bytes (`rawCid` in src/common). */
export { RAW_CODEC, SHA2_256_CODE } from '../../common/index.js'
