/**
 * Swarm governance on a node (docs/governance.md): the documents of a governed swarm —
 * constitution, proposals, votes, founders' decrees — checked, stored (a level db under
 * `ledger/governance`, and pinned as dag-json documents), gossiped on
 * `/shoal/1/<swarm>/governance`, and kept in step with the members by anti-entropy
 * (`/shoal/1/governance-sync/1.0.0`: a node that was offline fetches what it missed, and a
 * node that hears another's log head differ from its own syncs with it). The state —
 * members, tallies, outcomes, policy, approved jobs — is `computeGovernance` over the stored
 * documents, recomputed when a document arrives and when a voting window closes. Its effects:
 * a removed member is refused (`NodeSwarm.revoke`: gater, connections, gossip); a node that
 * holds the founders' key issues the credential of an admitted member and gossips it, so that
 * any member can hand the newcomer its invite; a passed job proposal lets the job start (a job
 * of a governed swarm runs only once approved: {@link GovernedJobCatalog}).
 */
import { Level } from 'level'
import type { PeerId } from '@libp2p/interface'
import { logger, type Logger } from '../common/index.js'
import { didFromPeerId, type Identity } from '../identity/index.js'
import {
  groupDigest,
  verifyCredential,
  type GroupDigest,
  type ItemSource,
  type SwarmDescriptor,
  type SwarmTopics,
  type TopicSpec
} from '../p2p/index.js'
import {
  GovernanceError,
  computeGovernance,
  constitutionClaims,
  decodeDocument,
  documentHash,
  governanceTopic,
  jobPolicyProblem,
  signConstitution,
  signDecree,
  signProposal,
  signVote,
  verifyDocument,
  type Action,
  type Choice,
  type GovernanceMessage,
  type GovernanceRejectReason,
  type GovernanceState,
  type PolicyJobSpec,
  type ProposalState,
  type VerifiedDocument
} from '../training/index.js'
import { JobCatalog } from './jobs/index.js'
import { decodeInvite, encodeInvite } from './swarm.js'

const log = logger('shoal:node:governance')

/** The anti-entropy protocol of governance documents. */
export const GOVERNANCE_SYNC_PROTOCOL = '/shoal/1/governance-sync/1.0.0'
/** How often a node gossips its log head (ms). */
export const HEAD_INTERVAL_MS = 15_000
/** How long after a change a node gossips its new log head (ms). */
export const HEAD_DEBOUNCE_MS = 1_000
/** Default voting window of a proposal when none is given (s), within the constitution's bounds. */
export const DEFAULT_WINDOW_S = 3 * 24 * 3600
/** Most documents a node stores for its swarm. */
export const MAX_DOCUMENTS = 100_000

/** What governance needs of the node's swarm (`NodeSwarm`). */
export interface GovernanceSwarm {
  readonly swarm: SwarmDescriptor | undefined
  gossip: {
    subscribe(
      topic: TopicSpec<GovernanceMessage>,
      handler: (msg: GovernanceMessage, meta: { did: string; from: PeerId }) => void | Promise<void>
    ): () => void
    publish(topic: TopicSpec<GovernanceMessage>, msg: GovernanceMessage): Promise<unknown>
  }
  onEnter(listener: (topics: SwarmTopics) => void): void
  itemSync(name: string): { syncWith(peer: PeerId): Promise<unknown> } | undefined
  revoke(did: string, reason: string): void
  founderIdentity(): Promise<Identity | undefined>
  invite(did: string, opts?: { expiresIn?: number }): Promise<string>
  /** Refuses founders' invites the governance does not allow (optional). */
  setInviteGuard?(guard: ((did: string) => string | undefined) | undefined): void
}

export interface GovernanceComponents {
  identity: Identity
  swarm: GovernanceSwarm
  /** Where the documents are kept (a level db). */
  path: string
  /** Pins each stored document as a dag-json document (the node's ContentStore). */
  documents?: { putDocument(value: unknown, opts?: { name?: string }): Promise<{ toString(): string }> }
  /** The node's addresses, for invites handed out by any member. */
  addresses?: () => string[]
  log?: Logger
}

