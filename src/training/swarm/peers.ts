/**
 * A SwarmTrainer's peer table: the latest announcement of each peer of the job (taken in by
 * `onAnnouncement`, which counts and drops other epochs, excluded peers and equivocations),
 * the model of each peer last tried, and the waiting for and choosing of a round's peers.
 */
import { performance } from 'node:perf_hooks'
import { Rng, type Logger } from '../../common/index.js'
import { MAX_TRACKED_PEERS } from './constants.js'
import { UpdateAnnouncementSchema, type UpdateAnnouncement } from './messages.js'
import type { ResolvedSwarmOptions } from './options.js'
import { roundSeed } from './round.js'
import { wakeOn } from './signals.js'
import type { AnnouncementSource, SwarmComponents, SwarmCounters } from './types.js'

/** A peer and its latest announcement. */
export interface PeerEntry {
  did: string
  msg: UpdateAnnouncement
}

/** What a {@link PeerTable} works with. */
export interface PeerTableInit {
  jobId: string
  /** This node's DID (its own announcements are ignored). */
  did: string
  options: Pick<ResolvedSwarmOptions, 'k' | 'peerWaitMs' | 'seed' | 'epoch'>
  exclusions: SwarmComponents['exclusions']
  /** The trainer's counters (`announcementsReceived`, `otherEpoch`, `excluded`, `equivocations` go up here). */
  totals: SwarmCounters
  log: Logger
}

/** A 32-bit hash of a string (FNV-1a), to derive per-node seeds. */
function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** The peers of one job as this node knows them. */
export class PeerTable {
  private readonly jobId: string
  private readonly did: string
  private readonly options: PeerTableInit['options']
  private readonly exclusions: SwarmComponents['exclusions']
  private readonly totals: SwarmCounters
  private readonly log: Logger
  private readonly peers = new Map<string, PeerEntry>()
  /** The CID of each peer's model last fetched (used, rejected or timed out): not tried again. */
  private readonly attempted = new Map<string, string>()
  private readonly announceWaiters = new Set<() => void>()

  constructor(init: PeerTableInit) {
    this.jobId = init.jobId
    this.did = init.did
    this.options = init.options
    this.exclusions = init.exclusions
    this.totals = init.totals
    this.log = init.log
  }

  /** How many peers are known. */
  get size(): number {
    return this.peers.size
  }

  /** The known peers (in the order they were first heard of). */
  entries(): PeerEntry[] {
    return [...this.peers.values()]
  }

  /** The latest announcement of each peer, by DID (copies). */
  announcements(): Map<string, UpdateAnnouncement> {
    return new Map([...this.peers].map(([did, p]) => [did, { ...p.msg }]))
  }

  /** Record these peers' current models as tried (they are not chosen again). */
  markAttempted(peers: readonly PeerEntry[]): void {
    for (const p of peers) this.attempted.set(p.did, p.msg.weightsCid)
  }

  /** Take in an announcement from the job's updates topic. */
  onAnnouncement(raw: unknown, from: AnnouncementSource): void {
    const parsed = UpdateAnnouncementSchema.safeParse(raw)
    if (!parsed.success) {
      this.log.debug({ from: from.did }, 'ignoring a malformed announcement')
      return
    }
    const msg = parsed.data
    if (msg.job !== this.jobId || from.did === this.did) return
    if ((msg.epoch ?? '') !== this.options.epoch) {
      this.totals.otherEpoch++
      return
    }
    if (this.isExcluded(from.did)) {
      this.totals.excluded++
      return
    }
    this.totals.announcementsReceived++
    const known = this.peers.get(from.did)
    if (known !== undefined) {
      if (msg.round < known.msg.round) return
      if (msg.round === known.msg.round) {
        if (msg.weightsCid !== known.msg.weightsCid) {
          this.totals.equivocations++
          this.log.warn(
            { from: from.did, round: msg.round },
            'peer announced two models for one round; keeping the first'
          )
        }
        return
      }
    } else if (this.peers.size >= MAX_TRACKED_PEERS) {
      return
    }
    this.peers.set(from.did, { did: from.did, msg })
    for (const wake of [...this.announceWaiters]) wake()
  }

  /**
   * Wait, up to `peerWaitMs`, until k peers have announced an unused model of round ≥ r.
   * Only peers expected to do so soon are waited for: those one round behind (their latest
   * is r − 1). On a run's first round, k peers are waited for (nobody is known yet).
   */
  async waitForPeers(r: number, first: boolean, signal: AbortSignal): Promise<void> {
    const { k, peerWaitMs } = this.options
    if (k === 0) return
    const deadline = performance.now() + peerWaitMs
    for (;;) {
      let fresh = 0
      let awaited = 0
      for (const p of this.peers.values()) {
        const isFresh = p.msg.round >= r && this.unused(p)
        if (isFresh) fresh++
        if (isFresh || p.msg.round === r - 1) awaited++
      }
      const target = first ? k : Math.min(k, awaited)
      if (fresh >= target) return
      const left = deadline - performance.now()
      if (left <= 0) return
      await this.waitForAnnouncement(left, signal)
    }
  }

  /**
   * Up to k unused peer models: fresh ones (round ≥ r) first in a seeded random order, then the
   * newest stale ones. In the job's last round (`last`), when fewer than k are unused, the
   * newest models it already used fill up: a straggler whose peers have finished would otherwise
   * end on its own shard's drift alone (seen on non-IID shards: 94.7 % → 91.4 % in the last
   * round of a restarted node), where averaging once more with the peers' final models ends it
   * on the swarm's model.
   */
  choosePeers(r: number, last = false): PeerEntry[] {
    const eligible = [...this.peers.values()].filter((p) => !this.isExcluded(p.did))
    eligible.sort((a, b) => (a.did < b.did ? -1 : 1))
    const available = eligible.filter((p) => this.unused(p))
    const fresh = available.filter((p) => p.msg.round >= r)
    const stale = available.filter((p) => p.msg.round < r).sort((a, b) => b.msg.round - a.msg.round)
    new Rng(roundSeed(this.options.seed ^ hash32(this.did), r)).shuffle(fresh)
    const used = last ? eligible.filter((p) => !this.unused(p)).sort((a, b) => b.msg.round - a.msg.round) : []
    const chosen = [...fresh, ...stale, ...used].slice(0, this.options.k)
    this.markAttempted(chosen)
    return chosen
  }

  /** Resolve on the next announcement taken in, or after `ms`; reject when `signal` aborts. */
  async waitForAnnouncement(ms: number, signal: AbortSignal): Promise<void> {
    await wakeOn(this.announceWaiters, signal, ms)
  }

  private isExcluded(did: string): boolean {
    return this.exclusions?.excluded(did) === true
  }

  private unused(p: PeerEntry): boolean {
    return this.attempted.get(p.did) !== p.msg.weightsCid
  }
}
