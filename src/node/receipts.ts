/**
 * Receipts and the credit ledger on a node. Receipts gossiped on the swarm's receipts topic are
 * checked at the signature level and stored (kind `receipts`, key = `receiptHash`, beside the
 * node's own, which it signs, stores and gossips for the jobs runner: `issue`) and handed to the audit service
 * (`NodeAudit`), which re-executes a sample; fraud proofs gossiped on the same topic go to the
 * audit service too. `verify` runs every level the node can run on one receipt (signature, chain
 * over the stored receipts of its issuer, lineage with the grant store, and re-execution when
 * asked and the node can read the data, else the audit's earlier outcome or a fraud proof), and
 * `ledger` computes balances over the stored receipts that pass `verifyAll`, with the credits of
 * excluded DIDs (chain evidence, lineage failures, accepted fraud proofs) forfeited. The ledger
 * is a pure function of the stored receipts, the grants and the accepted fraud proofs: nodes
 * that hold the same ones compute the same balances and the same `hash`. Receipts that gossip
 * did not deliver (a partition, time offline, a late join) arrive by anti-entropy with the
 * swarm's members (`syncSource`, run by the node's swarm over `/shoal/1/receipt-sync/1.0.0`).
 */
import { ShoalError, logger, type Logger } from '../common/index.js'
import { didFromPeerId, type Identity } from '../identity/index.js'
import {
  groupDigest,
  type GroupDigest,
  type ItemSource,
  type ReceiptMessage,
  type SwarmTopics,
  type TopicSpec
} from '../p2p/index.js'
import {
  computeLedger,
  decodeReceipt,
  exclusionKey,
  ledgerHash,
  issueReceipt,
  receiptHash,
  verifyAll,
  verifyLineage,
  verifySignature,
  type Exclusion,
  type ReceiptInput,
  type GrantLookup,
  type LedgerEntry,
  type UnverifiablePolicy,
  type VerifyLevel,
  DEFAULT_UNVERIFIABLE_POLICY
} from '../training/index.js'
import {
  AUDITS_KIND,
  auditReason,
  emptyAuditStats,
  type AuditStats,
  type FraudProofRecord,
  type NodeAudit
} from './audit.js'
import type { NodeDb } from './db.js'
import type { ReceiptRecord } from './records.js'

export type { ReceiptRecord } from './records.js'

const log = logger('shoal:node:receipts')

/** The db kind receipts are stored under (NodeReceipts is their only writer). */
export const RECEIPTS_KIND = 'receipts' as const
/** How long a computed ledger is reused while the stored receipts are unchanged (grants may change meanwhile). */
export const LEDGER_CACHE_MS = 5_000

function addTo(index: Map<string, Set<string>>, issuer: string, hash: string): void {
  const ids = index.get(issuer)
  if (ids === undefined) index.set(issuer, new Set([hash]))
  else ids.add(hash)
}

/** Thrown when a receipt named by its hash is not stored on this node. */
export class ReceiptRequestError extends ShoalError<'RECEIPT_NOT_FOUND', { receipt: string }> {
  static override readonly category = 'not-found'
}

/** The dag-json document a receipt is pinned as in Helia: anyone can fetch it by CID. */
export function receiptDocument(jwt: string): { type: 'shoal/receipt'; jwt: string } {
  return { type: 'shoal/receipt', jwt }
}

/** Pins a receipt as dag-json; returns the document's CID, or undefined when that failed (logged). */
async function pinReceipt(
  documents: ReceiptsComponents['documents'],
  jwt: string,
  log: Logger
): Promise<string | undefined> {
  if (documents === undefined) return undefined
  try {
    return (await documents.putDocument(receiptDocument(jwt), { name: 'receipt' })).toString()
  } catch (err) {
    log.warn({ receipt: receiptHash(jwt), err: (err as Error).message }, 'could not pin a receipt')
    return undefined
  }
}

/** What the node needs of its swarm: the receipts topic when it enters one, and gossip. */
export interface ReceiptsSwarm {
  gossip: {
    subscribe(
      topic: TopicSpec<ReceiptMessage>,
      handler: (msg: ReceiptMessage, meta: { did: string }) => void | Promise<void>
    ): () => void
    publish(topic: TopicSpec<ReceiptMessage>, msg: ReceiptMessage): Promise<unknown>
  }
  onEnter(listener: (topics: Pick<SwarmTopics, 'receipts'>) => void): void
}

