/**
 * Fraud proofs: a verifier's signed statement that re-running a receipt's round gave
 * another result than the receipt claims. Anyone holding the data re-checks it with
 * {@link checkFraudProof}; a false accusation fails there.
 */
import { verifyJwt } from '../../identity/index.js'
import type { Identity } from '../../identity/index.js'
import { FraudProofClaimsSchema, claimedResultHash, describeIssues } from './claims.js'
import type { FraudProofClaims, ReceiptClaims } from './claims.js'
import { FRAUD_PROOF_KIND, MAX_FRAUD_PROOF_BYTES } from './constants.js'
import { FraudProofInputError, ReceiptMalformedError } from './errors.js'
import { decodeReceipt, signatureReasonOf, splitJwt, verifySignature } from './receipt.js'
import type { VerifyTimeOptions } from './receipt.js'
import type { FraudProofFailure, FraudProofReason, ReexecutionResult, Reexecutor } from './types.js'
import { verifiability } from './tolerance.js'
import { checkWithinTolerance } from './verify.js'

/** What a verifier accuses a receipt of. */
export interface FraudProofInput {
  /** The receipt (JWT) whose re-run differs. */
  receipt: string
  /** The weights hash the verifier's re-run produced. */
  expectedHash: string
  /** The weights hash the receipt claims. */
  claimedHash: string
  /** The samples the re-run counted, when the mismatch (also) concerns samples. */
  expectedSamples?: number
  /** The samples the receipt claims. */
  claimedSamples?: number
}

/**
 * Signs a fraud proof (did-jwt, EdDSA, `iss` = the verifier) that embeds the whole receipt,
 * so it can be re-checked with nothing else than the data to re-run it.
 *
 * @throws {FraudProofInputError} `FRAUD_PROOF_INVALID_INPUT` when the receipt does not decode,
 *   the claimed values are not the receipt's, or nothing differs.
 */
export async function issueFraudProof(
  verifier: Identity,
  input: FraudProofInput,
  opts: { iat?: number } = {}
): Promise<string> {
  let claims: ReceiptClaims
  let hash: string
  try {
    const decoded = decodeReceipt(input.receipt)
    claims = decoded.claims
    hash = decoded.hash
  } catch (err) {
    throw new FraudProofInputError(`the accused receipt does not decode: ${(err as Error).message}`, {
      reason: 'receipt'
    })
  }
  const claimed = claimedResultHash(claims)
  if (input.claimedHash !== claimed) {
    throw new FraudProofInputError(
      `claimedHash ${input.claimedHash} is not the receipt's ${String(claimed)}`,
      {
        reason: 'claimed-hash'
      }
    )
  }
  if (input.claimedSamples !== undefined && input.claimedSamples !== claims.samples) {
    throw new FraudProofInputError(
      `claimedSamples ${input.claimedSamples} is not the receipt's ${claims.samples}`,
      {
        reason: 'claimed-samples'
      }
    )
  }
  const samplesDiffer = input.expectedSamples !== undefined && input.expectedSamples !== claims.samples
  if (input.expectedHash === input.claimedHash && !samplesDiffer) {
    throw new FraudProofInputError('the expected result equals the claimed one: nothing to prove', {
      reason: 'no-mismatch'
    })
  }
  const payload: FraudProofClaims = {
    kind: FRAUD_PROOF_KIND,
    iss: verifier.did,
    iat: opts.iat ?? Math.floor(Date.now() / 1000),
    receipt: input.receipt,
    receiptHash: hash,
    offender: claims.iss,
    job: claims.job,
    round: claims.round,
    claimedHash: input.claimedHash,
    expectedHash: input.expectedHash,
    ...(input.expectedSamples === undefined
      ? {}
      : { claimedSamples: claims.samples, expectedSamples: input.expectedSamples })
  }
  const parsed = FraudProofClaimsSchema.safeParse(payload)
  if (!parsed.success) {
    throw new FraudProofInputError(`invalid fraud proof: ${describeIssues(parsed.error).join('; ')}`, {
      reason: 'schema'
    })
  }
  const { iss: _iss, ...rest } = parsed.data
  return verifier.signJwt(rest)
}

