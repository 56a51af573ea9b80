/**
 * Swarm governance: the members of a governed swarm decide by DID-signed, content-addressed
 * documents — a founder-signed **constitution** (rules per kind of proposal, voting windows,
 * what the founders' key may still do, the starting policy), **proposals** (admit or remove a
 * member, start a job, change a policy, a free-text resolution; each names its window and
 * rule), members' **votes** (yes / no / abstain; the latest signed in the window counts) and
 * founders' **decrees** (bootstrap admissions, emergency removals, as far as the constitution
 * allows). The outcome is a pure function of the documents (`computeGovernance`), so every
 * member computes it alone; documents that do not count are listed with a reason. See
 * docs/governance.md.
 *
 * @example
 * ```ts
 * import { Identity, generateKeypair } from '../../identity/index.js'
 * import {
 *   computeGovernance, constitutionClaims, documentHash, signConstitution, signProposal, signVote, verifyDocument
 * } from './index.js'
 * import type { VerifiedDocument } from './index.js'
 *
 * const founder = Identity.fromKeypair(generateKeypair())
 * const alice = Identity.fromKeypair(generateKeypair())
 * const bob = Identity.fromKeypair(generateKeypair())
 * const swarm = { id: 'swarm-1', founders: [founder.did] }
 * const law = constitutionClaims({ members: [alice.did] }, { swarm: swarm.id, creator: alice.did, founder: founder.did, now: 1000 })
 * const { kind: _k, iss: _i, ...input } = law
 * const constitution = await signConstitution(founder, input)
 * const proposal = await signProposal(alice, {
 *   iat: 1000, swarm: swarm.id, constitution: documentHash(constitution), title: 'admit bob',
 *   action: { type: 'admit', member: bob.did }, opens: 1000, closes: 1100, rule: law.rules.admit
 * })
 * const vote = await signVote(alice, { iat: 1010, swarm: swarm.id, proposal: documentHash(proposal), choice: 'yes' })
 * const docs: VerifiedDocument[] = []
 * for (const jwt of [constitution, proposal, vote]) {
 *   const r = await verifyDocument(jwt, { swarm: swarm.id, now: 1200 })
 *   if (r.ok) docs.push(r.doc)
 * }
 * const state = computeGovernance(docs, { swarm, now: 1200 })
 * state.proposals[0]?.status // 'passed'
 * state.members.includes(bob.did) // true
 * ```
 */
export {
  ActionSchema,
  ConstitutionClaimsSchema,
  DecreeClaimsSchema,
  FractionSchema,
  PolicySchema,
  ProposalClaimsSchema,
  RuleSchema,
  VoteClaimsSchema,
  decodeDocument,
  documentHash,
  signConstitution,
  signDecree,
  signProposal,
  signVote,
  verifyDocument,
  type Action,
  type Choice,
  type ConstitutionClaims,
  type DecreeClaims,
  type DocumentCheck,
  type Fraction,
  type GovernanceClaims,
  type Policy,
  type ProposalClaims,
  type ProposalType,
  type Rule,
  type VerifiedDocument,
  type VoteClaims
} from './documents.js'
export {
  ConstitutionFileSchema,
  DEFAULT_POLICY,
  DEFAULT_RULES,
  SIMPLE_MAJORITY,
  TWO_THIRDS,
  constitutionClaims,
  sameRule,
  type ConstitutionFile
} from './constitution.js'
export {
  computeGovernance,
  logHead,
  quorumMet,
  thresholdMet,
  type CountedVote,
  type GovernanceContext,
  type GovernanceState,
  type MembershipEvent,
  type ProposalState,
  type Rejection
} from './tally.js'
export {
  GOVERNANCE_TOPIC_MAX_BYTES,
  GovernanceMessageSchema,
  governanceTopic,
  governanceTopicName,
  type GovernanceMessage
} from './topic.js'
export { jobPolicyProblem, type PolicyJobSpec } from './policy.js'
export {
  STATEMENT_KIND,
  StatementClaimsSchema,
  balancesHash,
  signStatement,
  verifyStatement,
  type StatementClaims
} from './statement.js'
export { GovernanceError, type GovernanceErrorCode, type GovernanceRejectReason } from './errors.js'
export * as governanceConstants from './constants.js'