export interface ReceiptsComponents {
  /** The node\'s logger for this service (carries the node id); default: a module logger. */
  log?: Logger
  db: NodeDb
  swarm: ReceiptsSwarm
  grants: GrantLookup
  identity: Identity
  /** Re-executes sampled receipts and checks fraud proofs; without it neither happens. */
  audit?: NodeAudit
  /** Pins each stored receipt as a dag-json document (the node's ContentStore). */
  documents?: { putDocument(value: unknown, opts?: { name?: string }): Promise<{ toString(): string }> }
  /**
   * Why a receipt of `issuer` signed at `iat` is refused whatever its signature (e.g. `removed`:
   * the swarm's governance removed the issuer before), or undefined.
   */
  refuse?: (issuer: string, iat: number) => string | undefined
  /**
   * The job document's policy for rounds nobody can check by re-execution (undefined: the job
   * does not say, or is unknown here; the ledger then uses DEFAULT_UNVERIFIABLE_POLICY).
   */
  unverifiable?: (job: string) => Promise<UnverifiablePolicy | undefined>
}

/** The outcome of one level in {@link NodeReceipts.verify}. */
export interface LevelReport {
  level: VerifyLevel
  status: 'pass' | 'fail' | 'skip'
  reason?: string
  detail?: string
}

/** The result of {@link NodeReceipts.verify}. */
export interface VerifyReport {
  receipt: string
  /** True when no level that ran failed. */
  ok: boolean
  /** The first level that failed, or null. */
  failed: VerifyLevel | null
  levels: LevelReport[]
  /** The issuer, and whether its credits are forfeited (evidence or a lineage failure among its stored receipts). */
  issuer: { did: string; excluded: boolean; exclusions: Exclusion[] } | null
  stored: boolean
}

/** The ledger over the stored receipts. */
export interface NodeLedger {
  balances: Record<string, number>
  history: LedgerEntry[]
  /** `ledgerHash` of `{ balances, history }`: equal on nodes that hold the same receipts and grants. */
  hash: string
  /** Excluded DIDs, sorted. */
  excluded: string[]
  /** Why, sorted by (did, reason, receipt). */
  exclusions: Exclusion[]
  /** Stored receipts, and those that passed every level. */
  receipts: number
  verified: number
}

/** Counters of gossiped receipts. */
export interface ReceiptStats {
  accepted: number
  duplicates: number
  /** Rejected receipts per signature-level reason. */
  rejected: Record<string, number>
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const looksLikeJwt = (s: string): boolean => s.split('.').length === 3

/** Receipts gossip, storage, verification and the ledger for one node. */
export class NodeReceipts {
  private readonly log: Logger
  private readonly c: ReceiptsComponents
  private unsubscribe: (() => void) | undefined
  private started = false
  private readonly inFlight = new Set<string>()
  private readonly counters: ReceiptStats = { accepted: 0, duplicates: 0, rejected: {} }
  private cache: { key: string; at: number; ledger: Promise<NodeLedger> } | undefined
  /**
   * Receipt hashes per issuer, for anti-entropy: read from the db once, then kept up to date
   * by {@link issue} and {@link add}, with each issuer's digest cached until it changes (a sync
   * runs every 30 s and on every new member; scanning and parsing every stored receipt each
   * time grew with the ledger).
   */
  private byIssuer: Map<string, Set<string>> | undefined
  private indexing: Promise<void> | undefined
  private readonly digestOf = new Map<string, GroupDigest>()
  private topics: Pick<SwarmTopics, 'receipts'> | undefined

  constructor(components: ReceiptsComponents) {
    this.log = components.log ?? log
    this.c = components
  }

  /** Subscribes to the receipts topic whenever the node enters a swarm. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.c.swarm.onEnter((topics) => {
      if (!this.started) return
      this.unsubscribe?.()
      this.topics = topics
      this.unsubscribe = this.c.swarm.gossip.subscribe(topics.receipts, async (msg, meta) => {
        if (msg.type === 'receipt') await this.add(msg.receipt, meta.did)
        else await this.c.audit?.receive(msg.proof, meta.did)
      })
    })
  }

  /** Unsubscribes. Idempotent. */
  async stop(): Promise<void> {
    this.started = false
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.topics = undefined
  }