export interface GovernanceInit {
  headIntervalMs?: number
  now?: () => number
}

/** What {@link NodeGovernance.status} reports. */
export interface GovernanceStatus {
  governed: boolean
  swarm: string | null
  constitution: string | null
  members: string[]
  removed: Array<{ did: string; at: number }>
  policy: Record<string, unknown>
  approvedJobs: string[]
  proposals: { pending: number; open: number; passed: number; failed: number }
  head: string
  documents: number
  founder: boolean
  /** Documents refused or not counted at arrival, by reason (this run). */
  refused: Partial<Record<GovernanceRejectReason | 'stored', number>>
  /** Rejections in the current state, by reason. */
  rejected: Partial<Record<GovernanceRejectReason, number>>
}

/** The dag-json document a governance JWT is pinned as. */
export function governanceDocument(jwt: string): { type: 'shoal/governance'; jwt: string } {
  return { type: 'shoal/governance', jwt }
}

const nowS = (now: () => number): number => Math.floor(now() / 1000)

/** Governance of this node's swarm. */
export class NodeGovernance {
  private readonly log: Logger
  private readonly c: GovernanceComponents
  private readonly db: Level<string, string>
  private readonly now: () => number
  private readonly headIntervalMs: number
  /** Stored documents by hash (all of this node's swarm, whether they count or not). */
  private readonly docs = new Map<string, VerifiedDocument>()
  /** Credentials issued for admitted members (DID → credential JWT). */
  private readonly credentials = new Map<string, string>()
  private readonly refused: Partial<Record<GovernanceRejectReason | 'stored', number>> = {}
  private current: GovernanceState | undefined
  private topic: TopicSpec<GovernanceMessage> | undefined
  private unsubscribe: (() => void) | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  private headTimer: ReturnType<typeof setInterval> | undefined
  private headPending: ReturnType<typeof setTimeout> | undefined
  private readonly revoked = new Set<string>()
  private readonly approved = new Set<string>()
  private readonly issuing = new Set<string>()
  private readonly approvedListeners: Array<(job: string) => void> = []
  private readonly lastSync = new Map<string, number>()
  private readonly inFlight = new Map<string, Promise<'accepted' | GovernanceRejectReason | 'stored'>>()
  private credits: (() => Promise<Record<string, number>>) | undefined
  private creditsNow: Record<string, number> = {}
  private started = false

  constructor(components: GovernanceComponents, init: GovernanceInit = {}) {
    this.c = components
    this.log = components.log ?? log
    this.db = new Level<string, string>(components.path, { valueEncoding: 'utf8' })
    this.now = init.now ?? Date.now
    this.headIntervalMs = init.headIntervalMs ?? HEAD_INTERVAL_MS
  }

  /** Opens the store, loads the documents, follows the governance topic of each swarm entered. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    await this.db.open()
    for await (const [key, value] of this.db.iterator({ gt: 'doc!', lt: 'doc"' })) {
      const d = decodeDocument(value)
      if (d.ok) this.docs.set(d.doc.hash, d.doc)
      else this.log.warn({ key }, 'a stored governance document no longer decodes')
    }
    for await (const [key, value] of this.db.iterator({ gt: 'cred!', lt: 'cred"' }))
      this.credentials.set(key.slice(5), value)
    this.c.swarm.onEnter(() => {
      if (!this.started) return
      this.enter()
    })
    // In a governed swarm the founders' key credentials only members (genesis, admitted by a
    // passed proposal or a decree the constitution allows).
    this.c.swarm.setInviteGuard?.((did) => {
      const state = this.refresh()
      if (state.constitution === null || state.members.includes(did)) return undefined
      return `${did} is not a member of this governed swarm: the members admit by a proposal (shoal proposal create --admit), or the founders by decree while the constitution allows (shoal governance decree admit)`
    })
    this.headTimer = setInterval(() => void this.publishHead(), this.headIntervalMs)
    this.headTimer.unref?.()
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.c.swarm.setInviteGuard?.(undefined)
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.headTimer !== undefined) clearInterval(this.headTimer)
    if (this.headPending !== undefined) clearTimeout(this.headPending)
    this.headPending = undefined
    await this.db.close()
  }

  /** Verified ledger credits per DID, for constitutions that weigh votes by credits. */
  setCredits(credits: () => Promise<Record<string, number>>): void {
    this.credits = credits
  }

