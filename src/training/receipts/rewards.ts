/**
 * Rewards for data: each credited round also credits the owners of the shards it trained on
 * (docs/governance.md, "Rewards for data"). A pure function of the ledger's chosen receipts,
 * the owner of each grant they name, the grants revoked since, and the swarm's reward shares;
 * `computeLedger` calls it when given `rewards`.
 *
 * ```
 * value(round)   = samples × creditPerSample
 * trainer        = ⌊value × trainer% / 100⌋                    (0 when the trainer forfeited)
 * data pool      = ⌊value × data% / 100⌋, split over the round's shards in claim order:
 *                  ⌊pool / n⌋ each, the remainder one credit each to the first shards
 * owner(shard)   = the owner of the grant the receipt names for it
 * forfeited      : the trainer is convicted (its rounds are worth nothing to anyone), or the
 *                  grant was revoked (consent withdrawn: the data is unlearned, and earns nothing)
 * ```
 */
import { LedgerInputError } from './errors.js'
import type { ReceiptClaims } from './claims.js'

/** Reward shares and what the data-owner rewards need to know. */
export interface RewardOptions {
  /** Percent of a round's value credited to its trainer (integer 0–1000; default 100). */
  trainer?: number
  /** Percent of a round's value shared among the owners of its shards (integer 0–1000). */
  data: number
  /** The owner's DID of each grant id the receipts name; a grant with no known owner earns nobody. */
  owners: ReadonlyMap<string, string>
  /** Revoked (or expired) grants: the data credits of rounds under them are forfeited. */
  revoked?: ReadonlySet<string>
}

/** One shard's data reward for one round. */
export interface DataRewardEntry {
  /** The data owner credited. */
  owner: string
  /** The round's trainer. */
  trainer: string
  job: string
  round: number
  shard: string
  grant: string
  credits: number
  /** Why the credits are 0: the trainer was convicted, or the grant revoked. */
  forfeited: 'trainer' | 'revoked' | null
  /** `receiptHash` of the round's receipt. */
  receipt: string
}

/** What data owners earned. */
export interface DataRewards {
  /** Credits per owner DID, keys in ascending order. */
  balances: Record<string, number>
  /** Ordered by (owner, job, round, receipt, shard). */
  history: DataRewardEntry[]
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

function checkShare(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > 1000) {
    throw new LedgerInputError(`the ${name} reward share must be an integer percent in [0, 1000], got ${v}`, {
      [name]: v
    })
  }
}

/** The trainer's credits of a round worth `value`: ⌊value × trainer% / 100⌋. */
export function trainerCredits(value: number, opts: Pick<RewardOptions, 'trainer'>): number {
  const share = opts.trainer ?? 100
  checkShare('trainer', share)
  return share === 100 ? value : Math.floor((value * share) / 100)
}

/**
 * The data owners' credits of the chosen receipts (one per (trainer, job, round)), each
 * worth `samples × creditPerSample`; `forfeited` holds the convicted trainers.
 *
 * @throws {LedgerInputError} `LEDGER_INVALID_INPUT` for a share outside [0, 1000] or a balance
 *   beyond `Number.MAX_SAFE_INTEGER`.
 */
export function dataRewards(
  chosen: ReadonlyArray<{ hash: string; claims: ReceiptClaims }>,
  creditPerSample: number,
  forfeited: ReadonlySet<string>,
  opts: RewardOptions
): DataRewards {
  checkShare('data', opts.data)
  const history: DataRewardEntry[] = []
  for (const { hash, claims } of chosen) {
    const value = claims.samples * creditPerSample
    const pool = Math.floor((value * opts.data) / 100)
    if (!Number.isSafeInteger(pool)) {
      throw new LedgerInputError(`the data credits of a round exceed the safe integer range`, {
        receipt: hash
      })
    }
    const n = claims.shards.length
    const each = Math.floor(pool / n)
    const extra = pool - each * n
    claims.shards.forEach((s, i) => {
      const owner = opts.owners.get(s.grant)
      if (owner === undefined) return
      const lost = forfeited.has(claims.iss)
        ? 'trainer'
        : opts.revoked?.has(s.grant) === true
          ? 'revoked'
          : null
      history.push({
        owner,
        trainer: claims.iss,
        job: claims.job,
        round: claims.round,
        shard: s.cid,
        grant: s.grant,
        credits: lost === null ? each + (i < extra ? 1 : 0) : 0,
        forfeited: lost,
        receipt: hash
      })
    })
  }
  history.sort(
    (a, b) =>
      cmp(a.owner, b.owner) ||
      cmp(a.job, b.job) ||
      a.round - b.round ||
      cmp(a.receipt, b.receipt) ||
      cmp(a.shard, b.shard)
  )
  const totals = new Map<string, number>()
  for (const e of history) {
    const sum = (totals.get(e.owner) ?? 0) + e.credits
    if (!Number.isSafeInteger(sum))
      throw new LedgerInputError(`the balance of ${e.owner} exceeds the safe integer range`, { did: e.owner })
    totals.set(e.owner, sum)
  }
  const balances: Record<string, number> = {}
  for (const did of [...totals.keys()].sort(cmp)) balances[did] = totals.get(did)!
  return { balances, history }
}

/** Trainer and data-owner balances added up per DID (keys in ascending order). */
export function totalBalances(
  ...parts: ReadonlyArray<Readonly<Record<string, number>>>
): Record<string, number> {
  const totals = new Map<string, number>()
  for (const p of parts)
    for (const [did, v] of Object.entries(p)) {
      const sum = (totals.get(did) ?? 0) + v
      if (!Number.isSafeInteger(sum))
        throw new LedgerInputError(`the balance of ${did} exceeds the safe integer range`, { did })
      totals.set(did, sum)
    }
  const out: Record<string, number> = {}
  for (const did of [...totals.keys()].sort(cmp)) out[did] = totals.get(did)!
  return out
}