  /** The audit service's counters and the fraud proofs this node holds. */
  async audit(): Promise<AuditStats & { fraction: number; proofs: Array<Omit<FraudProofRecord, 'proof'>> }> {
    const a = this.c.audit
    if (a === undefined)
      return { ...emptyAuditStats(), fraction: 0, queued: 0, convicted: [], lineageOffenders: [], proofs: [] }
    const proofs = (await a.proofs()).map(({ proof: _proof, ...rest }) => rest)
    return { ...a.stats(), fraction: a.fraction, proofs }
  }

  /** Checks a fraud proof given over RPC (see `NodeAudit.receive`). */
  async checkProof(proof: string): Promise<{
    ok: boolean
    offender?: string
    reason?: string
    detail?: string
    checked?: string
    duplicate?: boolean
  }> {
    if (this.c.audit === undefined)
      return { ok: false, reason: 'no-audit', detail: 'this node does not audit' }
    const r = await this.c.audit.receive(proof)
    if ('duplicate' in r) return { ok: true, duplicate: true }
    if (!r.ok) return { ok: false, reason: r.reason, detail: r.detail }
    return { ok: true, offender: r.offender, checked: r.checked }
  }

  /**
   * Signs this node's receipt for a round (chained to its previous one), stores it, pins it and
   * gossips it. The only writer of receipts and of the chain head: it is saved before it is
   * announced, so that a crash between the two cannot look like a fork.
   */
  async issue(input: ReceiptInput): Promise<string> {
    const did = this.c.identity.did
    // A node killed between a round's receipt and its checkpoint trains that round again after
    // the restart: signing it a second time would be a replay (its DID excluded from the ledger).
    // The round's stored receipt stands instead (bit for bit the same round when deterministic).
    const signed = await this.signedRound(did, input)
    if (signed !== undefined) {
      this.log.info(
        { job: input.job, round: input.round, receipt: signed.hash },
        'round already signed (trained again after a restart): reusing its receipt'
      )
      return signed.jwt
    }
    const prev = await this.c.db.get('receipt-head', did)
    const jwt = await issueReceipt(this.c.identity, input, prev?.jwt ?? null)
    const hash = receiptHash(jwt)
    const doc = await pinReceipt(this.c.documents, jwt, this.log)
    // The receipt and the chain's head in one batch: with the receipt stored but the head not (a
    // disk that fills between two writes), the next round would chain to the old head and fork.
    await this.c.db.putAll([
      {
        kind: RECEIPTS_KIND,
        key: hash,
        value: {
          hash,
          jwt,
          job: input.job,
          round: input.round,
          issuer: did,
          ...(doc === undefined ? {} : { doc })
        }
      },
      { kind: 'receipt-head', key: did, value: { jwt, hash } }
    ])
    this.indexed(did, hash)
    if (this.topics !== undefined) {
      this.c.swarm.gossip
        .publish(this.topics.receipts, { type: 'receipt', receipt: jwt })
        .catch((err: unknown) => {
          this.log.warn({ receipt: hash, err: (err as Error).message }, 'could not gossip a receipt')
        })
    }
    return jwt
  }

  /** This DID's stored receipt of the same (job, round, lineage epoch) as `input`, if any. */
  private async signedRound(did: string, input: ReceiptInput): Promise<ReceiptRecord | undefined> {
    const key = exclusionKey(input)
    for (const hash of (await this.issuerIndex()).get(did) ?? []) {
      const r = await this.c.db.get(RECEIPTS_KIND, hash)
      if (r === undefined || r.job !== input.job || r.round !== input.round) continue
      try {
        if (exclusionKey(decodeReceipt(r.jwt).claims) === key) return r
      } catch {
        // not decodable: not a receipt this node could have signed
      }
    }
    return undefined
  }

