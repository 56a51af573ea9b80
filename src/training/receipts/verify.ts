/**
 * The `lineage` and `reexecution` verification levels, and the deterministic choice of
 * which receipts a verifier re-executes.
 */
import { createHash } from 'node:crypto'
import type { Identity } from '../../identity/index.js'
import { claimedResultHash } from './claims.js'
import type { ReceiptClaims } from './claims.js'
import { REEXEC_SAMPLING_TAG } from './constants.js'
import { decodeReceipt } from './receipt.js'
import type {
  GrantInfo,
  GrantLookup,
  LineageFailure,
  LineageReason,
  ClaimedResult,
  ReexecutionFailure,
  ReexecutionResult,
  Reexecutor
} from './types.js'
import {
  SENSITIVITY_PROBES,
  judgeTolerance,
  compareUpdates,
  describeComparison,
  toleranceFor,
  verifiability,
  withinTolerance,
  type UpdateComparison
} from './tolerance.js'

/** The result of {@link verifyLineage}. */
/** The decoded claims and hash of a receipt, or the reason it does not decode. */
function tryDecode(receipt: string): { claims: ReceiptClaims; hash: string } | string {
  try {
    const { claims, hash } = decodeReceipt(receipt)
    return { claims, hash }
  } catch (err) {
    return (err as Error).message
  }
}

export type LineageResult =
  | {
      ok: true
      /** Σ shard sizes (N) when every shard's size was known, else undefined. */
      available?: number
      /** `steps × min(batchSize, N)` when N is known (the exact figure), else `steps × batchSize` (a bound). */
      expectedSamples: number
    }
  | LineageFailure

/**
 * The work rule. Every step sees one full batch of `min(batchSize, N)` examples, N being the
 * examples in the round's shards (a trainer draws fixed-size batches and wraps around into the
 * next reshuffled pass instead of yielding a short last batch), so a round claims
 * `samples = steps × min(batchSize, N)`. Returns that figure, or — with N unknown — the upper
 * bound `steps × batchSize` (the re-executor, which reads the shards, checks the exact figure).
 */
export function expectedSamples(claims: ReceiptClaims, available?: number): number {
  const perStep =
    available === undefined ? claims.hyper.batchSize : Math.min(claims.hyper.batchSize, available)
  return claims.steps * perStep
}

