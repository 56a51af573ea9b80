/**
 * `verifyAll`: every level over a batch of receipts (any DIDs, any order), the receipts that
 * pass, and the DIDs to exclude.
 */
import type { Identity } from '../../identity/index.js'
import { logger } from '../../common/index.js'
import { analyseChain } from './chain.js'
import type { ChainEntry, ChainEvidence } from './chain.js'
import { DEFAULT_REEXEC_FRACTION } from './constants.js'
import { checkFraudProof, issueFraudProof } from './fraud.js'
import type { FraudProofCheck } from './fraud.js'
import { receiptHash, verifySignature } from './receipt.js'
import type { GrantLookup, Reexecutor, VerifyFailure } from './types.js'
import { reexecutionConvicts, shouldReexecute, verifyLineage, verifyReexecution } from './verify.js'

const log = logger('shoal:training:receipts')

/** Options of {@link verifyAll}. */
export interface VerifyAllOptions {
  grants: GrantLookup
  /** Re-runs rounds; without it the `reexecution` level is skipped and external proofs cannot be checked. */
  reexec?: Reexecutor
  /** Fraction of receipts to re-execute (default {@link DEFAULT_REEXEC_FRACTION}); 1 = all. */
  fraction?: number
  /**
   * The verifying node: its key makes the sampling unpredictable (see `shouldReexecute`) and
   * signs a fraud proof for each mismatch found. Without it sampling uses the DID `verifierDid`.
   */
  verifier?: Identity
  /** Sampling DID when no `verifier` is given (default ''). */
  verifierDid?: string
  /** Fraud proofs received from other verifiers; each is re-checked (needs `reexec`). */
  proofs?: readonly string[]
  /** The current time, Unix seconds (default the clock): receipts' and proofs' `iat` are checked against it, and proofs signed here carry it as `iat`. */
  now?: number
  signal?: AbortSignal
}

/** The verdict on one receipt. */
export interface ReceiptVerdict {
  /** `receiptHash` of the receipt. */
  receipt: string
  jwt: string
  /** The issuer, when the receipt decoded. */
  did?: string
  /** True when it passed every level that ran. */
  ok: boolean
  /** The first level it failed. */
  failure?: VerifyFailure
  /** Whether it was re-executed. */
  reexecuted: boolean
}

/** Why a DID is excluded. */
export interface Exclusion {
  did: string
  reason: 'equivocation' | 'replay' | 'fraud' | 'lineage'
  /** The receipt hash concerned. */
  receipt: string
}

/** The result of {@link verifyAll}. */
export interface VerifyAllResult {
  /** One verdict per distinct receipt, ordered by receipt hash. */
  results: ReceiptVerdict[]
  /** JWTs of the receipts with `ok: true` (including those of excluded DIDs: pass `excluded` as `forfeited`). */
  verified: string[]
  /** DIDs whose updates and credits are excluded. */
  excluded: Set<string>
  /** Why each DID was excluded (one entry per finding). */
  exclusions: Exclusion[]
  /** Equivocation and replay evidence found. */
  evidence: ChainEvidence[]
  /** Fraud proofs: those `verifier` signed for mismatches found here, and external ones that checked out. */
  fraudProofs: string[]
  /** The outcome of checking each external proof. */
  proofChecks: Array<{ proof: string; result: FraudProofCheck }>
}

/**
 * Runs the levels over a batch of receipts: identical copies are merged (gossip delivers
 * duplicates; a copy is not misbehaviour); then per receipt `signature`; per DID `chain`;
 * per receipt `lineage`; and `reexecution` for the sampled ones. A DID is excluded for
 * equivocation or replay evidence, a lineage failure, a re-execution mismatch found here, or
 * a valid external fraud proof (a failed grant lookup or re-executor only fails the receipt).
 * Never throws (except on abort).
 */