  /** Called with each job id a passed proposal approves (once per run). */
  onApproved(listener: (job: string) => void): void {
    this.approvedListeners.push(listener)
  }

  private enter(): void {
    const swarm = this.c.swarm.swarm
    if (swarm === undefined) return
    this.unsubscribe?.()
    this.topic = governanceTopic(swarm.id)
    this.unsubscribe = this.c.swarm.gossip.subscribe(this.topic, async (msg, meta) => this.receive(msg, meta))
    this.recompute()
  }

  private async receive(msg: GovernanceMessage, meta: { did: string; from: PeerId }): Promise<void> {
    if (msg.type === 'document') {
      await this.add(msg.jwt, meta.did)
    } else if (msg.type === 'head') {
      if (msg.head === this.state().head) return
      const key = meta.from.toString()
      const last = this.lastSync.get(key) ?? 0
      if (this.now() - last < 2_000) return
      this.lastSync.set(key, this.now())
      await this.c.swarm.itemSync('governance')?.syncWith(meta.from)
    } else {
      await this.receiveCredential(msg.member, msg.credential)
    }
  }

  private async receiveCredential(member: string, credential: string): Promise<void> {
    const swarm = this.c.swarm.swarm
    if (swarm === undefined || this.credentials.has(member)) return
    try {
      // A founder's credential for this swarm naming `member`.
      await verifyCredential(credential, swarm, { subject: member })
    } catch (err) {
      this.log.info({ member, err: (err as Error).message }, 'credential refused')
      return
    }
    // Kept even before this node sees the admission (its window may close here a moment later):
    // `invite` hands it out only to a member.
    this.credentials.set(member, credential)
    await this.db.put(`cred!${member}`, credential)
  }

  /**
   * Checks a document and stores it when it is signed for this swarm (whether it counts now or
   * not: a vote may arrive before its proposal). Returns `accepted`, `duplicate`, `stored` (kept
   * but not counted yet, e.g. its proposal is unknown) or the reason it was refused. Never throws.
   */
  async add(
    jwt: string,
    from?: string
  ): Promise<'accepted' | 'duplicate' | GovernanceRejectReason | 'stored'> {
    const hash = documentHash(jwt)
    const running = this.inFlight.get(hash)
    if (running !== undefined || this.docs.has(hash)) {
      await running // counted once the copy in flight is
      this.count('duplicate')
      return 'duplicate'
    }
    const p = this.addNew(jwt, hash, from).finally(() => this.inFlight.delete(hash))
    this.inFlight.set(hash, p)
    return p
  }

  private async addNew(
    jwt: string,
    hash: string,
    from: string | undefined
  ): Promise<'accepted' | GovernanceRejectReason | 'stored'> {
    const swarm = this.c.swarm.swarm
    if (swarm === undefined) return 'wrong-swarm'
    const r = await verifyDocument(jwt, { swarm: swarm.id, now: nowS(this.now) })
    if (!r.ok) {
      this.count(r.reason)
      this.log.info({ doc: hash, from, reason: r.reason, detail: r.detail }, 'governance document refused')
      return r.reason
    }
    if (this.docs.size >= MAX_DOCUMENTS) {
      this.log.warn({ doc: hash }, 'governance store full')
      return 'malformed'
    }
    this.docs.set(hash, r.doc)
    await this.db.put(`doc!${hash}`, jwt)
    if (this.c.documents !== undefined) {
      this.c.documents.putDocument(governanceDocument(jwt), { name: 'governance' }).catch((err: unknown) => {
        this.log.debug({ doc: hash, err: (err as Error).message }, 'could not pin a governance document')
      })
    }
    const state = this.recompute()
    const rejection = state.rejected.find((x) => x.hash === hash)
    if (rejection !== undefined) {
      this.count(rejection.reason)
      this.log.info(
        { doc: hash, from, reason: rejection.reason, detail: rejection.detail },
        'governance document does not count'
      )
      return rejection.reason === 'unknown-proposal' || rejection.reason === 'wrong-constitution'
        ? 'stored'
        : rejection.reason
    }
    this.log.debug({ doc: hash, kind: r.doc.kind, from }, 'governance document accepted')
    return 'accepted'
  }

