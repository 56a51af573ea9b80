/**
 * Re-execution of peers' receipts and fraud proofs on a node. Each receipt that arrives is
 * sampled (`shouldReexecute`, keyed by this node's DID, at `receipts.reexecFraction`); a
 * sampled receipt whose shards this node can read (it owns them or holds a grant) and whose
 * round ran in deterministic CPU mode (`ep: 'cpu'`) is queued and re-run, one at a time, by
 * the training layer's re-executor. A mismatch yields a signed fraud proof, stored and
 * gossiped on the receipts topic. A fraud proof received from a peer is re-checked by
 * re-running the round when this node can read its data, and otherwise accepted only when its
 * signer owns every shard the accused receipt names. The offenders of accepted proofs are
 * convicted: `excluded(did)` tells the swarm trainer to ignore their models, and the ledger
 * forfeits their credits.
 */
import { createHash } from 'node:crypto'
import { logger, type Logger } from '../common/index.js'
import type { Identity } from '../identity/index.js'
import type { ReceiptMessage, SwarmTopics, TopicSpec } from '../p2p/index.js'
import {
  checkAttestedFraudProof,
  checkFraudProof,
  decodeFraudProof,
  decodeReceipt,
  issueFraudProof,
  shouldReexecute,
  verifyLineage,
  verifyReexecution,
  type FraudProofCheck,
  type GrantLookup,
  type ReceiptClaims,
  type Reexecutor,
  reexecutionConvicts,
  toleranceFor,
  verifiability
} from '../training/index.js'
import type { NodeDb } from './db.js'
import type { AuditRecord, FraudProofRecord } from './records.js'

export type { AuditRecord, FraudProofRecord } from './records.js'

const log = logger('shoal:node:audit')

/** The db kind of accepted fraud proofs (key = sha-256 of the proof JWT). */
export const FRAUD_PROOFS_KIND = 'fraud-proofs' as const
/** The db kind of DIDs caught training on data whose grant had ended (key = DID). */
export const LINEAGE_OFFENSES_KIND = 'lineage-offenses' as const
/** The lineage failures that prove use of data after its grant ended (not a missing or late grant). */
const ENDED_GRANT_REASONS = new Set(['grant-revoked', 'grant-expired'])
/**
 * Seconds after a grant ended during which a receipt naming it is not held against its issuer
 * here: an honest trainer signs the round in progress before the revocation reaches it.
 */
export const LINEAGE_GRACE_S = 120

/** The db kind of this node's re-execution outcomes (key = receipt hash). */
export const AUDITS_KIND = 'audits' as const

/** Counters of the audit service. */
export interface AuditStats {
  /** Receipts considered (peers' receipts that arrived). */
  considered: number
  /** Considered but not re-run, per reason (`not-sampled`, `unverifiable`, `no-data`, `queue-full`). */
  skipped: Record<string, number>
  reexecuted: number
  /** Time spent re-executing (ms, wall: fetching the base and preparing data included). */
  reexecMs: number
  /** Of which in training steps (ms): the compute re-execution costs. */
  reexecTrainMs: number
  matched: number
  /** Of the matches, non-bit-exact rounds found within their provider's tolerance. */
  withinTolerance: number
  /** Non-bit-exact rounds too sensitive to rounding to judge (no verdict; counted among `errors` too). */
  inconclusive: number
  mismatched: number
  errors: number
  queued: number
  proofsIssued: number
  proofsAccepted: number
  /** Proofs refused, per reason. */
  proofsRejected: Record<string, number>
  /** Convicted DIDs, sorted. */
  convicted: string[]
  /** DIDs whose receipts name grants that had ended (their models are excluded too), sorted. */
  lineageOffenders: string[]
}

export interface AuditComponents {
  db: NodeDb
  identity: Identity
  grants: GrantLookup
  reexec: Reexecutor
  /** Whether this node can read `shard` for `job` (owns it, or holds a valid grant). */
  canRead(shard: string, job: string): Promise<boolean>
  /** Where the audit gossips the fraud proofs it issues: the swarm's receipts topic. */
  swarm: AuditSwarm
  log?: Logger
}

