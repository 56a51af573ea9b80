/**
 * The credit ledger: a pure function of verified receipts, so that every node that holds the
 * same receipts computes the same balances, whatever order they arrived in.
 */
import { createHash } from 'node:crypto'
import { DEFAULT_CREDIT_PER_SAMPLE, DEFAULT_UNVERIFIABLE_POLICY } from './constants.js'
import { LedgerInputError } from './errors.js'
import { decodeReceipt } from './receipt.js'
import { exclusionKey, type ReceiptClaims } from './claims.js'
import { verifiability } from './tolerance.js'
import {
  dataRewards,
  totalBalances,
  trainerCredits,
  type DataRewards,
  type RewardOptions
} from './rewards.js'

/** Options of {@link computeLedger}. */
export interface LedgerOptions {
  /** Credits per trained sample, a non-negative safe integer (default {@link DEFAULT_CREDIT_PER_SAMPLE}). */
  creditPerSample?: number
  /** DIDs whose credits are forfeited (`verifyAll`'s `excluded`). */
  forfeited: ReadonlySet<string>
  /**
   * Reward shares of the swarm's policy: with them, each round also credits the owners of the
   * shards it trained on (`dataOwners`, rewards.ts), and the trainer gets its share.
   */
  rewards?: RewardOptions
  /**
   * What a round that nobody can check by re-execution earns (`verifiability` =
   * `unverifiable`: a provider without a calibrated tolerance, or a non-bit-exact round whose
   * result weights are not published): `credit` as any round, `no-credit` (kept in the history
   * with 0 credits, and nothing for its data owners), or `exclude` (left out entirely). One
   * policy, or one per job (the job document's `unverifiable`). Default
   * {@link DEFAULT_UNVERIFIABLE_POLICY}.
   */
  unverifiable?: UnverifiablePolicy | ((job: string) => UnverifiablePolicy)
}

/** What the ledger does with rounds nobody can check: see {@link LedgerOptions.unverifiable}. */
export type UnverifiablePolicy = 'credit' | 'no-credit' | 'exclude'

/** The policies, for schemas and CLI choices. */
export const UNVERIFIABLE_POLICIES: readonly UnverifiablePolicy[] = ['credit', 'no-credit', 'exclude']

/** One credited receipt. */
export interface LedgerEntry {
  did: string
  job: string
  round: number
  samples: number
  /** `samples × creditPerSample`, or 0 when the DID forfeited. */
  credits: number
  forfeited: boolean
  /** Present (true) for a round nobody can check by re-execution, credited per the `unverifiable` policy. */
  unverifiable?: true
  /** `receiptHash` of the receipt. */
  receipt: string
}

/** Balances per DID and the entries they add up from. */
export interface Ledger {
  /** Credits per DID, keys in ascending order. */
  balances: Record<string, number>
  /** Ordered by (did, job, round, receipt). */
  history: LedgerEntry[]
  /** With `rewards`: what the data owners earned. */
  dataOwners?: DataRewards
  /** With `rewards`: trainer and data-owner credits added up per DID. */
  totals?: Record<string, number>
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Computes balances from verified receipts: each receipt is worth `samples ×
 * creditPerSample` credits (integers: no rounding, no drift) to its issuer, counted once per
 * (did, job, round) — for duplicates the receipt with the smallest hash counts, the others
 * are ignored — and a forfeited DID's entries are kept with 0 credits. Inputs are sorted
 * canonically (code-unit order), so the result, and its JSON, do not depend on their order.
 *
 * @throws {ReceiptMalformedError} `RECEIPT_MALFORMED` for an input that is not a receipt.
 * @throws {LedgerInputError} `LEDGER_INVALID_INPUT` for a bad `creditPerSample`, or a balance
 *   beyond `Number.MAX_SAFE_INTEGER`.
 */
export function computeLedger(verifiedReceipts: readonly string[], opts: LedgerOptions): Ledger {
  const weight = opts.creditPerSample ?? DEFAULT_CREDIT_PER_SAMPLE
  if (!Number.isSafeInteger(weight) || weight < 0) {
    throw new LedgerInputError(`creditPerSample must be a non-negative safe integer, got ${weight}`, {
      creditPerSample: weight
    })
  }
  const forfeited = opts.forfeited
  // One receipt per (did, job, round, exclusions): the one with the smallest hash. A round
  // retrained after unlearning is new work, credited as such.
  const chosen = new Map<string, { hash: string; claims: ReceiptClaims }>()
  for (const jwt of verifiedReceipts) {
    const { claims, hash } = decodeReceipt(jwt)
    const key = JSON.stringify([claims.iss, claims.job, claims.round, exclusionKey(claims)])
    const current = chosen.get(key)
    if (current === undefined || hash < current.hash) chosen.set(key, { hash, claims })
  }
  const policy = opts.unverifiable ?? DEFAULT_UNVERIFIABLE_POLICY
  const policyOf = typeof policy === 'function' ? policy : (): UnverifiablePolicy => policy
  // Each chosen receipt's rule, decided once: 'credit' unless nobody can check its round.
  const ruled = [...chosen.values()].map((c) => {
    const unverifiable = verifiability(c.claims) === 'unverifiable'
    return { ...c, unverifiable, rule: unverifiable ? policyOf(c.claims.job) : ('credit' as const) }
  })
  const history: LedgerEntry[] = ruled
    .filter(({ rule }) => rule !== 'exclude')
    .map(({ hash, claims, rule, unverifiable }) => {
      const lost = forfeited.has(claims.iss)
      const unpaid = lost || rule === 'no-credit'
      const credits = unpaid ? 0 : trainerCredits(claims.samples * weight, opts.rewards ?? {})
      if (!Number.isSafeInteger(credits)) {
        throw new LedgerInputError(`credits ${claims.samples} × ${weight} exceed the safe integer range`, {
          samples: claims.samples,
          creditPerSample: weight
        })
      }
      return {
        did: claims.iss,
        job: claims.job,
        round: claims.round,
        samples: claims.samples,
        credits,
        forfeited: lost,
        ...(unverifiable ? { unverifiable: true as const } : {}),
        receipt: hash
      }
    })
    .sort((a, b) => cmp(a.did, b.did) || cmp(a.job, b.job) || a.round - b.round || cmp(a.receipt, b.receipt))
  const totals = new Map<string, number>()
  for (const e of history) {
    const sum = (totals.get(e.did) ?? 0) + e.credits
    if (!Number.isSafeInteger(sum)) {
      throw new LedgerInputError(`the balance of ${e.did} exceeds the safe integer range`, { did: e.did })
    }
    totals.set(e.did, sum)
  }
  const balances: Record<string, number> = {}
  for (const did of [...totals.keys()].sort(cmp)) balances[did] = totals.get(did)!
  if (opts.rewards === undefined) return { balances, history }
  const paid = ruled.filter(({ rule }) => rule === 'credit')
  const dataOwners = dataRewards(paid, weight, forfeited, opts.rewards)
  return { balances, history, dataOwners, totals: totalBalances(balances, dataOwners.balances) }
}

/**
 * A digest of a ledger for nodes to compare: lowercase hex sha-256 of its JSON
 * (`JSON.stringify`, whose key order `computeLedger` fixes).
 */
export function ledgerHash(ledger: Ledger): string {
  return createHash('sha256').update(JSON.stringify(ledger), 'utf8').digest('hex')
}