  /**
   * Checks a receipt at the signature level and stores it when valid (an identical copy merges
   * with the stored one). Returns what happened: `accepted`, `duplicate`, or the reject reason.
   * Never throws.
   */
  async add(jwt: string, from?: string): Promise<'accepted' | 'duplicate' | string> {
    const hash = receiptHash(jwt)
    if (this.inFlight.has(hash) || (await this.c.db.get(RECEIPTS_KIND, hash)) !== undefined) {
      this.counters.duplicates++
      return 'duplicate'
    }
    this.inFlight.add(hash)
    try {
      const r = await verifySignature(jwt)
      if (!r.ok) {
        this.counters.rejected[r.reason] = (this.counters.rejected[r.reason] ?? 0) + 1
        this.log.info({ receipt: hash, from, reason: r.reason, detail: r.detail }, 'receipt rejected')
        return r.reason
      }
      const { iss, job, round } = r.claims
      const refused = this.c.refuse?.(iss, r.claims.iat)
      if (refused !== undefined) {
        this.counters.rejected[refused] = (this.counters.rejected[refused] ?? 0) + 1
        this.log.info({ receipt: hash, from, issuer: iss, reason: refused }, 'receipt refused')
        return refused
      }
      const doc = await pinReceipt(this.c.documents, jwt, this.log)
      await this.c.db.put(RECEIPTS_KIND, hash, {
        hash,
        jwt,
        job,
        round,
        issuer: iss,
        ...(doc === undefined ? {} : { doc })
      })
      this.indexed(iss, hash)
      this.counters.accepted++
      this.log.debug({ receipt: hash, issuer: iss, job, round }, 'receipt stored')
      void this.c.audit?.checkLineage(jwt, hash)
      void this.c.audit?.consider(jwt, hash)
      return 'accepted'
    } catch (err) {
      this.log.warn({ receipt: hash, err: (err as Error).message }, 'receipt not stored')
      return 'error'
    } finally {
      this.inFlight.delete(hash)
    }
  }

  /**
   * The stored receipts as the items of anti-entropy (`ItemSync`, src/p2p/sync.ts): group = the
   * issuer's DID, id = the receipt's hash, item = its JWT. Received receipts go through
   * {@link add}, so they are checked exactly as gossiped ones (duplicates are counted, invalid
   * ones refused); receipts missed by gossip (a partition, time offline, a late join) arrive so.
   */
  syncSource(): ItemSource {
    return {
      digests: async () => {
        const out = new Map<string, GroupDigest>()
        for (const [issuer, ids] of await this.issuerIndex()) {
          let d = this.digestOf.get(issuer)
          if (d === undefined) this.digestOf.set(issuer, (d = groupDigest([...ids])))
          out.set(issuer, d)
        }
        return out
      },
      ids: async (issuer) => [...((await this.issuerIndex()).get(issuer) ?? [])],
      get: async (hashes) => {
        const out: string[] = []
        for (const hash of hashes) {
          const r = await this.get(hash)
          if (r !== undefined) out.push(r.jwt)
        }
        return out
      },
      accept: async (jwts, from) => {
        let sender: string
        try {
          sender = didFromPeerId(from)
        } catch {
          sender = from.toString()
        }
        let accepted = 0
        for (const jwt of jwts) if ((await this.add(jwt, sender)) === 'accepted') accepted++
        return accepted
      },
      idOf: (jwt) => receiptHash(jwt)
    }
  }

  /** The receipt hashes per issuer (see {@link byIssuer}); built from the db on first use. */
  private async issuerIndex(): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
    if (this.byIssuer === undefined) {
      // Receipts stored while the db is read land in the new map too (indexed()).
      const index = (this.byIssuer = new Map())
      this.indexing = (async () => {
        for (const r of await this.c.db.list(RECEIPTS_KIND)) addTo(index, r.issuer, r.hash)
      })()
    }
    await this.indexing
    return this.byIssuer
  }

  /** A receipt was stored: index it and drop its issuer's cached digest. */
  private indexed(issuer: string, hash: string): void {
    if (this.byIssuer !== undefined) addTo(this.byIssuer, issuer, hash)
    this.digestOf.delete(issuer)
  }

  /** Counters of gossiped receipts (a copy). */
  stats(): ReceiptStats {
    return { ...this.counters, rejected: { ...this.counters.rejected } }
  }

