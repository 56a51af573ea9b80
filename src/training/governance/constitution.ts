/**
 * The default constitution of a governed swarm, and how a file's constitution is completed
 * from it (`shoal swarm create --governed --constitution file`).
 */
import { z } from 'zod'
import {
  DEFAULT_DATA_SHARE_PERCENT,
  DEFAULT_FOUNDER_ADMIT_S,
  DEFAULT_MAX_WINDOW_S,
  DEFAULT_MIN_WINDOW_S,
  DEFAULT_TRAINER_SHARE_PERCENT
} from './constants.js'
import {
  ConstitutionClaimsSchema,
  PolicySchema,
  RuleSchema,
  type ConstitutionClaims,
  type Policy,
  type Rule
} from './documents.js'
import { GovernanceError } from './errors.js'

/** More than half of the yes and no weight. */
export const SIMPLE_MAJORITY: Rule = { quorum: [1, 2], threshold: [1, 2], strict: true }
/** At least two thirds of the yes and no weight. */
export const TWO_THIRDS: Rule = { quorum: [1, 2], threshold: [2, 3], strict: false }

/** The rules a constitution starts from. */
export const DEFAULT_RULES: ConstitutionClaims['rules'] = {
  admit: SIMPLE_MAJORITY,
  remove: TWO_THIRDS,
  job: SIMPLE_MAJORITY,
  policy: TWO_THIRDS,
  resolution: { quorum: [1, 3], threshold: [1, 2], strict: true }
}

/** The policy a constitution starts from. */
export const DEFAULT_POLICY: Required<Pick<Policy, 'rewards'>> & Policy = {
  rewards: { trainer: DEFAULT_TRAINER_SHARE_PERCENT, data: DEFAULT_DATA_SHARE_PERCENT }
}

/** What a constitution file may say: every field optional, completed by {@link constitutionClaims}. */
export const ConstitutionFileSchema = z.strictObject({
  members: z.array(z.string()).optional(),
  rules: z
    .strictObject({
      admit: RuleSchema.optional(),
      remove: RuleSchema.optional(),
      job: RuleSchema.optional(),
      policy: RuleSchema.optional(),
      resolution: RuleSchema.optional()
    })
    .optional(),
  window: z.strictObject({ min: z.int().min(1).optional(), max: z.int().min(1).optional() }).optional(),
  weighting: z.enum(['member', 'credits']).optional(),
  founders: z
    .strictObject({
      /** Seconds after creation during which the founders' key may admit by decree (null: never). */
      admitFor: z.int().min(0).nullable().optional(),
      remove: z.boolean().optional()
    })
    .optional(),
  policy: PolicySchema.optional()
})
export type ConstitutionFile = z.infer<typeof ConstitutionFileSchema>

/**
 * The claims of a swarm's constitution: `file` (parsed JSON, may be empty) completed with the
 * defaults; `members` defaults to the creating node.
 *
 * @throws {GovernanceError} `GOVERNANCE_INVALID_INPUT` for a file outside the schema.
 */
export function constitutionClaims(
  file: unknown,
  init: { swarm: string; creator: string; founder: string; now?: number }
): ConstitutionClaims {
  const parsed = ConstitutionFileSchema.safeParse(file ?? {})
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    throw new GovernanceError('GOVERNANCE_INVALID_INPUT', `not a constitution: ${detail}`, { issues: detail })
  }
  const f = parsed.data
  const iat = init.now ?? Math.floor(Date.now() / 1000)
  const admitFor = f.founders?.admitFor === undefined ? DEFAULT_FOUNDER_ADMIT_S : f.founders.admitFor
  const claims = {
    kind: 'shoal.gov.constitution/1' as const,
    iss: init.founder,
    iat,
    swarm: init.swarm,
    members: f.members ?? [init.creator],
    rules: { ...DEFAULT_RULES, ...f.rules },
    window: { min: f.window?.min ?? DEFAULT_MIN_WINDOW_S, max: f.window?.max ?? DEFAULT_MAX_WINDOW_S },
    weighting: f.weighting ?? 'member',
    founders: { admitUntil: admitFor === null ? null : iat + admitFor, remove: f.founders?.remove ?? true },
    policy: { ...DEFAULT_POLICY, ...f.policy }
  }
  const checked = ConstitutionClaimsSchema.safeParse(claims)
  if (!checked.success) {
    const detail = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    throw new GovernanceError('GOVERNANCE_INVALID_INPUT', `not a constitution: ${detail}`, { issues: detail })
  }
  return checked.data
}

/** Whether two rules are the same. */
export function sameRule(a: Rule, b: Rule): boolean {
  return (
    a.quorum[0] === b.quorum[0] &&
    a.quorum[1] === b.quorum[1] &&
    a.threshold[0] === b.threshold[0] &&
    a.threshold[1] === b.threshold[1] &&
    a.strict === b.strict
  )
}
