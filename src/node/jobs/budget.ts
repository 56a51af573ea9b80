/**
 * The rounds a node may still train a job on its shards under their grants' privacy budgets
 * (ε of every round by anyone on the shard so far, plus this job's rounds, ≤ ε_max at δ).
 */
import type { PrivacyBudget } from '../../storage/index.js'
import type { JobSpec, SgmSteps } from '../../training/index.js'
import { roundsWithin } from '../privacy.js'
import type { GrantedShard } from './data.js'
import { JobRequestError } from './errors.js'

export interface BudgetInput {
  spec: JobSpec
  shards: readonly GrantedShard[]
  /** SGM steps spent so far, per shard CID (`NodePrivacy.spentByShard`). */
  spent: ReadonlyMap<string, ReadonlyMap<string, SgmSteps>>
  /** The privacy budget a grant sets (undefined: none). */
  budget(grant: string): Promise<PrivacyBudget | undefined>
}

/**
 * The shards that still have budget, and the rounds all of them allow (Infinity when no grant
 * sets a budget); shards whose budget is spent are left out.
 *
 * @throws {JobRequestError} `JOB_PRIVACY_BUDGET` when no shard has budget left (or the job adds no noise).
 */
export async function budgetAllowance(
  input: BudgetInput
): Promise<{ shards: GrantedShard[]; rounds: number; refused: string[] }> {
  const { spec } = input
  const cap = spec.hyper.rounds ?? Number.MAX_SAFE_INTEGER
  const kept: GrantedShard[] = []
  const refused: string[] = []
  let rounds = Infinity
  for (const s of input.shards) {
    const budget = await input.budget(s.grant)
    if (budget === undefined) {
      kept.push(s)
      continue
    }
    const n = roundsWithin(spec, budget, [...(input.spent.get(s.cid)?.values() ?? [])], cap)
    if (n === 0) {
      refused.push(s.cid)
      continue
    }
    kept.push(s)
    rounds = Math.min(rounds, n)
  }
  if (kept.length === 0) {
    throw new JobRequestError(
      'JOB_PRIVACY_BUDGET',
      spec.privacy === undefined || spec.privacy === null
        ? `the owners' grants set a privacy budget and job "${spec.name}" adds no DP noise: it may not train on their data`
        : `the privacy budget of every granted shard is spent (${refused.length} shards)`,
      { shards: refused }
    )
  }
  return { shards: kept, rounds, refused }
}