  /** Stored receipts, ordered by (issuer, job, round, hash). */
  async list(filter: { job?: string; issuer?: string } = {}): Promise<ReceiptRecord[]> {
    return (await this.c.db.list(RECEIPTS_KIND))
      .filter((r) => filter.job === undefined || r.job === filter.job)
      .filter((r) => filter.issuer === undefined || r.issuer === filter.issuer)
      .sort(
        (a, b) => cmp(a.issuer, b.issuer) || cmp(a.job, b.job) || a.round - b.round || cmp(a.hash, b.hash)
      )
  }

  async get(hash: string): Promise<ReceiptRecord | undefined> {
    return this.c.db.get(RECEIPTS_KIND, hash)
  }

  /**
   * Every level this node can run on one receipt (a JWT, or the hash of a stored one):
   * `signature`; `chain` over the stored receipts of its issuer; `lineage` with the grants;
   * `reexecution`: an accepted fraud proof against the receipt fails it; else, with
   * `reexecute`, the round is re-run now when this node can read its data; else this node's
   * earlier re-run of it, if any; else it is skipped, saying why.
   *
   * @throws {ReceiptRequestError} `RECEIPT_NOT_FOUND` for a hash this node does not store.
   */
  async verify(jwtOrHash: string, opts: { reexecute?: boolean } = {}): Promise<VerifyReport> {
    let jwt = jwtOrHash.trim()
    if (!looksLikeJwt(jwt)) {
      const rec = await this.get(jwt)
      if (rec === undefined) {
        throw new ReceiptRequestError('RECEIPT_NOT_FOUND', `no receipt ${jwt} on this node`, { receipt: jwt })
      }
      jwt = rec.jwt
    }
    const hash = receiptHash(jwt)
    const stored = (await this.get(hash)) !== undefined
    const skip = (level: VerifyLevel, detail: string): LevelReport => ({ level, status: 'skip', detail })
    let reexecution = skip('reexecution', 'the signature level failed')
    const sig = await verifySignature(jwt)
    if (!sig.ok) {
      const after = 'the signature level failed'
      return {
        receipt: hash,
        ok: false,
        failed: 'signature',
        levels: [
          { level: 'signature', status: 'fail', reason: sig.reason, detail: sig.detail },
          skip('chain', after),
          skip('lineage', after),
          reexecution
        ],
        issuer: null,
        stored
      }
    }
    const did = sig.claims.iss
    // The issuer's stored receipts with this one: the chain level for it, and the exclusions of its DID.
    const chain = [...new Set([...(await this.list({ issuer: did })).map((r) => r.jwt), jwt])]
    const all = await verifyAll(chain, { grants: this.c.grants })
    const verdict = all.results.find((v) => v.receipt === hash)
    const chainFailure = verdict?.failure?.level === 'chain' ? verdict.failure : undefined
    const lineage = await verifyLineage(jwt, this.c.grants)
    reexecution = await this.reexecutionLevel(jwt, hash, opts.reexecute === true)
    const levels: LevelReport[] = [
      { level: 'signature', status: 'pass' },
      chainFailure === undefined
        ? { level: 'chain', status: 'pass' }
        : { level: 'chain', status: 'fail', reason: chainFailure.reason, detail: chainFailure.detail },
      lineage.ok
        ? { level: 'lineage', status: 'pass' }
        : { level: 'lineage', status: 'fail', reason: lineage.reason, detail: lineage.detail },
      reexecution
    ]
    const failed = levels.find((l) => l.status === 'fail')?.level ?? null
    return {
      receipt: hash,
      ok: failed === null,
      failed,
      levels,
      issuer: {
        did,
        excluded: all.excluded.has(did) || this.c.audit?.excluded(did) === true,
        exclusions: sortExclusions([...all.exclusions, ...(await this.fraudExclusions(did))])
      },
      stored
    }
  }

