/**
 * What a swarm policy means for a job: a governed swarm runs a job only when its spec keeps to
 * the policy in force — its aggregation rule, its minimum differential-privacy guarantee, and
 * what its unverifiable rounds earn.
 */
import type { Policy } from './documents.js'

/** The parts of a job spec the policy constrains (structurally, a `JobSpec`). */
export interface PolicyJobSpec {
  aggregation: string
  privacy?: {
    mode?: string
    clipNorm: number
    noiseMultiplier?: number
    targetEpsilon?: number
    delta?: number
  } | null
  unverifiable?: string
}

/**
 * Why a job breaks the policy, or undefined when it keeps to it:
 * - `aggregation`: the policy names a rule and the job uses another;
 * - `minDp`: the policy asks for (ε, δ)-DP at least as strong as its `minDp`, which a spec shows
 *   only as DP-SGD with `targetEpsilon ≤ ε` and `delta ≤ δ` (a noise multiplier alone, or
 *   whole-update noise, gives an ε that depends on the run and cannot be checked up front);
 * - `unverifiable`: the policy fixes what unverifiable rounds earn and the job says otherwise
 *   (a job that says nothing earns `no-credit`).
 */
export function jobPolicyProblem(spec: PolicyJobSpec, policy: Policy): string | undefined {
  if (policy.aggregation !== undefined && spec.aggregation !== policy.aggregation)
    return `aggregation ${spec.aggregation}: the swarm's policy is ${policy.aggregation}`
  const min = policy.minDp
  if (min !== undefined && min !== null) {
    const p = spec.privacy
    if (p === undefined || p === null)
      return `no differential privacy: the policy asks for ε ≤ ${min.epsilon}`
    if (p.mode !== 'dp-sgd' || p.targetEpsilon === undefined || p.delta === undefined)
      return `the job's ε cannot be checked from its spec: the policy asks for DP-SGD with targetEpsilon ≤ ${min.epsilon}`
    if (p.targetEpsilon > min.epsilon || p.delta > min.delta)
      return `(ε ${p.targetEpsilon}, δ ${p.delta}) is weaker than the policy's (ε ${min.epsilon}, δ ${min.delta})`
  }
  if (policy.unverifiable !== undefined && (spec.unverifiable ?? 'no-credit') !== policy.unverifiable)
    return `unverifiable rounds earn ${spec.unverifiable ?? 'no-credit'}: the swarm's policy is ${policy.unverifiable}`
  return undefined
}
