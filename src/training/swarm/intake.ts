/**
 * Intake of peer models: fetching them by CID under one deadline (`fetch`), then sorting
 * them into valid (size, decode, layout, finiteness, norm bound and receipt binding all
 * pass), rejected (with their reason, counted and logged) and unavailable (`take`).
 */
import { hasCode, type Logger } from '../../common/index.js'
import {
  decodeCompressed,
  UpdateDecodeError,
  UpdateRejectedError,
  validateUpdate
} from '../aggregate/index.js'
import { claimedResultHash, resultHash, verifiability, verifySignature } from '../receipts/index.js'
import { ModelTooLargeError, ReceiptBindingError } from './errors.js'
import type { JobSpec } from './job.js'
import type { ParamLayout } from './local/index.js'
import { maxModelBytes, type ResolvedSwarmOptions } from './options.js'
import type { PeerEntry } from './peers.js'
import { raceAbort } from './signals.js'
import type { RejectedModel, RejectReason, SwarmCounters, UnavailableModel, WeightStore } from './types.js'

/** A peer model as fetched: its bytes, or why they did not come. */
export type Fetched =
  { peer: PeerEntry; bytes: Uint8Array } | { peer: PeerEntry; error: unknown; timedOut: boolean }

/** A peer model that passed every check. */
export interface ValidModel {
  peer: PeerEntry
  weights: Map<string, Float32Array>
}

/** A round's peer models, sorted. */
export interface Intake {
  /** By peer DID. */
  valid: ValidModel[]
  rejected: RejectedModel[]
  unavailable: UnavailableModel[]
  /** Bytes of the models that arrived. */
  bytesReceived: number
}

/** What a {@link ModelIntake} works with. */
export interface ModelIntakeInit {
  jobId: string
  job: JobSpec
  options: Pick<ResolvedSwarmOptions, 'maxNorm' | 'compression' | 'requireReceipts' | 'fetchTimeoutMs'>
  /** The model's parameter layout (peer models must match it). */
  compiled: { params: ParamLayout }
  store: WeightStore
  /** The trainer's counters (`rejected`, `unavailable`, `bytesReceived` go up here). */
  totals: SwarmCounters
  log: Logger
}

function rejectReason(err: unknown): RejectReason | undefined {
  if (err instanceof UpdateRejectedError || err instanceof ReceiptBindingError) return err.code
  if (err instanceof UpdateDecodeError) return 'UPDATE_DECODE_FAILED'
  if (hasCode(err, 'UPDATE_TOO_LARGE')) return 'UPDATE_TOO_LARGE'
  return undefined
}

/** Fetches peer models and checks them. */
export class ModelIntake {
  private readonly jobId: string
  private readonly job: JobSpec
  private readonly options: ModelIntakeInit['options']
  private readonly compiled: { params: ParamLayout }
  private readonly store: WeightStore
  private readonly totals: SwarmCounters
  private readonly log: Logger
  private readonly maxBytes: number

  constructor(init: ModelIntakeInit) {
    this.jobId = init.jobId
    this.job = init.job
    this.options = init.options
    this.compiled = init.compiled
    this.store = init.store
    this.totals = init.totals
    this.log = init.log
    this.maxBytes = maxModelBytes(this.compiled.params)
  }

  /** Fetch models in parallel under one deadline of `timeoutMs` (default `fetchTimeoutMs`). */
  async fetch(
    peers: PeerEntry[],
    signal: AbortSignal,
    timeoutMs = this.options.fetchTimeoutMs
  ): Promise<Fetched[]> {
    if (peers.length === 0) return []
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
    const results = await Promise.all(
      peers.map(async (peer): Promise<Fetched> => {
        try {
          const bytes = await raceAbort(this.store.get(peer.msg.weightsCid, deadline), deadline)
          return { peer, bytes }
        } catch (error) {
          return { peer, error, timedOut: deadline.aborted && !signal.aborted }
        }
      })
    )
    signal.throwIfAborted()
    return results
  }

