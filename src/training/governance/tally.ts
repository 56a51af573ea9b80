/**
 * The state of a governed swarm as a pure function of its documents: which constitution rules,
 * who is a member when, each proposal's tally and outcome, the policy in force, the jobs the
 * members approved, and every document that does not count with the reason why. Every member
 * that holds the same documents computes the same state, whatever order they arrived in.
 *
 * The documents form a hash-linked log rooted at the constitution: proposals and decrees name
 * the constitution's hash, votes name their proposal's hash. {@link logHead} digests the set.
 */
import { createHash } from 'node:crypto'
import { GOVERNANCE_SKEW_S } from './constants.js'
import { sameRule } from './constitution.js'
import type {
  Action,
  Choice,
  ConstitutionClaims,
  DecreeClaims,
  Policy,
  ProposalClaims,
  Rule,
  VerifiedDocument,
  VoteClaims
} from './documents.js'
import type { GovernanceRejectReason } from './errors.js'

/** The context a state is computed in. */
export interface GovernanceContext {
  /** The swarm: its id and its founders' DIDs (who may sign the constitution and decrees). */
  swarm: { id: string; founders: readonly string[] }
  /** Unix seconds: proposals whose window closed by then are decided. */
  now: number
  /** Verified ledger credits per DID, for a constitution that weighs votes by credits. */
  credits?: Readonly<Record<string, number>>
}

/** A document that does not count, and why. */
export interface Rejection {
  hash: string
  kind: VerifiedDocument['kind']
  author: string
  reason: GovernanceRejectReason
  detail: string
}

/** A vote that counts. */
export interface CountedVote {
  voter: string
  choice: Choice
  weight: number
  vote: string
  iat: number
}

/** A proposal, its tally and its outcome. */
export interface ProposalState {
  hash: string
  proposer: string
  title: string
  action: Action
  iat: number
  opens: number
  closes: number
  rule: Rule
  /** `pending` before its window opens, `open` during it, then `passed` or `failed`. */
  status: 'pending' | 'open' | 'passed' | 'failed'
  /** Why it passed or failed (or how it stands while open). */
  outcome: string
  /** Members at the proposal's creation (only they may vote), sorted. */
  electorate: string[]
  /** Their total weight. */
  weight: number
  yes: number
  no: number
  abstain: number
  quorumMet: boolean
  thresholdMet: boolean
  /** The vote that counts for each voter (the latest one signed in the window), by voter. */
  votes: CountedVote[]
  /** Valid votes that a later vote of the same member replaced. */
  superseded: number
}

/** A change of membership, in time order. */
export interface MembershipEvent {
  did: string
  change: 'admit' | 'remove'
  /** Unix seconds: the constitution's `iat`, a decree's `iat`, or a passed proposal's close. */
  at: number
  by: 'genesis' | 'decree' | 'proposal'
  /** The document that made it. */
  source: string
}

/** The state of a governed swarm. */
export interface GovernanceState {
  /** The constitution in force (null: none known yet). */
  constitution: { hash: string; claims: ConstitutionClaims } | null
  /** Members now, sorted. */
  members: string[]
  /** DIDs removed and not admitted again, with when, sorted by DID. */
  removed: Array<{ did: string; at: number }>
  events: MembershipEvent[]
  /** The policy now: the constitution's, changed by each passed policy proposal in close order. */
  policy: Policy
  /** Proposals that count, by (iat, hash). */
  proposals: ProposalState[]
  /** Jobs approved by a passed job proposal, sorted. */
  approvedJobs: string[]
  /** Documents that do not count, by hash. */
  rejected: Rejection[]
  /** Rejections per reason. */
  counts: Partial<Record<GovernanceRejectReason, number>>
  /** Documents that count (the constitution, decrees, proposals, counted or superseded votes). */
  accepted: number
  /** {@link logHead} of every document given. */
  head: string
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** The digest of a set of documents: hex sha-256 of their sorted, distinct hashes joined by `\n`. */
export function logHead(hashes: Iterable<string>): string {
  return createHash('sha256')
    .update([...new Set(hashes)].sort(cmp).join('\n'))
    .digest('hex')
}

/** `yes` reaches `threshold` of `yes + no` (strictly more than it when `strict`). */
export function thresholdMet(rule: Rule, yes: number, no: number): boolean {
  if (yes + no === 0) return false
  const [n, d] = rule.threshold
  return rule.strict ? yes * d > n * (yes + no) : yes * d >= n * (yes + no)
}

/** The weight that voted reaches `quorum` of the electorate's weight. */
export function quorumMet(rule: Rule, voted: number, total: number): boolean {
  const [n, d] = rule.quorum
  return total > 0 && voted * d >= n * total
}

/** Membership over time: the events of each DID, in order. */
class Timeline {
  private readonly byDid = new Map<string, MembershipEvent[]>()
  readonly all: MembershipEvent[] = []