function sizeOf(grant: GrantInfo, cid: string): number | undefined {
  const sizes = grant.shardSizes
  if (sizes === undefined || !Object.hasOwn(sizes, cid)) return undefined
  const n = sizes[cid]
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/**
 * Level `lineage`: every shard of the receipt is covered by the grant it names, and that
 * grant is for the receipt's issuer, for its job (or `'any'`), lists the shard, and was
 * valid at the receipt's `iat` (issued at or before it, `iat < exp`, not revoked at or
 * before `iat`); no shard is listed twice; `steps ≤ hyper.steps`; and `samples` follows the
 * work rule (see {@link expectedSamples}, with shard sizes from the grants: exact when every
 * shard's size is known, an upper bound otherwise). It decodes the receipt but does
 * not verify its signature (run {@link verifySignature} first, as `verifyAll` does). Never throws.
 */
export async function verifyLineage(
  receipt: string,
  grants: GrantLookup,
  opts: { signal?: AbortSignal } = {}
): Promise<LineageResult> {
  const decoded = tryDecode(receipt)
  if (typeof decoded === 'string')
    return { ok: false, level: 'lineage', reason: 'malformed', detail: decoded }
  const { claims, hash } = decoded
  const fail = (reason: LineageReason, detail: string, shard?: string, grant?: string): LineageFailure => ({
    ok: false,
    level: 'lineage',
    reason,
    detail,
    receipt: hash,
    ...(shard === undefined ? {} : { shard }),
    ...(grant === undefined ? {} : { grant })
  })
  const lookups = new Map<string, Promise<GrantInfo | undefined>>()
  const seen = new Set<string>()
  let available = 0
  let sizesKnown = true
  for (const { cid, grant: grantId } of claims.shards) {
    if (opts.signal?.aborted === true) return fail('grant-lookup-failed', 'aborted', cid, grantId)
    if (seen.has(cid)) return fail('duplicate-shard', `shard ${cid} is listed twice`, cid, grantId)
    seen.add(cid)
    let lookup = lookups.get(grantId)
    if (lookup === undefined) {
      lookup = Promise.resolve().then(async () => grants.find(grantId))
      lookups.set(grantId, lookup)
    }
    let g: GrantInfo | undefined
    try {
      g = await lookup
    } catch (err) {
      return fail(
        'grant-lookup-failed',
        `looking up grant ${grantId}: ${(err as Error).message}`,
        cid,
        grantId
      )
    }
    if (g === undefined || g === null) return fail('grant-not-found', `no grant ${grantId}`, cid, grantId)
    if (g.id !== grantId)
      return fail('grant-mismatch', `the lookup for ${grantId} returned grant ${g.id}`, cid, grantId)
    if (g.grantee !== claims.iss) {
      return fail('wrong-grantee', `grant ${grantId} is for ${g.grantee}, not ${claims.iss}`, cid, grantId)
    }
    if (g.purpose !== 'any' && g.purpose !== claims.job) {
      return fail(
        'wrong-purpose',
        `grant ${grantId} is for job ${g.purpose}, not ${claims.job}`,
        cid,
        grantId
      )
    }
    if (!Array.isArray(g.shards) || !g.shards.includes(cid)) {
      return fail('shard-not-granted', `grant ${grantId} does not cover shard ${cid}`, cid, grantId)
    }
    if (g.iat !== undefined && claims.iat < g.iat) {
      return fail(
        'grant-not-yet-valid',
        `receipt iat ${claims.iat} precedes grant iat ${g.iat}`,
        cid,
        grantId
      )
    }
    if (g.exp !== undefined && claims.iat >= g.exp) {
      return fail(
        'grant-expired',
        `grant ${grantId} expired at ${g.exp}, receipt iat ${claims.iat}`,
        cid,
        grantId
      )
    }
    if (g.revokedAt !== undefined && g.revokedAt <= claims.iat) {
      return fail(
        'grant-revoked',
        `grant ${grantId} was revoked at ${g.revokedAt}, receipt iat ${claims.iat}`,
        cid,
        grantId
      )
    }
    const size = sizeOf(g, cid)
    if (size === undefined) sizesKnown = false
    else available += size
  }
  for (const grantId of claims.excluded ?? []) {
    let g: GrantInfo | undefined
    try {
      g = await grants.find(grantId)
    } catch (err) {
      return fail(
        'grant-lookup-failed',
        `looking up grant ${grantId}: ${(err as Error).message}`,
        undefined,
        grantId
      )
    }
    const ended =
      g !== undefined &&
      ((g.revokedAt !== undefined && g.revokedAt <= claims.iat) ||
        (g.exp !== undefined && g.exp <= claims.iat))
    if (!ended) {
      return fail(
        'bogus-exclusion',
        g === undefined
          ? `excludes grant ${grantId}, which is unknown`
          : `excludes grant ${grantId}, which was neither revoked nor expired at iat ${claims.iat}`,
        undefined,
        grantId
      )
    }
  }
  if (claims.steps > claims.hyper.steps) {
    return fail(
      'steps-exceeded',
      `claims ${claims.steps} steps, more than the round's hyper.steps ${claims.hyper.steps}`
    )
  }
  const n = sizesKnown ? available : undefined
  const expected = expectedSamples(claims, n)
  if (n !== undefined ? claims.samples !== expected : claims.samples > expected) {
    return fail(
      'samples-mismatch',
      n !== undefined
        ? `claims ${claims.samples} samples; ${claims.steps} steps × min(batchSize ${claims.hyper.batchSize}, ` +
            `N ${n}) = ${expected}`
        : `claims ${claims.samples} samples, more than ${claims.steps} steps × batchSize ${claims.hyper.batchSize}`
    )
  }
  return { ok: true, ...(n === undefined ? {} : { available: n }), expectedSamples: expected }
}

/** The result of {@link verifyReexecution}. */
export type ReexecutionCheck =
  | {
      ok: true
      resultHash: string
      samples?: number
      /** `exact` (same hash) or `tolerance` (within the provider's bound; see `comparison`). */
      mode: 'exact' | 'tolerance'
      comparison?: UpdateComparison
    }
  | ReexecutionFailure

/**
 * True for the `reexecution` failures that prove the trainer wrong (its DID is excluded and a
 * fraud proof can be signed); the others (`reexecution-error`, `unverifiable`,
 * `result-unavailable`, `no-result-hash`, `malformed`) give no verdict on the trainer.
 */
export function reexecutionConvicts(reason: ReexecutionFailure['reason']): boolean {
  return reason === 'result-mismatch' || reason === 'samples-mismatch' || reason === 'outside-tolerance'
}

/**
 * Level `reexecution`: re-runs the receipt's round with `reexec` (deterministic CPU) and
 * compares the result with the claim. A deterministic CPU round (`ep: "cpu"`) must give the
 * claimed weights hash (`resultHash`, or the digest of a raw sha-256 `resultCid`); a round of
 * another provider with a calibrated bound (`verifiability` = `tolerance`) must have published
 * weights at `resultCid` that hash to `resultHash` and lie within the bound of the re-run
 * (`outside-tolerance` otherwise). The samples are compared when the re-executor counts them.
 * A mismatch carries both hashes: hand them to `issueFraudProof`. It decodes the receipt but
 * does not verify its signature. Never throws.
 */
export async function verifyReexecution(
  receipt: string,
  reexec: Reexecutor,
  opts: { signal?: AbortSignal } = {}
): Promise<ReexecutionCheck> {
  const decoded = tryDecode(receipt)
  if (typeof decoded === 'string')
    return { ok: false, level: 'reexecution', reason: 'malformed', detail: decoded }
  const { claims, hash } = decoded
  const claimedHash = claimedResultHash(claims)
  if (claimedHash === undefined) {
    return {
      ok: false,
      level: 'reexecution',
      reason: 'no-result-hash',
      detail: 'the receipt has neither resultHash nor a raw sha-256 resultCid',
      receipt: hash
    }
  }
  const mode = verifiability(claims)
  if (mode === 'unverifiable') {
    return {
      ok: false,
      level: 'reexecution',
      reason: 'unverifiable',
      detail:
        toleranceFor(claims.ep) === undefined
          ? `the round ran on '${claims.ep}', which has no calibrated tolerance`
          : `the round ran on '${claims.ep}' and its result weights are not published (no resultCid)`,
      receipt: hash
    }
  }
  if (mode === 'tolerance' && reexec.result === undefined) {
    return {
      ok: false,
      level: 'reexecution',
      reason: 'reexecution-error',
      detail: 'this re-executor cannot fetch claimed weights, so it checks bit-exact rounds only',
      receipt: hash
    }
  }
  const signalOpts = opts.signal === undefined ? {} : { signal: opts.signal }
  let rerun: ReexecutionResult
  try {
    rerun = await reexec.run(claims, {
      ...signalOpts,
      ...(mode === 'tolerance' ? { keepWeights: true } : {})
    })
    if (typeof rerun?.resultHash !== 'string') throw new Error('the re-executor returned no resultHash')
    if (mode === 'tolerance' && (rerun.weights === undefined || rerun.base === undefined)) {
      throw new Error('the re-executor returned no weights to compare')
    }
  } catch (err) {
    return {
      ok: false,
      level: 'reexecution',
      reason: 'reexecution-error',
      detail: (err as Error).message,
      receipt: hash
    }
  }
  const base = {
    ok: false as const,
    level: 'reexecution' as const,
    receipt: hash,
    claimedHash,
    expectedHash: rerun.resultHash,
    claimedSamples: claims.samples,
    ...(rerun.samples === undefined ? {} : { expectedSamples: rerun.samples })
  }
  let comparison: UpdateComparison | undefined
  if (mode === 'exact') {
    if (rerun.resultHash !== claimedHash) {
      return {
        ...base,
        reason: 'result-mismatch',
        detail: `re-run gave ${rerun.resultHash}, receipt claims ${claimedHash}`
      }
    }
  } else {
    const check = await checkWithinTolerance(claims, rerun, reexec, signalOpts)
    if (check.kind === 'inconclusive') {
      return { ok: false, level: 'reexecution', reason: 'inconclusive', detail: check.detail, receipt: hash }
    }
    if (check.kind === 'unavailable') {
      return {
        ok: false,
        level: 'reexecution',
        reason: 'result-unavailable',
        detail: check.detail,
        receipt: hash
      }
    }
    if (check.kind === 'inconsistent') return { ...base, reason: 'result-mismatch', detail: check.detail }
    comparison = check.comparison
    if (check.kind === 'outside') {
      return { ...base, reason: 'outside-tolerance', detail: check.detail, comparison }
    }
  }
  if (rerun.samples !== undefined && rerun.samples !== claims.samples) {
    return {
      ...base,
      reason: 'samples-mismatch',
      detail: `re-run processed ${rerun.samples} samples, receipt claims ${claims.samples}`,
      ...(comparison === undefined ? {} : { comparison })
    }
  }
  return {
    ok: true,
    resultHash: rerun.resultHash,
    mode,
    ...(rerun.samples === undefined ? {} : { samples: rerun.samples }),
    ...(comparison === undefined ? {} : { comparison })
  }
}

/** What {@link checkWithinTolerance} found. */
export type ToleranceCheck =
  | { kind: 'within'; comparison: UpdateComparison; detail: string }
  | { kind: 'outside'; comparison: UpdateComparison; detail: string }
  /** The weights at resultCid are not the ones the receipt's resultHash commits to, or do not fit. */
  | { kind: 'inconsistent'; detail: string }
  /** The claimed weights could not be fetched: no verdict. */
  | { kind: 'unavailable'; detail: string }
  /** The round amplifies rounding too much to tell honest from dishonest: no verdict. */
  | { kind: 'inconclusive'; detail: string }

/**
 * Compare a tolerance-mode receipt's published weights (`resultCid`, which must hash to its
 * `resultHash`) with a deterministic re-run that kept its weights and base. Never throws.
 */
export async function checkWithinTolerance(
  claims: ReceiptClaims,
  rerun: ReexecutionResult,
  reexec: Reexecutor,
  opts: { signal?: AbortSignal } = {}
): Promise<ToleranceCheck> {
  const bound = toleranceFor(claims.ep)
  if (
    bound === undefined ||
    reexec.result === undefined ||
    rerun.weights === undefined ||
    rerun.base === undefined
  ) {
    return { kind: 'unavailable', detail: 'no tolerance check is possible for this receipt here' }
  }
  let claimed: ClaimedResult
  try {
    claimed = await reexec.result(claims, opts)
  } catch (err) {
    return {
      kind: 'unavailable',
      detail: `cannot fetch the claimed weights ${claims.resultCid}: ${(err as Error).message}`
    }
  }
  if (claimed.resultHash !== claims.resultHash) {
    return {
      kind: 'inconsistent',
      detail: `the weights at ${claims.resultCid} hash to ${claimed.resultHash}, the receipt claims ${claims.resultHash}`
    }
  }
  const comparison = compareUpdates(rerun.base, claimed.weights, rerun.weights)
  if (typeof comparison === 'string') {
    return {
      kind: 'inconsistent',
      detail: `the weights at ${claims.resultCid} do not fit the model: ${comparison}`
    }
  }
  if (withinTolerance(comparison, bound)) {
    return {
      kind: 'within',
      comparison,
      detail: `'${claims.ep}' round against the CPU re-run: ${describeComparison(comparison, bound)}`
    }
  }
  // Outside the tight stage: measure how much this round amplifies rounding, by re-runs from
  // the base with its last bits flipped (up to SENSITIVITY_PROBES, the largest counts), and
  // judge against that.
  let sensitivity = 0
  for (let variant = 0; variant < SENSITIVITY_PROBES; variant++) {
    let perturbed: ReexecutionResult
    try {
      perturbed = await reexec.run(claims, { ...opts, keepWeights: true, perturbBase: variant })
      if (perturbed.weights === undefined) throw new Error('the re-executor returned no weights to compare')
    } catch (err) {
      return { kind: 'unavailable', detail: `the sensitivity re-run failed: ${(err as Error).message}` }
    }
    const sens = compareUpdates(rerun.base, perturbed.weights, rerun.weights)
    if (typeof sens === 'string') return { kind: 'unavailable', detail: `the sensitivity re-run: ${sens}` }
    sensitivity = Math.max(sensitivity, sens.relDistance)
    if (judgeTolerance(comparison, bound, sensitivity) === 'within') break
  }
  const judged: UpdateComparison = { ...comparison, sensitivity }
  const detail = `'${claims.ep}' round against the CPU re-run: ${describeComparison(judged, bound, sensitivity)}`
  const verdict = judgeTolerance(judged, bound, sensitivity)
  if (verdict === 'inconclusive') {
    return {
      kind: 'inconclusive',
      detail: `${detail}: beyond the cap, but this round's rounding alone can move it that far; no verdict`
    }
  }
  return { kind: verdict, comparison: judged, detail }
}

/** A uniform number in [0, 1) from the first 53 bits of a digest. */
function unitInterval(digest: Uint8Array): number {
  let hi = 0
  for (let i = 0; i < 4; i++) hi = hi * 256 + (digest[i] ?? 0)
  const lo = (((digest[4] ?? 0) << 16) | ((digest[5] ?? 0) << 8) | (digest[6] ?? 0)) >>> 3 // 21 bits
  return (hi * 2 ** 21 + lo) / 2 ** 53
}

/**
 * Whether a verifier re-executes a receipt: `u(receipt, verifier) < fraction`, with `u`
 * uniform in [0, 1) and fixed for a (receipt, verifier) pair, so the same verifier always
 * makes the same choice and different verifiers choose independently.
 *
 * - With an `Identity`, `u` comes from sha-256 of the verifier's Ed25519 signature (RFC 8032
 *   signatures are deterministic) over the tagged receipt hash: nobody without the verifier's
 *   key can predict it, so a cheater cannot grind its receipts until none is picked.
 * - With a DID string, `u` comes from sha-256 of the tagged receipt hash and DID: reproducible
 *   by anyone (for audits), but also predictable by the cheater.
 */
export function shouldReexecute(receiptHash: string, verifier: string | Identity, fraction: number): boolean {
  if (!(fraction > 0)) return false
  if (fraction >= 1) return true
  const message = Buffer.from(`${REEXEC_SAMPLING_TAG}\n${receiptHash}`, 'utf8')
  const h = createHash('sha256')
  if (typeof verifier === 'string') h.update(message).update('\n').update(verifier, 'utf8')
  else h.update(verifier.sign(message))
  return unitInterval(h.digest()) < fraction
}
