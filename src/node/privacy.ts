/**
 * Differential-privacy accounting per dataset on a node. Each round a trainer shares one
 * update privatized with the job's noise multiplier σ (clipped to C as a whole, N(0, (σC)²)
 * noise) computed from its whole shard: one Sampled Gaussian Mechanism step with q = 1, and —
 * for a guarantee about one record — noise multiplier σ/2 relative to the sensitivity 2C (see
 * docs/privacy-accounting.md). A shard's privacy loss composes over every round, by any
 * trainer, whose receipt names it; a dataset's (ε, δ) is the largest of its shards' (its
 * records are partitioned among the shards: parallel composition). A job without privacy
 * noise makes ε infinite. The owner's budget (`privacy.epsMax` at `delta` in a grant) caps
 * how many rounds a grantee may still train on the shards it covers.
 */
import { logger, type Logger } from '../common/index.js'
import type { PrivacyBudget } from '../storage/index.js'
import {
  RdpAccountant,
  computeRdp,
  rdpToEpsilon,
  sharedUpdateStep,
  DEFAULT_ORDERS,
  type SgmSteps,
  dpsgdRoundSteps,
  isDpsgd,
  decodeReceipt,
  type ReceiptClaims,
  type JobSpec
} from '../training/index.js'
import type { NodeDb } from './db.js'

const log = logger('shoal:node:privacy')

/** δ of a budget that names none, and of reports on datasets without a budget. */
export const DEFAULT_DELTA = 1e-5

const NOISELESS: SgmSteps = { q: 1, sigma: 0, steps: 1 }

/**
 * The SGM steps that one round of `spec` adds for a record of a shard trained in it. Whole-update mode: one step
 * with q = 1 and σ/2. DP-SGD: `claims.steps` steps at the (q, σ) the receipt records in `hyper.dp`; without a
 * receipt, a bound that never under-reports (q = 1 and the job's σ for `H` steps; noiseless when σ is solved
 * per node from a target ε).
 */
export function roundStep(
  spec: Pick<JobSpec, 'privacy'> & { hyper?: Pick<JobSpec['hyper'], 'H'> },
  claims?: Pick<ReceiptClaims, 'hyper' | 'steps'>
): SgmSteps {
  const p = spec.privacy
  if (isDpsgd(p)) {
    const dp = (claims?.hyper as { dp?: { sampleRate?: unknown; noiseMultiplier?: unknown } } | undefined)?.dp
    try {
      if (
        claims !== undefined &&
        typeof dp?.sampleRate === 'number' &&
        typeof dp.noiseMultiplier === 'number'
      ) {
        if (p.noiseMultiplier !== undefined && dp.noiseMultiplier < p.noiseMultiplier) return NOISELESS
        return dpsgdRoundSteps(
          { sampleRate: dp.sampleRate, noiseMultiplier: dp.noiseMultiplier },
          claims.steps
        )
      }
      if (claims === undefined && p.noiseMultiplier !== undefined) {
        return dpsgdRoundSteps({ sampleRate: 1, noiseMultiplier: p.noiseMultiplier }, spec.hyper?.H ?? 1)
      }
    } catch {
      // an out-of-range claim is accounted as noiseless
    }
    return NOISELESS
  }
  return sharedUpdateStep({ sampleRate: 1, noiseMultiplier: p?.noiseMultiplier ?? 0, unit: 'record' })
}

/** ε at `delta` after the steps `spent` (Infinity when a step has no noise). */
export function epsilonOf(spent: readonly SgmSteps[], delta: number): number {
  if (spent.length === 0) return 0
  const acc = new RdpAccountant()
  for (const s of spent) acc.step(s)
  return acc.getPrivacySpent(delta).epsilon
}

/**
 * How many more rounds of `spec` fit in `budget` after `spent`: the largest T with
 * ε(spent + T rounds) ≤ epsMax (ε grows with T), at most `cap`. 0 when the job adds no noise.
 */
export function roundsWithin(
  spec: Pick<JobSpec, 'privacy'> & { hyper?: Pick<JobSpec['hyper'], 'H'> },
  budget: PrivacyBudget,
  spent: readonly SgmSteps[],
  cap: number
): number {
  const step = roundStep(spec)
  if (!(step.sigma > 0)) return 0
  const base = new RdpAccountant()
  for (const s of spent) base.step(s)
  const rdp0 = base.rdp
  const per = computeRdp(step.q, step.sigma, step.steps, DEFAULT_ORDERS)
  const eps = (t: number): number =>
    rdpToEpsilon(
      DEFAULT_ORDERS,
      rdp0.map((r, i) => r + t * per[i]!),
      budget.delta
    ).epsilon
  if (eps(0) > budget.epsMax) return 0
  if (eps(cap) <= budget.epsMax) return cap
  let lo = 0 // fits
  let hi = cap // does not
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (eps(mid) <= budget.epsMax) lo = mid
    else hi = mid
  }
  return lo
}