  add(e: MembershipEvent): void {
    const list = this.byDid.get(e.did) ?? []
    list.push(e)
    list.sort((a, b) => a.at - b.at || cmp(a.source, b.source))
    this.byDid.set(e.did, list)
    this.all.push(e)
  }

  /** The last event of `did` at or before `t`. */
  last(did: string, t: number): MembershipEvent | undefined {
    let found: MembershipEvent | undefined
    for (const e of this.byDid.get(did) ?? []) if (e.at <= t) found = e
    return found
  }

  isMember(did: string, t: number): boolean {
    return this.last(did, t)?.change === 'admit'
  }

  /** Why `did` may not act at `t`: removed, or never a member; undefined when it is a member. */
  why(did: string, t: number): 'removed' | 'not-member' | undefined {
    const e = this.last(did, t)
    if (e?.change === 'admit') return undefined
    return e?.change === 'remove' ? 'removed' : 'not-member'
  }

  membersAt(t: number): string[] {
    return [...this.byDid.keys()].filter((d) => this.isMember(d, t)).sort(cmp)
  }
}

type Doc<K extends VerifiedDocument['kind']> = Extract<VerifiedDocument, { kind: K }>

/**
 * Computes the state of a governed swarm from its documents (each already verified on its own
 * by `verifyDocument`). Pure: the same documents and context give the same state.
 *
 * - The constitution is the founder-signed one for this swarm with the smallest (iat, hash);
 *   others are `wrong-constitution`. Without one, nothing counts yet.
 * - Membership: the constitution's members from its `iat`; founders' decrees at their `iat`
 *   (as far as the constitution allows); passed admit/remove proposals at their close.
 * - A proposal counts when its author was a member at its `iat`, its window is possible and
 *   within the constitution's bounds, and it names the constitution's rule for its kind.
 * - A vote counts when its author was in the proposal's electorate (members at the proposal's
 *   `iat`), was not removed by the vote's `iat`, and signed it inside the window; of one
 *   member's votes the latest (by iat, seq, then hash) counts, the others are `superseded`.
 * - A proposal is decided once `now ≥ closes`: passed when the quorum voted and yes reached the
 *   threshold of yes and no.
 */
export function computeGovernance(
  docs: readonly VerifiedDocument[],
  ctx: GovernanceContext
): GovernanceState {
  const rejected: Rejection[] = []
  const reject = (doc: VerifiedDocument, reason: GovernanceRejectReason, detail: string): void => {
    rejected.push({ hash: doc.hash, kind: doc.kind, author: doc.claims.iss, reason, detail })
  }
  // Distinct documents, in a canonical order.
  const seen = new Set<string>()
  const unique: VerifiedDocument[] = []
  for (const d of docs) {
    if (seen.has(d.hash)) reject(d, 'duplicate', 'the same document again')
    else {
      seen.add(d.hash)
      unique.push(d)
    }
  }
  unique.sort((a, b) => a.claims.iat - b.claims.iat || cmp(a.hash, b.hash))
  const head = logHead(seen)
  const founders = new Set(ctx.swarm.founders)
  const future = ctx.now + GOVERNANCE_SKEW_S

  const constitutions: Array<Doc<'constitution'>> = []
  const decrees: Array<Doc<'decree'>> = []
  const proposals: Array<Doc<'proposal'>> = []
  const votes: Array<Doc<'vote'>> = []
  for (const d of unique) {
    if (d.claims.swarm !== ctx.swarm.id) {
      reject(d, 'wrong-swarm', `signed for swarm ${d.claims.swarm}`)
      continue
    }
    if (d.claims.iat > future) {
      reject(d, 'future', `issued at ${d.claims.iat}, after ${ctx.now}`)
      continue
    }
    if (d.kind === 'constitution') constitutions.push(d)
    else if (d.kind === 'decree') decrees.push(d)
    else if (d.kind === 'proposal') proposals.push(d)
    else votes.push(d)
  }

  let constitution: Doc<'constitution'> | undefined
  for (const c of constitutions) {
    if (!founders.has(c.claims.iss)) reject(c, 'not-founder', `${c.claims.iss} is not a founder of the swarm`)
    else if (constitution === undefined) constitution = c
    else reject(c, 'wrong-constitution', `the swarm's constitution is ${constitution.hash}`)
  }
  const base = {
    rejected,
    head
  }
  if (constitution === undefined) {
    for (const d of [...decrees, ...proposals, ...votes])
      reject(d, 'wrong-constitution', 'no constitution of this swarm is known')
    return finish({
      constitution: null,
      members: [],
      removed: [],
      events: [],
      policy: {},
      proposals: [],
      approvedJobs: [],
      accepted: 0,
      ...base
    })
  }
  const law = constitution.claims
  const timeline = new Timeline()
  for (const did of [...new Set(law.members)].sort(cmp))
    timeline.add({ did, change: 'admit', at: law.iat, by: 'genesis', source: constitution.hash })
  let accepted = 1

  // Votes by proposal.
  const ballots = new Map<string, Array<Doc<'vote'>>>()
  for (const v of votes) {
    const list = ballots.get(v.claims.proposal) ?? []
    list.push(v)
    ballots.set(v.claims.proposal, list)
  }

  // One sweep in time order: decrees at their iat, proposals at their close.
  type Item = { at: number; hash: string; decree?: Doc<'decree'>; proposal?: Doc<'proposal'> }
  const items: Item[] = []
  for (const d of decrees) {
    if (d.claims.constitution !== constitution.hash) {
      reject(d, 'wrong-constitution', `names constitution ${d.claims.constitution}`)
      continue
    }
    items.push({ at: d.claims.iat, hash: d.hash, decree: d })
  }
  const known = new Set<string>()
  for (const p of proposals) {
    const c = p.claims
    known.add(p.hash)
    if (c.constitution !== constitution.hash) {
      reject(p, 'wrong-constitution', `names constitution ${c.constitution}`)
      continue
    }
    const length = c.closes - c.opens
    if (
      c.closes <= c.opens ||
      c.opens + GOVERNANCE_SKEW_S < c.iat ||
      length < law.window.min ||
      length > law.window.max
    ) {
      reject(
        p,
        'bad-window',
        `window [${c.opens}, ${c.closes}] of a proposal issued at ${c.iat}; the constitution allows ${law.window.min}–${law.window.max} s`
      )
      continue
    }
    if (!sameRule(c.rule, law.rules[c.action.type])) {
      reject(
        p,
        'rule-mismatch',
        `the constitution's rule for ${c.action.type} is ${JSON.stringify(law.rules[c.action.type])}`
      )
      continue
    }
    items.push({ at: c.closes, hash: p.hash, proposal: p })
  }
  items.sort((a, b) => a.at - b.at || cmp(a.hash, b.hash))

  const states: ProposalState[] = []
  const valid = new Set<string>()
  const policyChanges: Array<{ at: number; hash: string; changes: Policy }> = []
  const approved = new Set<string>()
  for (const item of items) {
    if (item.decree !== undefined) {
      const d = item.decree
      if (decree(d, law, founders, timeline, reject)) accepted++
      continue
    }
    const p = item.proposal!
    const c = p.claims
    const why = timeline.why(c.iss, c.iat)
    if (why !== undefined) {
      reject(
        p,
        why,
        why === 'removed' ? `${c.iss} had been removed` : `${c.iss} was not a member at ${c.iat}`
      )
      continue
    }
    const target = targetProblem(c.action, timeline, c.iat)
    if (target !== undefined) {
      reject(p, 'target', target)
      continue
    }
    valid.add(p.hash)
    accepted++
    const state = tally(p, ballots.get(p.hash) ?? [], timeline, law, ctx, reject)
    accepted += state.votes.length + state.superseded
    states.push(state)
    if (state.status !== 'passed') continue
    const a = c.action
    if (a.type === 'admit')
      timeline.add({ did: a.member, change: 'admit', at: c.closes, by: 'proposal', source: p.hash })
    else if (a.type === 'remove')
      timeline.add({ did: a.member, change: 'remove', at: c.closes, by: 'proposal', source: p.hash })
    else if (a.type === 'job') approved.add(a.job)
    else if (a.type === 'policy') policyChanges.push({ at: c.closes, hash: p.hash, changes: a.changes })
  }
  for (const [proposal, list] of ballots) {
    if (valid.has(proposal)) continue
    const reason: GovernanceRejectReason = known.has(proposal) ? 'proposal-invalid' : 'unknown-proposal'
    for (const v of list)
      reject(
        v,
        reason,
        `proposal ${proposal} ${reason === 'unknown-proposal' ? 'is unknown' : 'does not count'}`
      )
  }

  let policy: Policy = { ...law.policy }
  for (const ch of policyChanges) policy = { ...policy, ...ch.changes }
  const removed: Array<{ did: string; at: number }> = []
  const events = [...timeline.all].sort((a, b) => a.at - b.at || cmp(a.did, b.did) || cmp(a.source, b.source))
  const lastOf = new Map<string, MembershipEvent>()
  for (const e of events) if (e.at <= ctx.now) lastOf.set(e.did, e)
  for (const [did, e] of [...lastOf].sort((a, b) => cmp(a[0], b[0])))
    if (e.change === 'remove') removed.push({ did, at: e.at })
  return finish({
    constitution: { hash: constitution.hash, claims: law },
    members: timeline.membersAt(ctx.now),
    removed,
    events,
    policy,
    proposals: states.sort((a, b) => a.iat - b.iat || cmp(a.hash, b.hash)),
    approvedJobs: [...approved].sort(cmp),
    accepted,
    ...base
  })
}

function finish(s: Omit<GovernanceState, 'counts'>): GovernanceState {
  const rejected = [...s.rejected].sort((a, b) => cmp(a.hash, b.hash) || cmp(a.reason, b.reason))
  const counts: Partial<Record<GovernanceRejectReason, number>> = {}
  for (const r of rejected) counts[r.reason] = (counts[r.reason] ?? 0) + 1
  return { ...s, rejected, counts }
}

function targetProblem(action: Action, timeline: Timeline, at: number): string | undefined {
  if (action.type === 'admit' && timeline.isMember(action.member, at))
    return `${action.member} is already a member`
  if (action.type === 'remove' && !timeline.isMember(action.member, at))
    return `${action.member} is not a member`
  return undefined
}

/** Applies a founders' decree when the constitution allows it; false when it was refused. */
function decree(
  d: Extract<VerifiedDocument, { kind: 'decree' }>,
  law: ConstitutionClaims,
  founders: ReadonlySet<string>,
  timeline: Timeline,
  reject: (doc: VerifiedDocument, reason: GovernanceRejectReason, detail: string) => void
): boolean {
  const c: DecreeClaims = d.claims
  if (!founders.has(c.iss)) {
    reject(d, 'not-founder', `${c.iss} is not a founder of the swarm`)
    return false
  }
  const a = c.action
  if (a.type === 'admit' && (law.founders.admitUntil === null || c.iat > law.founders.admitUntil)) {
    reject(d, 'founder-power', 'the constitution no longer lets the founders admit members')
    return false
  }
  if (a.type === 'remove' && !law.founders.remove) {
    reject(d, 'founder-power', 'the constitution does not let the founders remove members')
    return false
  }
  const target = targetProblem(a, timeline, c.iat)
  if (target !== undefined) {
    reject(d, 'target', target)
    return false
  }
  timeline.add({ did: a.member, change: a.type, at: c.iat, by: 'decree', source: d.hash })
  return true
}

function tally(
  p: Extract<VerifiedDocument, { kind: 'proposal' }>,
  ballots: Array<Extract<VerifiedDocument, { kind: 'vote' }>>,
  timeline: Timeline,
  law: ConstitutionClaims,
  ctx: GovernanceContext,
  reject: (doc: VerifiedDocument, reason: GovernanceRejectReason, detail: string) => void
): ProposalState {
  const c: ProposalClaims = p.claims
  const electorate = timeline.membersAt(c.iat)
  const inElectorate = new Set(electorate)
  const weightOf = (did: string): number =>
    law.weighting === 'credits' ? 1 + Math.max(0, Math.floor(ctx.credits?.[did] ?? 0)) : 1
  const latest = new Map<string, Extract<VerifiedDocument, { kind: 'vote' }>>()
  let superseded = 0
  const sorted = [...ballots].sort(
    (a, b) => a.claims.iat - b.claims.iat || (a.claims.seq ?? 0) - (b.claims.seq ?? 0) || cmp(a.hash, b.hash)
  )
  for (const v of sorted) {
    const vc: VoteClaims = v.claims
    if (!inElectorate.has(vc.iss)) {
      const why = timeline.why(vc.iss, c.iat) ?? 'not-member'
      reject(v, why, `${vc.iss} was not a member when the proposal was made`)
      continue
    }
    if (timeline.why(vc.iss, vc.iat) === 'removed') {
      reject(v, 'removed', `${vc.iss} had been removed when it voted`)
      continue
    }
    if (vc.iat < c.opens) {
      reject(v, 'too-early', `signed at ${vc.iat}, the window opens at ${c.opens}`)
      continue
    }
    if (vc.iat > c.closes) {
      reject(v, 'after-close', `signed at ${vc.iat}, the window closed at ${c.closes}`)
      continue
    }
    if (latest.has(vc.iss)) superseded++
    latest.set(vc.iss, v)
  }
  const counted: CountedVote[] = [...latest.values()]
    .map((v) => ({
      voter: v.claims.iss,
      choice: v.claims.choice,
      weight: weightOf(v.claims.iss),
      vote: v.hash,
      iat: v.claims.iat
    }))
    .sort((a, b) => cmp(a.voter, b.voter))
  const sum = (choice: Choice): number =>
    counted.filter((v) => v.choice === choice).reduce((s, v) => s + v.weight, 0)
  const yes = sum('yes')
  const no = sum('no')
  const abstain = sum('abstain')
  const weight = electorate.reduce((s, d) => s + weightOf(d), 0)
  const q = quorumMet(c.rule, yes + no + abstain, weight)
  const t = thresholdMet(c.rule, yes, no)
  const decided = ctx.now >= c.closes
  const status = !decided ? (ctx.now < c.opens ? 'pending' : 'open') : q && t ? 'passed' : 'failed'
  const outcome = !q
    ? `quorum not met: ${yes + no + abstain} of ${weight} voted, ${c.rule.quorum[0]}/${c.rule.quorum[1]} needed`
    : !t
      ? `threshold not met: ${yes} yes, ${no} no; ${c.rule.strict ? 'more than' : 'at least'} ${c.rule.threshold[0]}/${c.rule.threshold[1]} needed`
      : `${yes} yes, ${no} no, ${abstain} abstain of ${weight}`
  return {
    hash: p.hash,
    proposer: c.iss,
    title: c.title,
    action: c.action,
    iat: c.iat,
    opens: c.opens,
    closes: c.closes,
    rule: c.rule,
    status,
    outcome: decided ? outcome : `so far: ${outcome}`,
    electorate,
    weight,
    yes,
    no,
    abstain,
    quorumMet: q,
    thresholdMet: t,
    votes: counted,
    superseded
  }
}
