/**
 * The claims of a receipt and of a fraud proof (zod schemas), and the small helpers that
 * read them. Field meanings are documented in docs/receipts.md.
 */
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { CidString, DidKeyString, isCid } from '../../common/index.js'
import {
  FRAUD_PROOF_KIND,
  MAX_ID_CHARS,
  MAX_RECEIPT_BYTES,
  MAX_SHARDS_PER_RECEIPT,
  RAW_CODEC,
  RECEIPT_KIND,
  SHA2_256_CODE
} from './constants.js'

export { isCid }

/**
 * The sha-256 digest (lowercase hex) inside a CIDv1 with the `raw` codec and a sha2-256
 * multihash, or undefined for any other CID (a UnixFS/dag-pb CID is not the hash of the bytes).
 */
export function rawSha256OfCid(cid: string): string | undefined {
  try {
    const parsed = CID.parse(cid)
    if (parsed.version !== 1 || parsed.code !== RAW_CODEC || parsed.multihash.code !== SHA2_256_CODE) {
      return undefined
    }
    return Buffer.from(parsed.multihash.digest).toString('hex')
  } catch {
    return undefined
  }
}

const cidString = CidString
const identifier = z.string().min(1).max(MAX_ID_CHARS)
const didKey = DidKeyString
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { message: 'not 64 lowercase hex digits (sha-256)' })
const count = z.int().nonnegative()
const finite = z.number()

/** Hyper-parameters of the round; unknown keys are kept (signed, but not interpreted). */
export const HyperSchema = z.looseObject({
  /** Learning rate (the peak, when `schedule` is given: the round's rates follow from it). */
  lr: finite.positive(),
  /** Examples per step. */
  batchSize: z.int().positive(),
  /** Local steps the job asked for in this round (the node's `steps` claim may not exceed it). */
  steps: z.int().positive(),
  /** Optimizer name, e.g. `sgd`, `adam`. */
  optimizer: z.string().min(1).max(64)
})

/** One shard trained on, and the grant that allowed it. */
export const ShardClaimSchema = z.object({
  /** CID of the shard (its encrypted object). */
  cid: cidString,
  /** The grant's id (or CID) that gives the issuer access to this shard for this job. */
  grant: identifier
})

/**
 * Claims of a contribution receipt (the JWT payload). `iss` (the trainer's did:key) and
 * `iat` (Unix seconds) are the registered JWT claims; the rest are Shoal's.
 */