/** What the audit needs of the swarm: the receipts topic when the node enters one, to publish on. */
export interface AuditSwarm {
  gossip: { publish(topic: TopicSpec<ReceiptMessage>, msg: ReceiptMessage): Promise<unknown> }
  onEnter(listener: (topics: Pick<SwarmTopics, 'receipts'>) => void): void
}

export interface AuditInit {
  /**
   * Share of receipts re-executed (0 … 1), or a function read at each receipt (a governed
   * swarm's policy can change it).
   */
  fraction: number | (() => number)
  /** Most receipts waiting. */
  queue: number
}

/** The failure reason of a stored re-execution outcome that did not match. */
export function auditReason(record: Pick<AuditRecord, 'outcome' | 'mode'>): string {
  if (record.outcome === 'error') return 'reexecution-error'
  return record.mode === 'tolerance' ? 'outside-tolerance' : 'result-mismatch'
}

/** Counters of an audit that has done nothing (also what a node without an audit reports). */
export function emptyAuditStats(): Omit<AuditStats, 'convicted' | 'queued' | 'lineageOffenders'> {
  return {
    considered: 0,
    skipped: {},
    reexecuted: 0,
    reexecMs: 0,
    reexecTrainMs: 0,
    matched: 0,
    withinTolerance: 0,
    inconclusive: 0,
    mismatched: 0,
    errors: 0,
    proofsIssued: 0,
    proofsAccepted: 0,
    proofsRejected: {}
  }
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex')
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** The audit service of one node. */
export class NodeAudit {
  private readonly log: Logger
  private readonly c: AuditComponents
  private readonly init: AuditInit
  private readonly queue: Array<{ jwt: string; claims: ReceiptClaims; hash: string }> = []
  private readonly convicted = new Set<string>()
  /** DIDs whose receipts show training on revoked or expired grants. */
  private readonly offenders = new Set<string>()
  private readonly counters = emptyAuditStats()
  private readonly listeners = new Set<(did: string) => void>()
  private draining: Promise<void> | undefined
  private controller = new AbortController()
  private started = false
  private topic: TopicSpec<ReceiptMessage> | undefined

  constructor(components: AuditComponents, init: AuditInit) {
    this.log = components.log ?? log
    const inner = components.reexec
    this.c = {
      ...components,
      // Count the compute of every re-run (the audit's own and for checking proofs).
      reexec: {
        run: async (claims, opts) => {
          const r = await inner.run(claims, opts)
          if (typeof r.trainMs === 'number') this.counters.reexecTrainMs += r.trainMs
          return r
        },
        ...(inner.result === undefined ? {} : { result: inner.result.bind(inner) })
      }
    }
    this.init = init
  }

  /** Loads the convicted DIDs of stored proofs. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.controller = new AbortController()
    this.c.swarm.onEnter((topics) => {
      this.topic = topics.receipts
    })
    for (const p of await this.c.db.list(FRAUD_PROOFS_KIND)) this.convicted.add(p.offender)
    for (const o of await this.c.db.list(LINEAGE_OFFENSES_KIND)) this.offenders.add(o.did)
  }

  /** Stops re-executing (the running re-run is aborted, the queue dropped). Idempotent. */
  async stop(): Promise<void> {
    this.started = false
    this.controller.abort()
    this.queue.length = 0
    await this.draining?.catch(() => {})
  }

  /** The share of peers' receipts re-executed. */
  get fraction(): number {
    const f = this.init.fraction
    return typeof f === 'function' ? f() : f
  }

  /** True when an accepted fraud proof convicts `did`: its models are not aggregated. */
  excluded(did: string): boolean {
    return this.convicted.has(did) || this.offenders.has(did)
  }

  /**
   * Checks a peer's receipt at the lineage level as it arrives: a receipt that names a grant
   * revoked or expired before it was issued proves its issuer keeps training on data whose
   * consent ended, and the issuer's models are no longer aggregated here (unlearning would
   * otherwise take the data back in through them). The ledger forfeits it as a lineage
   * failure. A grant not (yet) known here proves nothing. Never throws.
   */
  async checkLineage(jwt: string, hash: string): Promise<void> {
    let r: Awaited<ReturnType<typeof verifyLineage>>
    try {
      r = await verifyLineage(jwt, this.c.grants)
    } catch {
      return
    }
    if (r.ok || !ENDED_GRANT_REASONS.has(r.reason)) return
    let claims: ReceiptClaims
    try {
      claims = decodeReceipt(jwt).claims
    } catch {
      return
    }
    const did = claims.iss
    if (did === this.c.identity.did || this.offenders.has(did)) return
    const g = r.grant === undefined ? undefined : await this.c.grants.find(r.grant).catch(() => undefined)
    const ends = [g?.revokedAt, g?.exp].filter((t): t is number => t !== undefined)
    if (ends.length > 0 && claims.iat < Math.min(...ends) + LINEAGE_GRACE_S) return
    this.offenders.add(did)
    await this.c.db
      .put(LINEAGE_OFFENSES_KIND, did, {
        did,
        receipt: hash,
        reason: r.reason,
        grant: r.grant,
        at: new Date().toISOString()
      })
      .catch(() => {})
    this.log.warn(
      { offender: did, receipt: hash, reason: r.reason, grant: r.grant },
      'a peer trains on data whose grant has ended: its models are excluded'
    )
    for (const l of this.listeners) l(did)
  }

  /** Called with each DID when it is first convicted. */
  onConviction(listener: (did: string) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  stats(): AuditStats {
    return {
      ...this.counters,
      skipped: { ...this.counters.skipped },
      proofsRejected: { ...this.counters.proofsRejected },
      queued: this.queue.length,
      convicted: [...this.convicted].sort(cmp),
      lineageOffenders: [...this.offenders].sort(cmp)
    }
  }

  /** Accepted fraud proofs, ordered by (offender, job, round). */
  async proofs(): Promise<FraudProofRecord[]> {
    return (await this.c.db.list(FRAUD_PROOFS_KIND)).sort(
      (a, b) => cmp(a.offender, b.offender) || cmp(a.job, b.job) || a.round - b.round || cmp(a.hash, b.hash)
    )
  }

  /** This node's re-executions, newest last. */
  async audits(): Promise<AuditRecord[]> {
    return (await this.c.db.list(AUDITS_KIND)).sort((a, b) => cmp(a.at, b.at))
  }

  /**
   * Considers a peer's receipt (already checked at the signature level) for re-execution.
   * Never throws.
   */
  async consider(jwt: string, hash: string): Promise<void> {
    if (!this.started) return
    let claims: ReceiptClaims
    try {
      claims = decodeReceipt(jwt).claims
    } catch {
      return
    }
    if (claims.iss === this.c.identity.did) return
    this.counters.considered++
    const skip = (reason: string): void => {
      this.counters.skipped[reason] = (this.counters.skipped[reason] ?? 0) + 1
    }
    const fraction = this.fraction
    if (fraction <= 0 || !shouldReexecute(hash, this.c.identity, fraction)) {
      return skip('not-sampled')
    }
    const cannot = await this.cannotRerun(claims)
    if (cannot !== undefined) return skip(cannot.reason)
    if (this.queue.length >= this.init.queue) return skip('queue-full')
    this.queue.push({ jwt, claims, hash })
    this.drain()
  }

  /**
   * Why this node cannot re-run a receipt's round: `unverifiable` (neither a deterministic CPU
   * round nor one of a provider with a calibrated tolerance whose result weights are published,
   * see `verifiability`) or `no-data` (a shard this node cannot read); undefined when it can.
   */
  private async cannotRerun(
    claims: ReceiptClaims
  ): Promise<{ reason: 'unverifiable' | 'no-data'; detail: string } | undefined> {
    if (verifiability(claims) === 'unverifiable') {
      return {
        reason: 'unverifiable',
        detail:
          toleranceFor(claims.ep) === undefined
            ? `the round ran on '${claims.ep}', which is neither deterministic CPU nor a provider with a calibrated tolerance`
            : `the '${claims.ep}' round did not publish its result weights (resultCid)`
      }
    }
    for (const s of claims.shards) {
      if (!(await this.c.canRead(s.cid, claims.job).catch(() => false))) {
        return { reason: 'no-data', detail: `this node cannot read shard ${s.cid}` }
      }
    }
    return undefined
  }

  private drain(): void {
    if (this.draining !== undefined) return
    this.draining = (async () => {
      while (this.started && this.queue.length > 0) {
        const next = this.queue.shift()!
        await this.reexecute(next.jwt, next.claims, next.hash)
      }
    })().finally(() => {
      this.draining = undefined
    })
  }

  /** Resolves when the queue is empty (for tests and the summary of a run). */
  async idle(): Promise<void> {
    while (this.draining !== undefined) await this.draining
  }

  /**
   * Re-runs one receipt now (for `receipts_verify --reexecute`), issuing a fraud proof on a
   * mismatch. Skipped, with the reason, when the round is not reproducible on CPU or this node
   * cannot read its data. Never throws.
   */
  async reexecuteNow(
    jwt: string,
    hash: string
  ): Promise<
    { ok: true; detail?: string } | { ok: false; skipped?: boolean; reason: string; detail: string }
  > {
    let claims: ReceiptClaims
    try {
      claims = decodeReceipt(jwt).claims
    } catch (err) {
      return { ok: false, reason: 'malformed', detail: (err as Error).message }
    }
    const cannot = await this.cannotRerun(claims)
    if (cannot !== undefined) return { ok: false, skipped: true, ...cannot }
    const outcome = await this.reexecute(jwt, claims, hash)
    if (outcome === undefined)
      return { ok: false, skipped: true, reason: 'aborted', detail: 'the node is stopping' }
    if (outcome.outcome === 'match')
      return { ok: true, ...(outcome.detail === undefined ? {} : { detail: outcome.detail }) }
    return {
      ok: false,
      skipped: outcome.outcome === 'error',
      reason: auditReason(outcome),
      detail: outcome.detail ?? ''
    }
  }

  private async reexecute(
    jwt: string,
    claims: ReceiptClaims,
    hash: string
  ): Promise<AuditRecord | undefined> {
    const t0 = performance.now()
    const signal = this.controller.signal
    const r = await verifyReexecution(jwt, this.c.reexec, { signal })
    if (signal.aborted) return undefined
    const record: AuditRecord = {
      receipt: hash,
      issuer: claims.iss,
      job: claims.job,
      round: claims.round,
      outcome: r.ok ? 'match' : reexecutionConvicts(r.reason) ? 'mismatch' : 'error',
      mode: verifiability(claims) === 'tolerance' ? 'tolerance' : 'exact',
      ...(r.comparison === undefined ? {} : { comparison: r.comparison }),
      ms: Math.round(performance.now() - t0),
      at: new Date().toISOString()
    }
    this.counters.reexecuted++
    this.counters.reexecMs += record.ms
    if (r.ok) {
      this.counters.matched++
      if (r.mode === 'tolerance') {
        this.counters.withinTolerance++
        record.detail = `within the '${claims.ep}' tolerance: relative distance ${r.comparison?.relDistance.toPrecision(3)}, cosine ${r.comparison?.cosine.toFixed(6)}`
      }
      this.log.debug(
        { receipt: hash, issuer: claims.iss, round: claims.round, ms: record.ms },
        're-execution matches'
      )
    } else {
      record.detail = r.detail
      if (record.outcome === 'error') {
        this.counters.errors++
        if (r.reason === 'inconclusive') this.counters.inconclusive++
        this.log.info({ receipt: hash, issuer: claims.iss, err: r.detail }, 'could not re-execute a receipt')
      } else {
        this.counters.mismatched++
        this.log.warn(
          { receipt: hash, issuer: claims.iss, round: claims.round, reason: r.reason, detail: r.detail },
          're-execution contradicts a receipt; issuing a fraud proof'
        )
        await this.prove(jwt, r)
      }
    }
    await this.c.db.put(AUDITS_KIND, hash, record).catch(() => {})
    return record
  }

  private async prove(
    jwt: string,
    r: {
      claimedHash?: string
      expectedHash?: string
      claimedSamples?: number
      expectedSamples?: number
    }
  ): Promise<void> {
    if (r.claimedHash === undefined || r.expectedHash === undefined) return
    try {
      const proof = await issueFraudProof(this.c.identity, {
        receipt: jwt,
        claimedHash: r.claimedHash,
        expectedHash: r.expectedHash,
        ...(r.expectedSamples !== undefined && r.expectedSamples !== r.claimedSamples
          ? { expectedSamples: r.expectedSamples, claimedSamples: r.claimedSamples }
          : {})
      })
      const claims = decodeFraudProof(proof)
      this.counters.proofsIssued++
      await this.convict(
        proof,
        {
          ok: true,
          offender: claims.offender,
          verifier: claims.iss,
          receipt: claims.receiptHash,
          job: claims.job,
          round: claims.round,
          claimedHash: claims.claimedHash,
          expectedHash: claims.expectedHash,
          checked: 'reexecution'
        },
        'issued'
      )
      await this.publish(proof).catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'could not gossip a fraud proof')
      })
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not issue a fraud proof')
    }
  }

  /** Gossips a fraud proof on the swarm's receipts topic (nothing when not in a swarm). */
  private async publish(proof: string): Promise<void> {
    if (this.topic === undefined) return
    await this.c.swarm.gossip.publish(this.topic, { type: 'fraud-proof', proof })
  }

  /**
   * Checks a fraud proof received from a peer (or given over RPC) and stores it when it holds:
   * re-run here when this node can read the data, else accepted only from the data's owner.
   * Returns the check. Never throws.
   */
  async receive(proof: string, from?: string): Promise<FraudProofCheck | { ok: true; duplicate: true }> {
    const hash = sha256Hex(proof)
    if ((await this.c.db.get(FRAUD_PROOFS_KIND, hash)) !== undefined) return { ok: true, duplicate: true }
    let claims: ReceiptClaims | undefined
    try {
      claims = decodeReceipt(decodeFraudProof(proof).receipt).claims
    } catch {
      claims = undefined
    }
    const check =
      claims !== undefined && (await this.cannotRerun(claims)) === undefined
        ? await checkFraudProof(proof, this.c.reexec, { signal: this.controller.signal })
        : await checkAttestedFraudProof(proof, async (verifier, rc) => this.ownsAll(verifier, rc))
    if (!check.ok) {
      this.counters.proofsRejected[check.reason] = (this.counters.proofsRejected[check.reason] ?? 0) + 1
      this.log.warn({ from, reason: check.reason, detail: check.detail }, 'fraud proof refused')
      return check
    }
    await this.convict(proof, check, check.checked)
    return check
  }

  /** True when `did` signed every grant the receipt names (it owns the data). */
  private async ownsAll(did: string, rc: ReceiptClaims): Promise<boolean> {
    for (const s of rc.shards) {
      const g = await this.c.grants.find(s.grant)
      if (g === undefined || g.owner !== did || !g.shards.includes(s.cid)) return false
    }
    return true
  }

  private async convict(
    proof: string,
    check: Extract<FraudProofCheck, { ok: true }>,
    how: FraudProofRecord['checked']
  ): Promise<void> {
    const hash = sha256Hex(proof)
    await this.c.db.put(FRAUD_PROOFS_KIND, hash, {
      hash,
      proof,
      offender: check.offender,
      verifier: check.verifier,
      receipt: check.receipt,
      job: check.job,
      round: check.round,
      checked: how,
      at: new Date().toISOString()
    })
    this.counters.proofsAccepted++
    const first = !this.convicted.has(check.offender)
    this.convicted.add(check.offender)
    this.log.warn(
      { offender: check.offender, verifier: check.verifier, receipt: check.receipt, how },
      'fraud proof accepted: the offender is excluded'
    )
    if (first) for (const l of this.listeners) l(check.offender)
  }
}
