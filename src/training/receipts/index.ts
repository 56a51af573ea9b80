/**
 * Contribution receipts and the credit ledger.
 *
 * After each local round a trainer signs a receipt: a did-jwt JWT (EdDSA, `iss` = its
 * did:key) naming the job, round, base weights, shards and the grants that allowed them,
 * hyper-parameters, seed, samples, steps, the resulting weights' hash, losses, execution
 * provider and the hash of its previous receipt (a per-DID hash chain). Verification runs in
 * levels — `signature`, `chain`, `lineage`, `reexecution` — each returning
 * `{ ok: true } | { ok: false, level, reason, detail }`. A re-execution mismatch yields a
 * signed fraud proof anyone can re-check; forks and replays yield evidence made of the
 * offender's own signed receipts. The ledger is a pure function of verified receipts.
 * See docs/receipts.md.
 *
 * @example
 * ```ts
 * import { Identity, generateKeypair } from '../../identity/index.js'
 * import { issueReceipt, verifyAll, computeLedger } from './index.js'
 * import type { GrantLookup } from './index.js'
 *
 * const me = Identity.fromKeypair(generateKeypair())
 * const shard = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
 * const receipt = await issueReceipt(
 *   me,
 *   {
 *     job: 'job-1',
 *     round: 0,
 *     baseCid: shard,
 *     shards: [{ cid: shard, grant: 'grant-1' }],
 *     hyper: { lr: 0.05, batchSize: 32, steps: 10, optimizer: 'sgd' },
 *     seed: 1,
 *     samples: 320,
 *     steps: 10,
 *     resultHash: '0'.repeat(64),
 *     lossBefore: 2.3,
 *     lossAfter: 1.9,
 *     ep: 'cpu'
 *   },
 *   null
 * )
 * const grants: GrantLookup = {
 *   find: async (id) =>
 *     id === 'grant-1'
 *       ? { id, dataset: 'd', shards: [shard], grantee: me.did, purpose: 'any', owner: me.did }
 *       : undefined
 * }
 * const { verified, excluded } = await verifyAll([receipt], { grants })
 * const { balances } = computeLedger(verified, { forfeited: excluded }) // { [me.did]: 320 }
 * ```
 */
export {
  ReceiptClaimsSchema,
  FraudProofClaimsSchema,
  HyperSchema,
  ShardClaimSchema,
  claimedResultHash,
  exclusionKey,
  rawSha256OfCid,
  isCid,
  type ReceiptClaims,
  type ReceiptInput,
  type FraudProofClaims
} from './claims.js'
export {
  issueReceipt,
  decodeReceipt,
  receiptHash,
  verifySignature,
  splitJwt,
  type DecodedReceipt,
  type SignatureResult,
  type VerifyTimeOptions,
  type JwtParts
} from './receipt.js'
export {
  verifyChain,
  analyseChain,
  checkChainEvidence,
  type ChainEntry,
  type ChainEvidence,
  type ChainIssue,
  type ChainResult,
  type ChainAnalysis,
  type EvidenceCheck
} from './chain.js'
export {
  verifyLineage,
  verifyReexecution,
  reexecutionConvicts,
  checkWithinTolerance,
  shouldReexecute,
  expectedSamples,
  type LineageResult,
  type ReexecutionCheck,
  type ToleranceCheck
} from './verify.js'
export {
  EXACT_EP,
  TOLERANCE_BOUNDS,
  toleranceFor,
  verifiability,
  compareUpdates,
  withinTolerance,
  acceptedWithin,
  judgeTolerance,
  type ToleranceVerdict,
  adaptiveLimit,
  perturbWeights,
  SENSITIVITY_PROBES,
  describeComparison,
  type ToleranceBound,
  type Verifiability,
  type UpdateComparison,
  type WeightsView
} from './tolerance.js'
export {
  issueFraudProof,
  checkFraudProof,
  checkAttestedFraudProof,
  decodeFraudProof,
  type FraudProofInput,
  type FraudProofCheck
} from './fraud.js'
export {
  verifyAll,
  type VerifyAllOptions,
  type VerifyAllResult,
  type ReceiptVerdict,
  type Exclusion
} from './verify-all.js'
export { resultHash } from './result.js'
export {
  computeLedger,
  ledgerHash,
  UNVERIFIABLE_POLICIES,
  type Ledger,
  type LedgerEntry,
  type LedgerOptions,
  type UnverifiablePolicy
} from './ledger.js'
export { DEFAULT_UNVERIFIABLE_POLICY } from './constants.js'
export {
  dataRewards,
  totalBalances,
  trainerCredits,
  type DataRewards,
  type DataRewardEntry,
  type RewardOptions
} from './rewards.js'
export type {
  VerifyLevel,
  VerifyFailure,
  SignatureFailure,
  SignatureReason,
  ChainFailure,
  ChainReason,
  LineageFailure,
  LineageReason,
  ReexecutionFailure,
  ReexecutionReason,
  FraudProofFailure,
  FraudProofReason,
  GrantInfo,
  GrantLookup,
  Reexecutor,
  ReexecutionResult,
  ClaimedResult
} from './types.js'
export {
  ReceiptClaimsError,
  ReceiptMalformedError,
  FraudProofInputError,
  LedgerInputError
} from './errors.js'
export * as receiptConstants from './constants.js'
