/**
 * The `chain` verification level: each DID's receipts form one hash chain through `prev`.
 * A fork (two receipts with the same `prev`) or a second receipt for the same (job, round)
 * is signed misbehaviour, and comes with evidence anyone can re-check.
 */
import { exclusionKey, type ReceiptClaims } from './claims.js'
import { receiptHash, verifySignature } from './receipt.js'
import type { VerifyTimeOptions } from './receipt.js'
import type { ChainFailure, ChainReason } from './types.js'

/** A receipt that passed the signature level. */
export interface ChainEntry {
  jwt: string
  hash: string
  claims: ReceiptClaims
}

/**
 * Proof of signed misbehaviour by one DID: two distinct receipts it signed that share a
 * `prev` (`equivocation`, a fork of its chain) or a (job, round) (`replay`).
 */
export interface ChainEvidence {
  kind: 'equivocation' | 'replay'
  did: string
  /** The two receipts (JWTs), ordered by `receiptHash`. */
  receipts: [string, string]
  /** For `equivocation`: the `prev` both name. */
  prev?: string | null
  /** For `replay`: the job and round both claim. */
  job?: string
  round?: number
}

/** One receipt's problem in a chain. */
export interface ChainIssue {
  /** `receiptHash` of the receipt (or `#index` for an input that is not a string). */
  receipt: string
  reason: ChainReason
  detail: string
}

/** The result of {@link verifyChain}. */
export type ChainResult =
  | { ok: true; did?: string; order: string[] }
  | (ChainFailure & {
      did?: string
      /** Receipt hashes reachable from the chain's first receipt, in chain order. */
      order: string[]
      /** Every problem found, per receipt. */
      issues: ChainIssue[]
      /** Evidence of equivocation and replay (the two signed receipts each). */
      evidence: ChainEvidence[]
    })

/** Top-level reason of a failed chain: the most serious issue found. */
const SEVERITY: readonly ChainReason[] = [
  'mixed-issuers',
  'equivocation',
  'replay',
  'iat-order',
  'gap',
  'invalid-receipt'
]

const byHash = (a: ChainEntry, b: ChainEntry): number => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0)
const prevKey = (prev: string | null): string => prev ?? '(null)'

function pair(a: ChainEntry, b: ChainEntry): [string, string] {
  return a.hash < b.hash ? [a.jwt, b.jwt] : [b.jwt, a.jwt]
}

/** Report of {@link analyseChain}. */
export interface ChainAnalysis {
  order: string[]
  issues: ChainIssue[]
  evidence: ChainEvidence[]
}

/**
 * The chain checks over receipts that already passed the signature level and share an
 * issuer. Deterministic: the result does not depend on the input order.
 */