/**
 * Decodes a fraud proof's claims without verifying anything but their shape.
 *
 * @throws {ReceiptMalformedError} `RECEIPT_MALFORMED` when it is not a fraud proof.
 */
export function decodeFraudProof(proof: string): FraudProofClaims {
  const { payload } = splitJwt(proof, MAX_FRAUD_PROOF_BYTES)
  const parsed = FraudProofClaimsSchema.safeParse(payload)
  if (!parsed.success) {
    const issues = describeIssues(parsed.error)
    throw new ReceiptMalformedError(`not a fraud proof: ${issues.join('; ')}`, { reason: 'schema', issues })
  }
  return parsed.data
}

/** The result of {@link checkFraudProof}. */
export type FraudProofCheck =
  | {
      ok: true
      /** The convicted DID (the receipt's issuer). */
      offender: string
      /** The DID that signed the proof. */
      verifier: string
      /** `receiptHash` of the convicted receipt. */
      receipt: string
      job: string
      round: number
      claimedHash: string
      expectedHash: string
      /** How the conviction was reached: a re-run here, or the word of an authority on the data. */
      checked: 'reexecution' | 'attested'
    }
  | FraudProofFailure

/** A fraud proof whose envelope checked out: its claims and the accused receipt's claims. */
interface CheckedEnvelope {
  claims: FraudProofClaims
  rc: ReceiptClaims
  receiptHash: string
}

const fail = (reason: FraudProofReason, detail: string): FraudProofFailure => ({
  ok: false,
  level: 'fraud-proof',
  reason,
  detail
})

/**
 * Everything about a fraud proof that needs no data: its signature (EdDSA, did:key), its
 * claims, the embedded receipt's signature, and that the claimed values are the receipt's.
 */
async function checkEnvelope(
  proof: string,
  opts: VerifyTimeOptions
): Promise<CheckedEnvelope | FraudProofFailure> {
  let claims: FraudProofClaims
  try {
    splitJwt(proof, MAX_FRAUD_PROOF_BYTES)
    const { issuer } = await verifyJwt(proof, opts.now === undefined ? {} : { now: opts.now })
    try {
      claims = decodeFraudProof(proof)
    } catch (err) {
      return fail('schema', (err as Error).message)
    }
    if (claims.iss !== issuer) return fail('issuer', `iss ${claims.iss} is not the signer ${issuer}`)
  } catch (err) {
    const reason = signatureReasonOf(err)
    const mapped: FraudProofReason =
      reason === 'too-large' || reason === 'malformed' || reason === 'bad-signature' || reason === 'issuer'
        ? reason
        : 'invalid'
    return fail(mapped, (err as Error).message)
  }
  const receipt = await verifySignature(claims.receipt, opts.now === undefined ? {} : { now: opts.now })
  if (!receipt.ok)
    return fail('receipt-invalid', `the embedded receipt: ${receipt.reason}: ${receipt.detail}`)
  const rc = receipt.claims
  if (receipt.hash !== claims.receiptHash) {
    return fail('receipt-hash', `receiptHash ${claims.receiptHash} is not the receipt's ${receipt.hash}`)
  }
  if (claims.offender !== rc.iss || claims.job !== rc.job || claims.round !== rc.round) {
    return fail('offender', 'offender, job or round are not the receipt’s')
  }
  if (claims.claimedHash !== claimedResultHash(rc)) {
    return fail('claimed-hash', `claimedHash ${claims.claimedHash} is not what the receipt claims`)
  }
  if (claims.claimedSamples !== undefined && claims.claimedSamples !== rc.samples) {
    return fail('claimed-hash', `claimedSamples ${claims.claimedSamples} is not the receipt's ${rc.samples}`)
  }
  if (claims.expectedHash === claims.claimedHash && claims.expectedSamples === undefined) {
    return fail('no-mismatch', 'the proof expects the hash the receipt claims: nothing is proven')
  }
  return { claims, rc, receiptHash: receipt.hash }
}

