/**
 * One job run on this node: its state, the trainer, the rounds' stats (a bounded history), the
 * rejections, and the lingering re-announcement of its latest model.
 */
import type { RoundStats, SwarmTrainer, UpdateAnnouncement, VerifiedJob } from '../../training/index.js'
import type { GrantedShard } from './data.js'

/** Stats of the last rounds kept in memory for job_status. */
export const HISTORY = 500
/**
 * After finishing a job, and while paused, a node re-announces its latest model this often, for
 * LINGER_MS, so that a late joiner, a straggler or a restarted node (which missed the last
 * announcements: gossipsub keeps no history) starts from it or catches up instead of training
 * alone.
 */
export const LINGER_EVERY_MS = 2000
export const LINGER_MS = 5 * 60_000

/** `stalled`: stopped by a full disk (error `DISK_FULL`); it resumes when space returns. */
export type RunState =
  'starting' | 'running' | 'paused' | 'done' | 'failed' | 'stalled' | 'left' | 'unlearning' | 'revoked'

/** A round's stats as kept: the peer models it aggregated listed, rejected and unavailable ones counted. */
export type RoundSummary = Omit<RoundStats, 'rejected' | 'unavailable'> & {
  rejected: number
  unavailable: number
}

export interface JobRun {
  job: VerifiedJob
  trainer: SwarmTrainer
  controller: AbortController
  state: RunState
  /** Grants (ids, sorted) whose data this run's lineage excludes: unlearned after they ended. */
  excluded: string[]
  /** Settles when the runner has finished with this run. */
  finished?: Promise<void>
  history: RoundSummary[]
  rejected: Array<{ round: number; from: string; reason: string }>
  shards: GrantedShard[]
  /** Trains in deterministic CPU mode (receipts can be re-executed bit for bit). */
  deterministic: boolean
  /** Rounds the owners' privacy budgets still allow (Infinity: no budget). */
  allowance: number
  /** Why the run stopped early, when it did (`budget`: a privacy budget is spent). */
  stopped?: string
  receipts: number
  /** Peer models aggregated over all rounds; 0 at the end of a k > 0 job means it trained alone. */
  aggregated: number
  error?: { code?: string; message: string }
  /** Times the run stalled on a full disk with no round done since (its resume backs off). */
  stalls?: number
  startedAt: number
  lastAnnouncement?: UpdateAnnouncement
  /** Publishes on the job's updates topic without recording (for lingering re-announcements). */
  announce?: (msg: UpdateAnnouncement) => Promise<void>
  linger?: ReturnType<typeof setInterval>
}

/** Adds a round's stats to the run (history and rejections bounded by {@link HISTORY}). */
export function recordRound(run: JobRun, s: RoundStats): void {
  run.history.push({ ...s, rejected: s.rejected.length, unavailable: s.unavailable.length })
  if (run.history.length > HISTORY) run.history.shift()
  run.aggregated += s.peersUsed
  for (const r of s.rejected) run.rejected.push({ round: s.round, from: r.from, reason: r.reason })
  if (run.rejected.length > HISTORY) run.rejected.splice(0, run.rejected.length - HISTORY)
}

/** A run that trained rounds of a job with k > 0 and never aggregated a peer's model. */
export function isolatedRun(run: Pick<JobRun, 'job' | 'history' | 'aggregated'>): boolean {
  return run.job.spec.hyper.k > 0 && run.history.length > 0 && run.aggregated === 0
}

/**
 * Re-announces the run's latest model every {@link LINGER_EVERY_MS} for {@link LINGER_MS}
 * (replacing an earlier linger), until `stopped()` says so or `stopLinger` is called.
 */
export function startLinger(run: JobRun, stopped: () => boolean): void {
  stopLinger(run)
  const last = run.lastAnnouncement
  const announce = run.announce
  if (last === undefined || announce === undefined || stopped()) return
  const until = Date.now() + LINGER_MS
  const timer = setInterval(() => {
    if (Date.now() > until || stopped()) {
      clearInterval(timer)
      return
    }
    announce(last).catch(() => {})
  }, LINGER_EVERY_MS)
  timer.unref?.()
  run.linger = timer
}

export function stopLinger(run: JobRun): void {
  if (run.linger !== undefined) clearInterval(run.linger)
  run.linger = undefined
}