  private count(reason: GovernanceRejectReason | 'stored'): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
  }

  /** The state over the stored documents (recomputed when needed). */
  state(): GovernanceState {
    return this.current ?? this.recompute()
  }

  /** Recomputes the state now (windows may have closed since) and applies its effects. */
  refresh(): GovernanceState {
    return this.recompute()
  }

  /** Recomputes the state, applies its effects, and schedules the next close. */
  private recompute(): GovernanceState {
    const state = computeGovernance([...this.docs.values()], this.context())
    const changed = this.current?.head !== state.head
    this.current = state
    this.effects(state)
    this.schedule(state)
    if (changed) this.headSoon()
    if (state.constitution?.claims.weighting === 'credits' && this.credits !== undefined) {
      void this.credits()
        .then((c) => {
          if (JSON.stringify(c) !== JSON.stringify(this.creditsNow)) {
            this.creditsNow = c
            this.recompute()
          }
        })
        .catch(() => {})
    }
    return state
  }

  private effects(state: GovernanceState): void {
    for (const { did } of state.removed) {
      if (this.revoked.has(did)) continue
      this.revoked.add(did)
      if (did !== this.c.identity.did) this.c.swarm.revoke(did, 'removed by the swarm’s governance')
      else this.log.warn('this node was removed from the swarm by its governance')
    }
    for (const job of state.approvedJobs) {
      if (this.approved.has(job)) continue
      this.approved.add(job)
      this.log.info({ job }, 'job approved by the swarm')
      for (const l of this.approvedListeners) l(job)
    }
    for (const e of state.events) {
      if (e.change !== 'admit' || e.by === 'genesis') continue
      if (!state.members.includes(e.did) || this.credentials.has(e.did) || this.issuing.has(e.did)) continue
      this.issuing.add(e.did)
      void this.issueCredential(e.did, e.source).finally(() => this.issuing.delete(e.did))
    }
  }

  /** A node with the founders' key issues the credential of an admitted member and gossips it. */
  private async issueCredential(member: string, source: string): Promise<void> {
    if ((await this.c.swarm.founderIdentity()) === undefined) return
    try {
      const credential = decodeInvite(await this.c.swarm.invite(member)).credential
      this.credentials.set(member, credential)
      await this.db.put(`cred!${member}`, credential)
      this.log.info({ member, proposal: source }, 'credential issued for an admitted member')
      if (this.topic !== undefined)
        await this.c.swarm.gossip.publish(this.topic, {
          type: 'credential',
          proposal: source,
          member,
          credential
        })
    } catch (err) {
      this.log.warn(
        { member, err: (err as Error).message },
        'could not issue the credential of an admitted member'
      )
    }
  }

  private schedule(state: GovernanceState): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (!this.started) return
    const t = nowS(this.now)
    const next = state.proposals
      .filter((p) => p.status === 'open' || p.status === 'pending')
      .map((p) => (p.status === 'pending' ? p.opens : p.closes))
      .filter((x) => x >= t)
      .sort((a, b) => a - b)[0]
    if (next === undefined) return
    const ms = Math.max(0, (next + 1) * 1000 - this.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.started) this.recompute()
    }, ms)
    this.timer.unref?.()
  }

  /**
   * Gossips the log head once, {@link HEAD_DEBOUNCE_MS} after the first change: a burst of
   * documents (a sync, a busy vote) costs one head message per node, not one per document.
   */
  private headSoon(): void {
    if (this.headPending !== undefined || !this.started) return
    this.headPending = setTimeout(() => {
      this.headPending = undefined
      void this.publishHead()
    }, HEAD_DEBOUNCE_MS)
    this.headPending.unref?.()
  }

  private async publishHead(): Promise<void> {
    // Nothing to announce in a swarm without governance documents (an ungoverned swarm).
    if (this.topic === undefined || !this.started || this.docs.size === 0) return
    const state = this.state()
    await this.c.swarm.gossip
      .publish(this.topic, { type: 'head', head: state.head, n: this.docs.size })
      .catch(() => {}) // no peers yet
  }

  private async publish(jwt: string): Promise<void> {
    if (this.topic === undefined) return
    await this.c.swarm.gossip.publish(this.topic, { type: 'document', jwt }).catch((err: unknown) => {
      this.log.debug({ err: (err as Error).message }, 'could not gossip a governance document (no peers?)')
    })
  }

  /** Stores and gossips a document this node signed; throws when it would not count. */
  private context(): Parameters<typeof computeGovernance>[1] {
    const swarm = this.c.swarm.swarm
    return {
      swarm: { id: swarm?.id ?? '', founders: swarm?.founders ?? [] },
      now: nowS(this.now),
      credits: this.creditsNow
    }
  }

  /** Stores and gossips a document this node signed; refuses (unstored) one that would not count. */
  private async submit(jwt: string): Promise<string> {
    const refuse = (reason: string, detail: string): GovernanceError =>
      new GovernanceError('GOVERNANCE_REJECTED', `the document would not count: ${reason} (${detail})`, {
        reason,
        detail
      })
    const checked = await verifyDocument(jwt, { swarm: this.swarmId(), now: nowS(this.now) })
    if (!checked.ok) throw refuse(checked.reason, checked.detail)
    const trial = computeGovernance([...this.docs.values(), checked.doc], this.context())
    const rejection = trial.rejected.find((x) => x.hash === checked.doc.hash)
    if (rejection !== undefined) throw refuse(rejection.reason, rejection.detail)
    const r = await this.add(jwt, this.c.identity.did)
    if (r !== 'accepted') throw refuse(r, r)
    await this.publish(jwt)
    return checked.doc.hash
  }

  private governed(): NonNullable<GovernanceState['constitution']> {
    const c = this.state().constitution
    if (c === null) {
      throw new GovernanceError(
        'GOVERNANCE_NOT_GOVERNED',
        'this swarm has no constitution (create it with `shoal swarm create --governed`)',
        {}
      )
    }
    return c
  }

  private swarmId(): string {
    const s = this.c.swarm.swarm
    if (s === undefined)
      throw new GovernanceError('GOVERNANCE_NOT_GOVERNED', 'this node is not in a swarm', {})
    return s.id
  }

  /**
   * Makes the current swarm governed: signs its constitution with the founders' key (the
   * swarm's creator only) from `file` completed with the defaults, stores and gossips it.
   */
  async found(file: unknown = {}): Promise<{ constitution: string }> {
    const id = this.swarmId()
    if (this.state().constitution !== null) {
      throw new GovernanceError('GOVERNANCE_REJECTED', 'this swarm already has a constitution', {
        reason: 'duplicate',
        constitution: this.state().constitution!.hash
      })
    }
    const founder = await this.c.swarm.founderIdentity()
    if (founder === undefined)
      throw new GovernanceError('GOVERNANCE_REJECTED', 'only the swarm’s founder can sign its constitution', {
        reason: 'not-founder'
      })
    const claims = constitutionClaims(file, {
      swarm: id,
      creator: this.c.identity.did,
      founder: founder.did,
      now: nowS(this.now)
    })
    const { kind: _k, iss: _i, ...input } = claims
    return { constitution: await this.submit(await signConstitution(founder, input)) }
  }

  /** Signs, stores and gossips a proposal of this node; its window opens now. */
  async propose(input: {
    title: string
    action: Action
    windowSeconds?: number
  }): Promise<{ proposal: string }> {
    const law = this.governed()
    const t = nowS(this.now)
    const w = law.claims.window
    const length = input.windowSeconds ?? Math.min(w.max, Math.max(w.min, DEFAULT_WINDOW_S))
    const jwt = await signProposal(this.c.identity, {
      iat: t,
      swarm: this.swarmId(),
      constitution: law.hash,
      title: input.title,
      action: input.action,
      opens: t,
      closes: t + length,
      rule: law.claims.rules[input.action.type]
    })
    return { proposal: await this.submit(jwt) }
  }

  /** Signs, stores and gossips this node's vote (a later vote replaces it until the close). */
  async vote(proposal: string, choice: Choice): Promise<{ vote: string }> {
    this.governed()
    this.proposal(proposal)
    // Numbered after this node's earlier votes on it, so that a change within a second counts.
    const seq = [...this.docs.values()]
      .filter(
        (d) => d.kind === 'vote' && d.claims.iss === this.c.identity.did && d.claims.proposal === proposal
      )
      .reduce((n, d) => Math.max(n, ((d.claims as { seq?: number }).seq ?? 0) + 1), 0)
    const jwt = await signVote(this.c.identity, {
      iat: nowS(this.now),
      swarm: this.swarmId(),
      proposal,
      choice,
      ...(seq > 0 ? { seq } : {})
    })
    return { vote: await this.submit(jwt) }
  }

  /** A founders' decree (this node holds the founders' key), as far as the constitution allows. */
  async decree(action: Extract<Action, { type: 'admit' | 'remove' }>): Promise<{ decree: string }> {
    const law = this.governed()
    const founder = await this.c.swarm.founderIdentity()
    if (founder === undefined)
      throw new GovernanceError('GOVERNANCE_REJECTED', 'this node holds no founders’ key', {
        reason: 'not-founder'
      })
    const jwt = await signDecree(founder, {
      iat: nowS(this.now),
      swarm: this.swarmId(),
      constitution: law.hash,
      action
    })
    return { decree: await this.submit(jwt) }
  }

  /** One proposal's state. */
  proposal(hash: string): ProposalState & {
    rejectedVotes: Array<{ hash: string; author: string; reason: string; detail: string }>
  } {
    const state = this.state()
    const p = state.proposals.find((x) => x.hash === hash)
    if (p === undefined) {
      const r = state.rejected.find((x) => x.hash === hash)
      throw new GovernanceError(
        'GOVERNANCE_NOT_FOUND',
        r === undefined
          ? `no proposal ${hash}`
          : `proposal ${hash} does not count: ${r.reason} (${r.detail})`,
        { proposal: hash, ...(r === undefined ? {} : { reason: r.reason }) }
      )
    }
    const rejectedVotes = state.rejected
      .filter(
        (r) => r.kind === 'vote' && (this.docs.get(r.hash)?.claims as { proposal?: string }).proposal === hash
      )
      .map(({ hash: h, author, reason, detail }) => ({ hash: h, author, reason, detail }))
    return { ...p, rejectedVotes }
  }

  /** Whether `job` may run here: always outside a governed swarm, else once a proposal for it passed. */
  jobAllowed(job: string): boolean {
    const state = this.state()
    return state.constitution === null || state.approvedJobs.includes(job)
  }

  /** Why a job's spec breaks the policy in force (a governed swarm only), or undefined. */
  jobPolicyProblem(spec: PolicyJobSpec): string | undefined {
    const state = this.state()
    return state.constitution === null ? undefined : jobPolicyProblem(spec, state.policy)
  }

  /** When `did` was removed from the swarm (Unix seconds), or undefined when it was not. */
  removedAt(did: string): number | undefined {
    return this.state().removed.find((r) => r.did === did)?.at
  }

  /** An invite for an admitted member, from any member holding its credential. */
  invite(member: string): { invite: string } {
    const swarm = this.c.swarm.swarm
    const credential = this.credentials.get(member)
    if (swarm === undefined || credential === undefined || !this.refresh().members.includes(member)) {
      throw new GovernanceError(
        'GOVERNANCE_NOT_FOUND',
        `no credential for ${member} here (not admitted yet, or no founder node has issued it)`,
        { member }
      )
    }
    return { invite: encodeInvite({ v: 1, swarm, bootstrap: this.c.addresses?.() ?? [], credential }) }
  }

  /** The stored documents as anti-entropy items: group = the proposal (votes, proposal) or `law`. */
  syncSource(): ItemSource {
    const groupOf = (d: VerifiedDocument): string =>
      d.kind === 'vote' ? d.claims.proposal : d.kind === 'proposal' ? d.hash : 'law'
    const groups = (): Map<string, string[]> => {
      const out = new Map<string, string[]>()
      for (const d of this.docs.values()) {
        const g = groupOf(d)
        const list = out.get(g) ?? []
        list.push(d.hash)
        out.set(g, list)
      }
      return out
    }
    return {
      digests: async () => {
        const out = new Map<string, GroupDigest>()
        for (const [g, ids] of groups()) out.set(g, groupDigest(ids))
        return out
      },
      ids: async (group) => groups().get(group) ?? [],
      get: async (ids) => ids.flatMap((id) => this.docs.get(id)?.jwt ?? []),
      accept: async (items, from) => {
        let sender: string
        try {
          sender = didFromPeerId(from)
        } catch {
          sender = from.toString()
        }
        let n = 0
        for (const jwt of items) {
          const r = await this.add(jwt, sender)
          if (
            r === 'accepted' ||
            r === 'stored' ||
            !['duplicate', 'malformed', 'bad-signature', 'schema', 'wrong-swarm', 'future'].includes(r)
          )
            n++
        }
        return n
      },
      idOf: (jwt) => documentHash(jwt)
    }
  }

  /** The node's view of its swarm's governance. */
  status(): GovernanceStatus {
    const s = this.state()
    const by = (st: ProposalState['status']): number => s.proposals.filter((p) => p.status === st).length
    return {
      governed: s.constitution !== null,
      swarm: this.c.swarm.swarm?.id ?? null,
      constitution: s.constitution?.hash ?? null,
      members: s.members,
      removed: s.removed,
      policy: s.policy as Record<string, unknown>,
      approvedJobs: s.approvedJobs,
      proposals: { pending: by('pending'), open: by('open'), passed: by('passed'), failed: by('failed') },
      head: s.head,
      documents: this.docs.size,
      founder: this.isFounderCached,
      refused: { ...this.refused },
      rejected: { ...s.counts }
    }
  }

  private isFounderCached = false

  /** Looks up once whether this node holds the founders' key (for `status`). */
  async refreshFounder(): Promise<void> {
    this.isFounderCached = (await this.c.swarm.founderIdentity()) !== undefined
  }
}