  private async reexecutionLevel(jwt: string, hash: string, now: boolean): Promise<LevelReport> {
    const audit = this.c.audit
    if (audit === undefined)
      return { level: 'reexecution', status: 'skip', detail: 'this node does not re-execute receipts' }
    const proof = (await audit.proofs()).find((p) => p.receipt === hash)
    if (proof !== undefined) {
      return {
        level: 'reexecution',
        status: 'fail',
        reason: 'fraud-proof',
        detail: `fraud proof by ${proof.verifier} (${proof.checked})`
      }
    }
    if (now) {
      const r = await audit.reexecuteNow(jwt, hash)
      if (r.ok) {
        return {
          level: 'reexecution',
          status: 'pass',
          detail: r.detail === undefined ? 're-executed now' : `re-executed now, ${r.detail}`
        }
      }
      return {
        level: 'reexecution',
        status: r.skipped === true ? 'skip' : 'fail',
        reason: r.reason,
        detail: r.detail
      }
    }
    const done = await this.c.db.get(AUDITS_KIND, hash)
    if (done === undefined) {
      return {
        level: 'reexecution',
        status: 'skip',
        detail: 'not re-executed here (sampled out, or no access to its data)'
      }
    }
    if (done.outcome === 'match') {
      const how = done.detail === undefined ? '' : `, ${done.detail}`
      return { level: 'reexecution', status: 'pass', detail: `re-executed at ${done.at}${how}` }
    }
    return {
      level: 'reexecution',
      status: done.outcome === 'error' ? 'skip' : 'fail',
      reason: auditReason(done),
      detail: done.detail ?? ''
    }
  }

  private async fraudExclusions(did?: string): Promise<Exclusion[]> {
    if (this.c.audit === undefined) return []
    return (await this.c.audit.proofs())
      .filter((p) => did === undefined || p.offender === did)
      .map((p) => ({ did: p.offender, reason: 'fraud' as const, receipt: p.receipt }))
  }

  /**
   * The ledger over every stored receipt that passes `verifyAll` (signature, chain, lineage),
   * the excluded DIDs' credits forfeited. Reused for {@link LEDGER_CACHE_MS} while the stored
   * receipts are unchanged.
   */
  async ledger(): Promise<NodeLedger> {
    const records = await this.c.db.list(RECEIPTS_KIND)
    const proofs = (await this.c.audit?.proofs()) ?? []
    const key = [...records.map((r) => r.hash), ...proofs.map((p) => p.hash)].join(',')
    const now = Date.now()
    if (this.cache !== undefined && this.cache.key === key && now - this.cache.at < LEDGER_CACHE_MS) {
      return this.cache.ledger
    }
    const ledger = this.compute(records)
    this.cache = { key, at: now, ledger }
    ledger.catch(() => {
      if (this.cache?.ledger === ledger) this.cache = undefined
    })
    return ledger
  }

  /** Ledger entries, optionally of one DID. */
  async history(filter: { did?: string } = {}): Promise<LedgerEntry[]> {
    const { history } = await this.ledger()
    return filter.did === undefined ? history : history.filter((e) => e.did === filter.did)
  }

  private async compute(records: readonly ReceiptRecord[]): Promise<NodeLedger> {
    const jwts = records.map((r) => r.jwt)
    const all = await verifyAll(jwts, { grants: this.c.grants })
    const fraud = await this.fraudExclusions()
    const excluded = new Set([...all.excluded, ...fraud.map((e) => e.did)])
    // Each job's policy for unverifiable rounds, read once (the stored records name their job).
    const policies = new Map<string, UnverifiablePolicy>()
    for (const job of new Set(records.map((r) => r.job))) {
      policies.set(
        job,
        (await this.c.unverifiable?.(job).catch(() => undefined)) ?? DEFAULT_UNVERIFIABLE_POLICY
      )
    }
    const ledger = computeLedger(all.verified, {
      forfeited: excluded,
      unverifiable: (job) => policies.get(job) ?? DEFAULT_UNVERIFIABLE_POLICY
    })
    return {
      balances: ledger.balances,
      history: ledger.history,
      hash: ledgerHash(ledger),
      excluded: [...excluded].sort(cmp),
      exclusions: sortExclusions([...all.exclusions, ...fraud]),
      receipts: jwts.length,
      verified: all.verified.length
    }
  }
}

/** Exclusions deduplicated and in a fixed order (verifyAll's order depends on timing). */
function sortExclusions(list: readonly Exclusion[]): Exclusion[] {
  const seen = new Map<string, Exclusion>()
  for (const e of list) seen.set(`${e.did}\u0000${e.reason}\u0000${e.receipt}`, e)
  return [...seen.values()].sort(
    (a, b) => cmp(a.did, b.did) || cmp(a.reason, b.reason) || cmp(a.receipt, b.receipt)
  )
}