export function analyseChain(entries: readonly ChainEntry[]): ChainAnalysis {
  const issues: ChainIssue[] = []
  const seen = new Set<string>()
  const issue = (receipt: string, reason: ChainReason, detail: string): void => {
    const key = `${receipt} ${reason}`
    if (seen.has(key)) return
    seen.add(key)
    issues.push({ receipt, reason, detail })
  }
  const evidence: ChainEvidence[] = []

  // The same receipt given twice is counted once and reported.
  const unique = new Map<string, ChainEntry>()
  const copies = new Map<string, number>()
  for (const e of entries) {
    copies.set(e.hash, (copies.get(e.hash) ?? 0) + 1)
    if (!unique.has(e.hash)) unique.set(e.hash, e)
  }
  for (const [hash, n] of [...copies].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (n > 1) issue(hash, 'replay', `the same receipt appears ${n} times`)
  }
  const all = [...unique.values()].sort(byHash)

  // Forks: two receipts with the same prev.
  const children = new Map<string, ChainEntry[]>()
  for (const e of all) {
    const k = prevKey(e.claims.prev)
    const list = children.get(k)
    if (list === undefined) children.set(k, [e])
    else list.push(e)
  }
  for (const [, group] of children) {
    if (group.length < 2) continue
    const first = group[0]!
    for (const other of group.slice(1)) {
      evidence.push({
        kind: 'equivocation',
        did: first.claims.iss,
        receipts: pair(first, other),
        prev: first.claims.prev
      })
    }
    for (const e of group) {
      issue(
        e.hash,
        'equivocation',
        `${group.length} receipts of ${e.claims.iss} name prev ${String(e.claims.prev)}`
      )
    }
  }

  // Walk from the first receipt: the root with prev null, else the earliest root.
  const roots = all
    .filter((e) => e.claims.prev === null || !unique.has(e.claims.prev))
    .sort((a, b) => {
      const na = a.claims.prev === null ? 0 : 1
      const nb = b.claims.prev === null ? 0 : 1
      return na - nb || a.claims.iat - b.claims.iat || byHash(a, b)
    })
  const order: string[] = []
  const reached = new Set<string>()
  const queue: ChainEntry[] =
    roots.length > 0 ? [...(children.get(prevKey(roots[0]!.claims.prev)) ?? [])] : []
  while (queue.length > 0) {
    const e = queue.shift()!
    if (reached.has(e.hash)) continue
    reached.add(e.hash)
    order.push(e.hash)
    for (const c of children.get(e.hash) ?? []) {
      if (c.claims.iat < e.claims.iat) {
        issue(c.hash, 'iat-order', `issued at ${c.claims.iat}, before its prev ${e.hash} (${e.claims.iat})`)
      }
      queue.push(c)
    }
  }
  for (const e of all) {
    if (reached.has(e.hash)) continue
    const detail =
      e.claims.prev !== null && !unique.has(e.claims.prev)
        ? `its prev ${e.claims.prev} is not among the receipts`
        : `it does not descend from the chain's first receipt`
    issue(e.hash, 'gap', detail)
  }

  // One receipt per (job, round).
  const rank = new Map<string, number>()
  order.forEach((h, i) => rank.set(h, i))
  all.forEach((e, i) => {
    if (!rank.has(e.hash)) rank.set(e.hash, order.length + i)
  })
  const rounds = new Map<string, ChainEntry[]>()
  for (const e of all) {
    const k = `${e.claims.job}\u0000${e.claims.round}\u0000${exclusionKey(e.claims)}`
    const list = rounds.get(k)
    if (list === undefined) rounds.set(k, [e])
    else list.push(e)
  }
  for (const [, group] of rounds) {
    if (group.length < 2) continue
    group.sort((a, b) => rank.get(a.hash)! - rank.get(b.hash)!)
    const first = group[0]!
    for (const other of group.slice(1)) {
      issue(
        other.hash,
        'replay',
        `a second receipt for job ${other.claims.job} round ${other.claims.round} (first: ${first.hash})`
      )
      if (other.claims.prev === first.claims.prev) continue // already a fork, with its evidence
      evidence.push({
        kind: 'replay',
        did: first.claims.iss,
        receipts: pair(first, other),
        job: first.claims.job,
        round: first.claims.round
      })
    }
  }
  return { order, issues, evidence }
}

function failure(
  analysis: ChainAnalysis,
  did: string | undefined
): Exclude<ChainResult, { ok: true }> | undefined {
  if (analysis.issues.length === 0) return undefined
  const top = SEVERITY.find((r) => analysis.issues.some((i) => i.reason === r)) ?? 'invalid-receipt'
  const first = analysis.issues.find((i) => i.reason === top)!
  return {
    ok: false,
    level: 'chain',
    reason: top,
    detail: first.detail,
    receipt: first.receipt,
    ...(did === undefined ? {} : { did }),
    order: analysis.order,
    issues: analysis.issues,
    evidence: analysis.evidence
  }
}