/** One shard's privacy loss. */
export interface ShardPrivacy {
  cid: string
  /** Rounds (receipts) that trained on it, all trainers and jobs. */
  rounds: number
  epsilon: number | null
  /** Per job: rounds and its noise multiplier (null: the job adds no noise). */
  jobs: Array<{ job: string; rounds: number; noiseMultiplier: number | null }>
}

/** The privacy report of a dataset. */
export interface DatasetPrivacy {
  dataset: string
  delta: number
  /** The dataset's ε: the largest of its shards' (null = unbounded: a round without noise). */
  epsilon: number | null
  /** The smallest budget its grants set (null: none). */
  epsMax: number | null
  unit: 'record'
  shards: ShardPrivacy[]
}

export interface PrivacyComponents {
  /** The node\'s logger for this service (carries the node id); default: a module logger. */
  log?: Logger
  db: NodeDb
  /** The verified spec of a job this node knows (undefined when unknown). */
  job(id: string): Promise<JobSpec | undefined>
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null)

/** Privacy accounting over the receipts stored on a node. */
export class NodePrivacy {
  private readonly log: Logger
  private readonly c: PrivacyComponents

  constructor(components: PrivacyComponents) {
    this.log = components.log ?? log
    this.c = components
  }

  /** SGM steps per shard CID, from every stored receipt naming it (optionally one issuer's). */
  async spentByShard(opts: { issuer?: string } = {}): Promise<Map<string, Map<string, SgmSteps>>> {
    const out = new Map<string, Map<string, SgmSteps>>()
    const specs = new Map<string, JobSpec | undefined>()
    for (const r of await this.c.db.list('receipts')) {
      if (opts.issuer !== undefined && r.issuer !== opts.issuer) continue
      if (!specs.has(r.job)) specs.set(r.job, await this.c.job(r.job).catch(() => undefined))
      const spec = specs.get(r.job)
      let claims: ReceiptClaims
      try {
        claims = decodeReceipt(r.jwt).claims
      } catch {
        continue
      }
      // An unknown job is accounted as noiseless: ε must never be under-reported.
      const step = roundStep(spec ?? { privacy: null }, claims)
      for (const cid of claims.shards.map((s) => s.cid)) {
        let perJob = out.get(cid)
        if (perJob === undefined) out.set(cid, (perJob = new Map()))
        // DP-SGD rounds of one job may differ in (q, σ) between trainers: one entry per pair.
        const key = isDpsgd(spec?.privacy) ? `${r.job}#${step.q}:${step.sigma}` : r.job
        const cur = perJob.get(key)
        if (cur === undefined) perJob.set(key, { ...step })
        else cur.steps += step.steps
      }
    }
    return out
  }

  /** The (ε, δ) of a dataset's shards over the stored receipts. */
  async report(
    dataset: string,
    shards: readonly string[],
    budgets: readonly PrivacyBudget[]
  ): Promise<DatasetPrivacy> {
    const delta = budgets.length > 0 ? Math.min(...budgets.map((b) => b.delta)) : DEFAULT_DELTA
    const epsMax = budgets.length > 0 ? Math.min(...budgets.map((b) => b.epsMax)) : null
    const spent = await this.spentByShard()
    const rows: ShardPrivacy[] = shards.map((cid) => {
      const perJob = spent.get(cid) ?? new Map<string, SgmSteps>()
      const steps = [...perJob.values()]
      return {
        cid,
        rounds: steps.reduce((n, s) => n + s.steps, 0),
        epsilon: finite(epsilonOf(steps, delta)),
        // DP-SGD entries (keyed `job#q:σ`) count steps, not rounds, and their σ is the accountant's.
        jobs: [...perJob].map(([key, s]) => ({
          job: key.split('#')[0]!,
          rounds: s.steps,
          noiseMultiplier: s.sigma > 0 ? (key.includes('#') ? s.sigma : s.sigma * 2) : null
        }))
      }
    })
    const worst = rows.reduce((m, r) => Math.max(m, r.epsilon ?? Infinity), 0)
    const report: DatasetPrivacy = {
      dataset,
      delta,
      epsilon: finite(worst),
      epsMax,
      unit: 'record',
      shards: rows
    }
    this.log.debug({ dataset, epsilon: report.epsilon, epsMax }, 'privacy report')
    return report
  }
}