export async function verifyAll(
  receipts: readonly string[],
  opts: VerifyAllOptions
): Promise<VerifyAllResult> {
  const fraction = opts.fraction ?? DEFAULT_REEXEC_FRACTION
  const timeOpts = opts.now === undefined ? {} : { now: opts.now }
  const signalOpts = opts.signal === undefined ? {} : { signal: opts.signal }
  const verdicts = new Map<string, ReceiptVerdict>()
  for (const jwt of receipts) {
    if (typeof jwt !== 'string') continue
    const hash = receiptHash(jwt)
    if (!verdicts.has(hash)) verdicts.set(hash, { receipt: hash, jwt, ok: true, reexecuted: false })
  }
  const results = [...verdicts.values()].sort((a, b) => (a.receipt < b.receipt ? -1 : 1))
  const excluded = new Set<string>()
  const exclusions: Exclusion[] = []
  const exclude = (did: string, reason: Exclusion['reason'], receipt: string): void => {
    excluded.add(did)
    exclusions.push({ did, reason, receipt })
  }
  const failWith = (v: ReceiptVerdict, failure: VerifyFailure): void => {
    if (!v.ok) return
    v.ok = false
    v.failure = failure
  }

  // Signature.
  const byDid = new Map<string, ChainEntry[]>()
  await Promise.all(
    results.map(async (v) => {
      const r = await verifySignature(v.jwt, timeOpts)
      if (!r.ok) return failWith(v, r)
      v.did = r.claims.iss
      const list = byDid.get(r.claims.iss)
      const entry = { jwt: v.jwt, hash: r.hash, claims: r.claims }
      if (list === undefined) byDid.set(r.claims.iss, [entry])
      else list.push(entry)
    })
  )
  opts.signal?.throwIfAborted()

  // Chain, per DID.
  const evidence: ChainEvidence[] = []
  for (const did of [...byDid.keys()].sort()) {
    const analysis = analyseChain(byDid.get(did)!)
    for (const i of analysis.issues) {
      const v = verdicts.get(i.receipt)
      if (v !== undefined)
        failWith(v, { ok: false, level: 'chain', reason: i.reason, detail: i.detail, receipt: i.receipt })
    }
    for (const e of analysis.evidence) {
      evidence.push(e)
      exclude(did, e.kind, receiptHash(e.receipts[0]))
    }
  }

  // Lineage.
  await Promise.all(
    results
      .filter((v) => v.ok)
      .map(async (v) => {
        const r = await verifyLineage(v.jwt, opts.grants, signalOpts)
        if (r.ok) return
        failWith(v, r)
        // A lookup that failed says nothing about the trainer: the receipt waits, the DID stays.
        if (r.reason !== 'grant-lookup-failed') exclude(v.did!, 'lineage', v.receipt)
      })
  )
  opts.signal?.throwIfAborted()

  // Re-execution of a sample, one at a time (each is a training run).
  const fraudProofs: string[] = []
  if (opts.reexec !== undefined) {
    const chooser = opts.verifier ?? opts.verifierDid ?? ''
    for (const v of results) {
      if (!v.ok || !shouldReexecute(v.receipt, chooser, fraction)) continue
      opts.signal?.throwIfAborted()
      v.reexecuted = true
      const r = await verifyReexecution(v.jwt, opts.reexec, signalOpts)
      if (r.ok) continue
      if (r.reason === 'unverifiable') {
        // Nothing to re-run: the round stays verified at the other levels, and the ledger's
        // `unverifiable` policy decides what it earns.
        v.reexecuted = false
        continue
      }
      failWith(v, r)
      if (!reexecutionConvicts(r.reason)) continue
      exclude(v.did!, 'fraud', v.receipt)
      log.warn({ did: v.did, receipt: v.receipt, reason: r.reason }, 'receipt failed re-execution')
      if (opts.verifier !== undefined && r.claimedHash !== undefined && r.expectedHash !== undefined) {
        fraudProofs.push(
          await issueFraudProof(
            opts.verifier,
            {
              receipt: v.jwt,
              claimedHash: r.claimedHash,
              expectedHash: r.expectedHash,
              ...(r.reason === 'samples-mismatch' && r.expectedSamples !== undefined
                ? { expectedSamples: r.expectedSamples, claimedSamples: r.claimedSamples }
                : {})
            },
            opts.now === undefined ? {} : { iat: opts.now }
          )
        )
      }
    }
  }

  // Fraud proofs from other verifiers.
  const proofChecks: Array<{ proof: string; result: FraudProofCheck }> = []
  for (const proof of opts.proofs ?? []) {
    opts.signal?.throwIfAborted()
    const result: FraudProofCheck =
      opts.reexec === undefined
        ? {
            ok: false,
            level: 'fraud-proof',
            reason: 'reexecution-error',
            detail: 'no re-executor to check it with'
          }
        : await checkFraudProof(proof, opts.reexec, { ...timeOpts, ...signalOpts })
    proofChecks.push({ proof, result })
    if (!result.ok) continue
    fraudProofs.push(proof)
    exclude(result.offender, 'fraud', result.receipt)
    const v = verdicts.get(result.receipt)
    if (v !== undefined) {
      failWith(v, {
        ok: false,
        level: 'reexecution',
        reason: 'fraud-proof',
        detail: `convicted by a fraud proof signed by ${result.verifier}`,
        receipt: result.receipt,
        claimedHash: result.claimedHash,
        expectedHash: result.expectedHash
      })
    }
  }

  return {
    results,
    verified: results.filter((v) => v.ok).map((v) => v.jwt),
    excluded,
    exclusions,
    evidence,
    fraudProofs,
    proofChecks
  }
}