/**
 * Level `chain` over receipts of one DID: each verifies at the signature level; they link
 * by `prev` into one chain from its first receipt (`prev` null, or the one receipt whose
 * `prev` is outside the set when checking a window); no `gap`, no fork (`equivocation`, with
 * evidence), no `replay` (the same receipt twice, or two receipts for the same (job, round)),
 * and `iat` never decreases along the chain. Never throws.
 */
export async function verifyChain(
  receipts: readonly string[],
  opts: VerifyTimeOptions = {}
): Promise<ChainResult> {
  const checked = await Promise.all(receipts.map(async (jwt) => verifySignature(jwt, opts)))
  const entries: ChainEntry[] = []
  const invalid: ChainIssue[] = []
  checked.forEach((r, i) => {
    const jwt = receipts[i]!
    if (r.ok) entries.push({ jwt, hash: r.hash, claims: r.claims })
    else {
      const receipt = typeof jwt === 'string' ? receiptHash(jwt) : `#${i}`
      invalid.push({ receipt, reason: 'invalid-receipt', detail: `${r.reason}: ${r.detail}` })
    }
  })
  const issuers = [...new Set(entries.map((e) => e.claims.iss))].sort()
  if (issuers.length > 1) {
    const analysis: ChainAnalysis = {
      order: [],
      evidence: [],
      issues: [
        ...invalid,
        ...entries
          .filter((e) => e.claims.iss !== issuers[0])
          .map((e) => ({
            receipt: e.hash,
            reason: 'mixed-issuers' as const,
            detail: `issued by ${e.claims.iss}; the chain mixes ${issuers.length} DIDs`
          }))
      ]
    }
    return failure(analysis, undefined)!
  }
  const did = issuers[0]
  const analysis = analyseChain(entries)
  analysis.issues.push(...invalid)
  return failure(analysis, did) ?? { ok: true, ...(did === undefined ? {} : { did }), order: analysis.order }
}

/** The result of {@link checkChainEvidence}. */
export type EvidenceCheck = { ok: true; did: string } | ChainFailure

/**
 * Re-checks equivocation or replay evidence on its own: both receipts verify at the
 * signature level, are signed by `evidence.did`, are distinct, and share a `prev`
 * (equivocation) or a (job, round) (replay). Never throws.
 */
export async function checkChainEvidence(
  evidence: ChainEvidence,
  opts: VerifyTimeOptions = {}
): Promise<EvidenceCheck> {
  const fail = (reason: ChainReason, detail: string): ChainFailure => ({
    ok: false,
    level: 'chain',
    reason,
    detail
  })
  if (
    typeof evidence !== 'object' ||
    evidence === null ||
    !Array.isArray(evidence.receipts) ||
    evidence.receipts.length !== 2
  ) {
    return fail('invalid-receipt', 'evidence must hold exactly two receipts')
  }
  const [a, b] = await Promise.all(evidence.receipts.map(async (jwt) => verifySignature(jwt, opts)))
  if (a === undefined || b === undefined || !a.ok || !b.ok) {
    return fail('invalid-receipt', 'a receipt of the evidence does not verify')
  }
  if (a.hash === b.hash) return fail('invalid-receipt', 'the two receipts are the same receipt')
  if (a.claims.iss !== evidence.did || b.claims.iss !== evidence.did) {
    return fail('mixed-issuers', `the receipts are not both signed by ${String(evidence.did)}`)
  }
  if (evidence.kind === 'equivocation') {
    if (a.claims.prev !== b.claims.prev)
      return fail('invalid-receipt', 'the two receipts name different prevs')
    return { ok: true, did: evidence.did }
  }
  if (evidence.kind === 'replay') {
    if (a.claims.job !== b.claims.job || a.claims.round !== b.claims.round) {
      return fail('invalid-receipt', 'the two receipts are for different (job, round)')
    }
    return { ok: true, did: evidence.did }
  }
  return fail('invalid-receipt', `unknown evidence kind ${String((evidence as { kind: unknown }).kind)}`)
}