  /**
   * Check round r's fetched models against `base` and sort them; rejects and unavailable
   * models are counted and logged.
   */
  async take(fetched: Fetched[], base: Map<string, Float32Array>, r: number): Promise<Intake> {
    let bytesReceived = 0
    const valid: ValidModel[] = []
    const rejected: RejectedModel[] = []
    const unavailable: UnavailableModel[] = []
    for (const f of fetched) {
      const { did, msg: m } = f.peer
      if (!('bytes' in f)) {
        const reason = rejectReason(f.error)
        if (reason !== undefined) {
          rejected.push({
            from: did,
            reason,
            detail: (f.error as Error).message,
            cid: m.weightsCid,
            round: m.round
          })
        } else {
          unavailable.push({
            from: did,
            reason: f.timedOut ? 'FETCH_TIMEOUT' : 'FETCH_FAILED',
            cid: m.weightsCid,
            round: m.round
          })
        }
        continue
      }
      bytesReceived += f.bytes.length
      try {
        if (f.bytes.length > this.maxBytes) {
          throw new ModelTooLargeError(`model of ${f.bytes.length} bytes exceeds ${this.maxBytes}`, {
            cid: m.weightsCid,
            limit: this.maxBytes
          })
        }
        const weights = decodeCompressed(f.bytes)
        validateUpdate(weights, this.compiled, { base, maxNorm: this.options.maxNorm })
        await this.checkReceipt(f.peer, weights)
        valid.push({ peer: f.peer, weights })
      } catch (err) {
        const reason = rejectReason(err)
        if (reason === undefined) throw err
        rejected.push({
          from: did,
          reason,
          detail: (err as Error).message,
          cid: m.weightsCid,
          round: m.round
        })
      }
    }
    for (const rj of rejected) {
      this.totals.rejected[rj.reason] = (this.totals.rejected[rj.reason] ?? 0) + 1
      this.log.warn({ job: this.jobId, ...rj, peerRound: rj.round, round: r }, 'peer model rejected')
    }
    for (const u of unavailable)
      this.log.info({ job: this.jobId, ...u, peerRound: u.round, round: r }, 'peer model unavailable')
    this.totals.unavailable += unavailable.length
    this.totals.bytesReceived += bytesReceived
    valid.sort((a, b) => (a.peer.did < b.peer.did ? -1 : 1))
    return { valid, rejected, unavailable, bytesReceived }
  }

  /**
   * The fetched models a joiner can start from, by peer DID: with no base to bound the norm
   * against, layout and finiteness are checked only; refusals are logged.
   */
  takeForJoining(fetched: Fetched[]): ValidModel[] {
    const valid: ValidModel[] = []
    for (const f of fetched) {
      if (!('bytes' in f)) continue
      try {
        const weights = decodeCompressed(f.bytes)
        validateUpdate(weights, this.compiled)
        valid.push({ peer: f.peer, weights })
      } catch (err) {
        this.log.warn({ from: f.peer.did, err: (err as Error).message }, 'peer model refused for joining')
      }
    }
    valid.sort((a, b) => (a.peer.did < b.peer.did ? -1 : 1))
    return valid
  }

  /**
   * A peer model against the receipt it was announced with: signed by the announcer, for this
   * job and round; and — when models travel exactly (no DP noise, no compression) — the
   * weights hash to the receipt's `resultHash`, so that a node cannot announce other weights
   * than those its receipt (and a re-execution of it) stands for.
   *
   * @throws {ReceiptBindingError}
   */
  private async checkReceipt(peer: PeerEntry, weights: Map<string, Float32Array>): Promise<void> {
    const jwt = peer.msg.receipt
    if (jwt === undefined) {
      if (!this.options.requireReceipts) return
      throw new ReceiptBindingError('RECEIPT_MISSING', 'the announcement carries no receipt', {
        from: peer.did
      })
    }
    const r = await verifySignature(jwt)
    if (!r.ok) {
      throw new ReceiptBindingError('RECEIPT_MISMATCH', `the announced receipt is invalid: ${r.reason}`, {
        from: peer.did
      })
    }
    const c = r.claims
    if (c.iss !== peer.did || c.job !== this.jobId || c.round !== peer.msg.round) {
      throw new ReceiptBindingError(
        'RECEIPT_MISMATCH',
        `the announced receipt is ${c.iss}'s for job ${c.job} round ${c.round}, not ${peer.did}'s for round ${peer.msg.round}`,
        { from: peer.did }
      )
    }
    if (this.job.unverifiable === 'exclude' && verifiability(c) === 'unverifiable') {
      throw new ReceiptBindingError(
        'RECEIPT_UNVERIFIABLE',
        `the job excludes rounds nobody can re-execute, and this '${c.ep}' round is one (no published result weights or no calibrated tolerance)`,
        { from: peer.did }
      )
    }
    const exact =
      this.options.compression === 'none' && (this.job.privacy === undefined || this.job.privacy === null)
    const claimed = claimedResultHash(c)
    if (exact && claimed !== undefined) {
      const actual = resultHash(weights, this.compiled.params)
      if (actual !== claimed) {
        throw new ReceiptBindingError(
          'RESULT_MISMATCH',
          `the model hashes to ${actual}, its receipt claims ${claimed}`,
          { from: peer.did }
        )
      }
    }
  }
}