/**
 * The job catalog of a governed swarm: a job whose proposal has not passed cannot be joined
 * (`GOVERNANCE_REJECTED`, reason `job-not-approved`); outside a governed swarm it is the plain
 * catalog. A job whose spec breaks the policy in force (`jobPolicyProblem`) is refused too
 * (reason `policy`). Announcements are still recorded; the node joins once the proposal passes.
 */
export class GovernedJobCatalog extends JobCatalog {
  constructor(
    components: ConstructorParameters<typeof JobCatalog>[0],
    private readonly gate: Pick<NodeGovernance, 'jobAllowed' | 'jobPolicyProblem'>
  ) {
    super(components)
  }

  override async verified(jobId: string): ReturnType<JobCatalog['verified']> {
    if (!this.gate.jobAllowed(jobId)) {
      throw new GovernanceError(
        'GOVERNANCE_REJECTED',
        `job ${jobId} has no passed proposal: a governed swarm runs a job only once its members approved it`,
        { reason: 'job-not-approved', job: jobId }
      )
    }
    const job = await super.verified(jobId)
    const problem = this.gate.jobPolicyProblem(job.spec)
    if (problem !== undefined) {
      throw new GovernanceError('GOVERNANCE_REJECTED', `job ${jobId} breaks the swarm's policy: ${problem}`, {
        reason: 'policy',
        job: jobId,
        detail: problem
      })
    }
    return job
  }
}
