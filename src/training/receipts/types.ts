/**
 * Result objects of the verification levels, and the interfaces the storage layer (grants)
 * and the training runtime (re-execution) implement.
 */
import type { GrantInfo as StoredGrantInfo } from '../../storage/index.js'
import type { ReceiptClaims } from './claims.js'
import type { UpdateComparison } from './tolerance.js'

/** The levels of receipt verification, in the order `verifyAll` runs them. */
export type VerifyLevel = 'signature' | 'chain' | 'lineage' | 'reexecution'

/** Why a receipt failed at the `signature` level. */
export type SignatureReason =
  | 'malformed' // not a JWT in canonical base64url, or payload not a JSON object
  | 'too-large' // beyond MAX_RECEIPT_BYTES
  | 'bad-signature' // the EdDSA signature does not verify for the issuer's key
  | 'issuer' // iss missing or not an Ed25519 did:key
  | 'unsupported-alg' // header alg is not EdDSA
  | 'not-yet-valid' // iat (or nbf) in the future beyond the allowed skew
  | 'expired' // has an exp that has passed
  | 'schema' // claims outside ReceiptClaimsSchema
  | 'invalid' // any other JWT failure

/** Why a receipt failed at the `chain` level. */
export type ChainReason =
  | 'invalid-receipt' // did not pass the signature level, so it cannot be placed in a chain
  | 'mixed-issuers' // the list given to verifyChain holds receipts of several DIDs
  | 'gap' // its `prev` (or an ancestor's) is not among the receipts
  | 'equivocation' // another receipt of the same DID has the same `prev` (a fork)
  | 'replay' // the same receipt twice, or a second receipt for the same (job, round)
  | 'iat-order' // issued before its `prev`

/** Why a receipt failed at the `lineage` level. */
export type LineageReason =
  | 'malformed'
  | 'grant-not-found'
  | 'grant-lookup-failed' // the GrantLookup threw
  | 'grant-mismatch' // the lookup returned a grant with another id
  | 'wrong-grantee' // the grant is for another DID
  | 'wrong-purpose' // the grant is for another job (and not 'any')
  | 'shard-not-granted' // the grant does not list the shard
  | 'grant-not-yet-valid' // the receipt predates the grant
  | 'grant-expired' // iat ≥ grant exp
  | 'grant-revoked' // revoked at or before iat
  | 'duplicate-shard' // a shard listed twice
  | 'steps-exceeded' // steps > hyper.steps
  | 'samples-mismatch' // samples ≠ steps × min(batchSize, N) (N known), or > steps × batchSize
  | 'bogus-exclusion' // `excluded` names a grant that is unknown, or was not revoked or expired at iat

/** Why a receipt failed at the `reexecution` level. */
export type ReexecutionReason =
  | 'malformed'
  | 'no-result-hash' // neither resultHash nor a raw sha-256 resultCid to compare with
  | 'reexecution-error' // the re-executor failed (says nothing about the receipt)
  | 'result-mismatch' // the re-run's weights hash differs from the claim (exact), or the weights at resultCid are not the claimed ones
  | 'outside-tolerance' // a non-bit-exact round whose weights are too far from the deterministic re-run's
  | 'unverifiable' // the receipt cannot be checked by re-execution (see `verifiability`): no verdict
  | 'result-unavailable' // the claimed weights (resultCid) could not be fetched: no verdict
  | 'inconclusive' // a non-bit-exact round too sensitive to rounding to judge: no verdict
  | 'samples-mismatch' // the re-run counted other samples than claimed
  | 'fraud-proof' // a valid fraud proof from another verifier convicts it

/** Why a fraud proof was rejected by `checkFraudProof`. */
export type FraudProofReason =
  | 'malformed'
  | 'too-large'
  | 'bad-signature'
  | 'issuer'
  | 'schema'
  | 'invalid'
  | 'receipt-invalid' // the embedded receipt does not pass the signature level
  | 'receipt-hash' // receiptHash is not the embedded receipt's hash
  | 'offender' // offender/job/round are not the receipt's
  | 'claimed-hash' // claimedHash/claimedSamples are not what the receipt claims
  | 'reexecution-error' // the checker's re-executor failed: no verdict
  | 'expected-hash-wrong' // the checker's re-run disagrees with the proof's expectedHash/expectedSamples
  | 'no-mismatch' // the checker's re-run matches the receipt (or is within its tolerance): a false accusation
  | 'unverifiable' // the receipt's round cannot be checked by re-execution (see `verifiability`)
  | 'inconclusive' // the round is too sensitive to rounding for the tolerance to decide
  | 'untrusted' // checkAttestedFraudProof: the signer is no authority on the data, and no re-run was possible