export const ReceiptClaimsSchema = z
  .object({
    /** Always {@link RECEIPT_KIND}; keeps receipts and other signed documents apart. */
    kind: z.literal(RECEIPT_KIND),
    iss: didKey,
    iat: z.int().nonnegative(),
    /** The job's id (or CID). */
    job: identifier,
    /** The gossip-averaging round this receipt is for (from 0). One receipt per (issuer, job, round). */
    round: count,
    /** CID of the weights the round started from. */
    baseCid: cidString,
    shards: z.array(ShardClaimSchema).min(1).max(MAX_SHARDS_PER_RECEIPT),
    hyper: HyperSchema,
    /** Seed of the round's data order (uint32). */
    seed: z.int().min(0).max(0xffffffff),
    /** Examples processed, each counted every time it is seen: `steps × min(hyper.batchSize, N)`. */
    samples: count,
    /** Optimizer steps actually run (≤ `hyper.steps`). */
    steps: count,
    /** CID of the resulting weights as stored (any codec). */
    resultCid: cidString.optional(),
    /** Lowercase hex sha-256 of the resulting weights in the SHOALWT1 encoding (`encodeWeights`). */
    resultHash: sha256Hex.optional(),
    /** Mean training loss of the first step (on the base weights). */
    lossBefore: finite,
    /** Mean training loss of the last step. */
    lossAfter: finite,
    /**
     * Execution provider the round ran on: `cpu` (deterministic, one thread: checked by hash),
     * `cpu-parallel`, `cuda`, `webgpu` (checked within a tolerance, see `verifiability`).
     */
    ep: z.string().min(1).max(32),
    /** Intra-op threads of a non-deterministic CPU round (informational; the bound does not depend on it). */
    threads: z.int().min(1).max(4096).optional(),
    /** `receiptHash` of this issuer's previous receipt, or null for its first. */
    prev: cidString.nullable(),
    /**
     * Grants (ids) whose data this round's lineage excludes: revoked or expired grants the
     * swarm unlearned by rolling back and retraining (sorted, no duplicates). A retrained
     * round carries the exclusions, so its receipt differs from the round's first one.
     */
    excluded: z.array(identifier).min(1).max(MAX_SHARDS_PER_RECEIPT).optional()
  })
  .superRefine((c, ctx) => {
    if (c.excluded !== undefined && c.excluded.some((g, i) => i > 0 && g <= c.excluded![i - 1]!)) {
      ctx.addIssue({
        code: 'custom',
        path: ['excluded'],
        message: 'excluded grants must be sorted and distinct'
      })
    }
    if (c.resultCid === undefined && c.resultHash === undefined) {
      ctx.addIssue({ code: 'custom', path: ['resultHash'], message: 'resultHash or resultCid is required' })
    }
    if (c.resultCid !== undefined && c.resultHash !== undefined) {
      const fromCid = rawSha256OfCid(c.resultCid)
      if (fromCid !== undefined && fromCid !== c.resultHash) {
        ctx.addIssue({
          code: 'custom',
          path: ['resultCid'],
          message: 'resultCid is a raw sha-256 CID whose digest differs from resultHash'
        })
      }
    }
  })

/** The claims of a receipt. */
export type ReceiptClaims = z.infer<typeof ReceiptClaimsSchema>

/** What a trainer supplies to `issueReceipt`: the claims less `kind`, `iss` and `prev`; `iat` defaults to now. */
export type ReceiptInput = Omit<ReceiptClaims, 'kind' | 'iss' | 'iat' | 'prev'> & { iat?: number }

/** Claims of a fraud proof: the verifier (`iss`) says that re-running `receipt` gave `expectedHash`. */
export const FraudProofClaimsSchema = z.object({
  kind: z.literal(FRAUD_PROOF_KIND),
  /** The verifier's did:key. */
  iss: didKey,
  iat: z.int().nonnegative(),
  /** The accused receipt, whole (a JWT signed by the offender). */
  receipt: z.string().min(1).max(MAX_RECEIPT_BYTES),
  /** `receiptHash(receipt)`. */
  receiptHash: cidString,
  /** The receipt's issuer. */
  offender: didKey,
  job: identifier,
  round: count,
  /** The result hash the receipt claims. */
  claimedHash: sha256Hex,
  /** The result hash the verifier's deterministic re-run produced. */
  expectedHash: sha256Hex,
  /** The samples the receipt claims (present when the re-executor counted samples). */
  claimedSamples: count.optional(),
  /** The samples the re-run counted. */
  expectedSamples: count.optional()
})

/** The claims of a fraud proof. */
export type FraudProofClaims = z.infer<typeof FraudProofClaimsSchema>

/**
 * The result hash a receipt claims: `resultHash`, else the digest of a raw sha-256
 * `resultCid`, else undefined (a UnixFS CID cannot be compared with a re-run's hash).
 */
export function claimedResultHash(claims: ReceiptClaims): string | undefined {
  if (claims.resultHash !== undefined) return claims.resultHash
  return claims.resultCid === undefined ? undefined : rawSha256OfCid(claims.resultCid)
}

/** Schema issues as `path: message` strings. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
}

/**
 * The lineage key of a receipt: its excluded grants, joined (empty for none). Receipts of one
 * issuer for one (job, round) are a replay unless their keys differ (a retrain after unlearning).
 */
export function exclusionKey(claims: Pick<ReceiptClaims, 'excluded'>): string {
  return (claims.excluded ?? []).join(',')
}