function convicted(e: CheckedEnvelope, checked: 'reexecution' | 'attested'): FraudProofCheck {
  return {
    ok: true,
    offender: e.rc.iss,
    verifier: e.claims.iss,
    receipt: e.receiptHash,
    job: e.rc.job,
    round: e.rc.round,
    claimedHash: e.claims.claimedHash,
    expectedHash: e.claims.expectedHash,
    checked
  }
}

/**
 * Re-checks a fraud proof: its signature (EdDSA, did:key), its claims, the embedded receipt's
 * signature, that the claimed values are the receipt's, and — by re-running the round with
 * `reexec` — that the expected values are right and differ from the claim. A false accusation
 * (the re-run matches the receipt) fails with `no-mismatch`. Never throws.
 */
export async function checkFraudProof(
  proof: string,
  reexec: Reexecutor,
  opts: VerifyTimeOptions & { signal?: AbortSignal } = {}
): Promise<FraudProofCheck> {
  const env = await checkEnvelope(proof, opts)
  if ('ok' in env) return env
  const { claims, rc } = env
  const mode = verifiability(rc)
  if (mode === 'unverifiable') {
    return fail(
      'unverifiable',
      `a '${rc.ep}' round without published result weights cannot be proven wrong by a re-run`
    )
  }
  const signalOpts = opts.signal === undefined ? {} : { signal: opts.signal }
  let rerun: ReexecutionResult
  try {
    rerun = await reexec.run(rc, { ...signalOpts, ...(mode === 'tolerance' ? { keepWeights: true } : {}) })
    if (typeof rerun?.resultHash !== 'string') throw new Error('the re-executor returned no resultHash')
  } catch (err) {
    return fail('reexecution-error', (err as Error).message)
  }
  if (rerun.resultHash !== claims.expectedHash) {
    return fail(
      'expected-hash-wrong',
      `re-run gave ${rerun.resultHash}, the proof says ${claims.expectedHash}`
    )
  }
  if (claims.expectedSamples !== undefined && rerun.samples !== claims.expectedSamples) {
    return fail(
      'expected-hash-wrong',
      `re-run counted ${String(rerun.samples)} samples, the proof says ${claims.expectedSamples}`
    )
  }
  const samplesDiffer = rerun.samples !== undefined && rerun.samples !== rc.samples
  if (mode === 'tolerance') {
    // A non-bit-exact round differs from the CPU re-run by design: only a difference beyond
    // the provider's bound (or published weights the receipt does not commit to) convicts.
    const check = await checkWithinTolerance(rc, rerun, reexec, signalOpts)
    if (check.kind === 'unavailable') return fail('reexecution-error', check.detail)
    if (check.kind === 'inconclusive') return fail('inconclusive', check.detail)
    if (check.kind === 'within' && !samplesDiffer) {
      return fail('no-mismatch', `the re-run is within the tolerance: ${check.detail}`)
    }
    return convicted(env, 'reexecution')
  }
  const hashDiffers = rerun.resultHash !== claims.claimedHash
  if (!hashDiffers && !samplesDiffer) {
    return fail('no-mismatch', 'the re-run matches the receipt: the accusation is false')
  }
  return convicted(env, 'reexecution')
}

/**
 * For a node that cannot read the accused round's data (so cannot re-run it): checks
 * everything {@link checkFraudProof} checks but the re-run, then accepts the proof only when
 * `authority` vouches for its signer for this receipt — a node uses "the signer owns every
 * shard the receipt names" (a data owner can always re-run rounds on its own data). Never throws.
 */
export async function checkAttestedFraudProof(
  proof: string,
  authority: (verifier: string, receipt: ReceiptClaims) => Promise<boolean>,
  opts: VerifyTimeOptions = {}
): Promise<FraudProofCheck> {
  const env = await checkEnvelope(proof, opts)
  if ('ok' in env) return env
  let trusted: boolean
  try {
    trusted = await authority(env.claims.iss, env.rc)
  } catch (err) {
    return fail('reexecution-error', `checking the signer's authority: ${(err as Error).message}`)
  }
  if (!trusted) {
    return fail(
      'untrusted',
      `${env.claims.iss} is not an authority for this receipt's data, and this node cannot re-run it`
    )
  }
  return convicted(env, 'attested')
}