interface FailureBase {
  ok: false
  detail: string
  /** `receiptHash` of the receipt concerned, when it could be computed. */
  receipt?: string
}

export interface SignatureFailure extends FailureBase {
  level: 'signature'
  reason: SignatureReason
}
export interface ChainFailure extends FailureBase {
  level: 'chain'
  reason: ChainReason
}
export interface LineageFailure extends FailureBase {
  level: 'lineage'
  reason: LineageReason
  /** The shard and grant concerned, when one is. */
  shard?: string
  grant?: string
}
export interface ReexecutionFailure extends FailureBase {
  level: 'reexecution'
  reason: ReexecutionReason
  claimedHash?: string
  expectedHash?: string
  claimedSamples?: number
  expectedSamples?: number
  /** For `outside-tolerance`: how the claimed update compares with the re-run's. */
  comparison?: UpdateComparison
}
export interface FraudProofFailure extends Omit<FailureBase, 'receipt'> {
  level: 'fraud-proof'
  reason: FraudProofReason
}

/** A failed receipt check: the level, a stable reason to match on, and a human detail. */
export type VerifyFailure = SignatureFailure | ChainFailure | LineageFailure | ReexecutionFailure

/**
 * What the lineage level reads of a grant: the storage layer's {@link StoredGrantInfo} (the
 * signed grant and its revocation), with `iat` optional (a receipt issued before a known `iat`
 * is not covered) and without the privacy budget, which the receipt checks do not use.
 */
export type GrantInfo = Omit<StoredGrantInfo, 'iat' | 'privacy'> & Partial<Pick<StoredGrantInfo, 'iat'>>

/** Finds grants by id; the storage layer implements it over signed grants and revocations. */
export interface GrantLookup {
  find(grantId: string): Promise<GrantInfo | undefined>
}

/** The outcome of a deterministic re-run of a receipt's round. */
export interface ReexecutionResult {
  /** Lowercase hex sha-256 of the resulting weights in the SHOALWT1 encoding. */
  resultHash: string
  /** Samples the re-run processed; compared with the claim when given. */
  samples?: number
  /** Time the re-run spent in training steps (ms), when measured: its compute, without loading inputs. */
  trainMs?: number
  /** The re-run's weights and its base, when asked for (`keepWeights`): for a tolerance check. */
  weights?: ReadonlyMap<string, Float32Array>
  base?: ReadonlyMap<string, Float32Array>
}

/** The weights a receipt's `resultCid` names, and their SHOALWT1 hash as the job's model orders them. */
export interface ClaimedResult {
  weights: ReadonlyMap<string, Float32Array>
  resultHash: string
}

/**
 * Re-runs a receipt's round: load `baseCid` and the shards, train `steps` steps with
 * `hyper` and `seed` in deterministic CPU mode (one thread), hash the weights. The training
 * runtime provides the real one.
 */
export interface Reexecutor {
  /**
   * Re-run the round deterministically. With `keepWeights`, also return the re-run's weights
   * and base (rounds of other execution providers are then re-run too, for a tolerance check);
   * with `perturbBase` (a variant number), start from `perturbWeights(base, variant)` (the
   * sensitivity stage).
   */
  run(
    claims: ReceiptClaims,
    opts?: { signal?: AbortSignal; keepWeights?: boolean; perturbBase?: number }
  ): Promise<ReexecutionResult>
  /**
   * Fetch the weights a receipt's `resultCid` names (needed to check rounds within a
   * tolerance; a re-executor without it can check bit-exact rounds only).
   */
  result?(claims: ReceiptClaims, opts?: { signal?: AbortSignal }): Promise<ClaimedResult>
}
