/**
 * Unlearning on this node. When a grant ends (revoked, or expired), every job whose stored
 * receipts name it — this node's or any peer's — rolls back before the grant's first influence
 * and retrains without it. It does not import the runner: it is handed the three things it
 * needs of the runs ({@link UnlearningRuns}).
 */
import { CID } from 'multiformats/cid'
import type { Logger, ShoalError } from '../../common/index.js'
import type { GrantInfo } from '../../storage/index.js'
import { decodeReceipt, type Checkpoint } from '../../training/index.js'
import type { NodeDb } from '../db.js'
import type { CheckpointRecord, ExclusionRecord, UnlearningEvent } from '../records.js'

/** The db kind of each job's unlearned grants and unlearning events (key = job id). */
export const EXCLUSIONS_KIND = 'job-exclusions' as const

/** What unlearning needs of the job runs. */
export interface UnlearningRuns {
  /** Stops the job's run, if any, for a rollback; resolves whether this node takes part in the job. */
  halt(job: string): Promise<boolean>
  /**
   * Joins the job again after the rollback (its lineage now excludes the grant). Rejects with
   * `JOB_NO_DATA` or `JOB_PRIVACY_BUDGET` when this node has nothing left to train it on.
   */
  retrain(job: string): Promise<void>
  /** This node's data for the job is gone: it stops taking part. */
  revoked(job: string): Promise<void>
}

export interface UnlearningComponents {
  db: NodeDb
  /** Unpins dropped checkpoints. */
  store: { unpin(cid: CID): Promise<unknown> }
  /** The trainers' resume points (`FileCheckpointStore`): reset to the rolled-back checkpoint. */
  resume: { reset(job: string, cp?: Checkpoint): Promise<void> }
  runs: UnlearningRuns
  log: Logger
}

export class JobUnlearning {
  private readonly c: UnlearningComponents
  /** Per job: the unlearning in progress (one after another). */
  private readonly pending = new Map<string, Promise<void>>()

  constructor(components: UnlearningComponents) {
    this.c = components
  }

  /** The unlearned grants of a job (sorted), and its events. */
  async exclusions(job: string): Promise<ExclusionRecord | undefined> {
    return this.c.db.get(EXCLUSIONS_KIND, job)
  }

  /**
   * A grant ended: each job whose stored receipts name it unlearns it (once: a job that
   * already excludes the grant is left alone), jobs one after another.
   */
  async grantEnded(grant: Pick<GrantInfo, 'id'>, how: 'revoked' | 'expired'): Promise<void> {
    const firstUse = new Map<string, number>()
    for (const r of await this.c.db.list('receipts')) {
      let names = false
      try {
        names = decodeReceipt(r.jwt).claims.shards.some((s) => s.grant === grant.id)
      } catch {
        continue
      }
      if (names) firstUse.set(r.job, Math.min(firstUse.get(r.job) ?? Infinity, r.round))
    }
    for (const [job, fromRound] of firstUse) {
      if ((await this.exclusions(job))?.grants.includes(grant.id) === true) continue
      const prior = this.pending.get(job) ?? Promise.resolve()
      const next = prior.then(async () => this.unlearn(job, grant.id, how, fromRound))
      this.pending.set(
        job,
        next.catch(() => {})
      )
      await next
    }
  }

  /**
   * Exact unlearning by retraining: stop the job's trainer, drop this node's checkpoints that
   * the grant may have influenced (round ≥ its first use, or built from a peer model of such a
   * round — gossip averaging spreads a round's influence to every later model), roll back to
   * the newest remaining checkpoint (or the initial weights), and retrain the rest of the job
   * without the grant's shards under a new lineage epoch, whose receipts name the exclusion.
   * A node whose only data was the grant's stops training.
   */
  private async unlearn(
    jobId: string,
    grant: string,
    how: 'revoked' | 'expired',
    fromRound: number
  ): Promise<void> {
    const startedAt = Date.now()
    const participating = await this.c.runs.halt(jobId)
    const { dropped, target } = rollbackPlan(await this.c.db.list('checkpoints'), jobId, fromRound)
    for (const c of dropped) {
      await this.c.db.del('checkpoints', c.cid)
      await this.c.store.unpin(CID.parse(c.cid)).catch(() => {})
    }
    if (target !== undefined) {
      await this.c.resume.reset(jobId, { job: jobId, round: target.round ?? 0, weightsCid: target.cid })
      await this.c.db.put('latest', jobId, {
        cid: target.cid,
        round: target.round,
        accuracy: target.accuracy
      })
    } else {
      await this.c.resume.reset(jobId)
      await this.c.db.del('latest', jobId)
    }
    const rec = (await this.exclusions(jobId)) ?? { job: jobId, grants: [], events: [] }
    rec.grants = [...new Set([...rec.grants, grant])].sort()
    const event: UnlearningEvent = {
      grant,
      how,
      fromRound,
      rolledBackTo: target?.round ?? null,
      checkpointsDropped: dropped.length,
      retrain: participating ? 'retraining' : 'not-training',
      startedAt: new Date(startedAt).toISOString()
    }
    rec.events.push(event)
    await this.c.db.put(EXCLUSIONS_KIND, jobId, rec)
    this.c.log.info(
      { job: jobId, grant, how, fromRound, rolledBackTo: event.rolledBackTo, dropped: dropped.length },
      'unlearning: rolled back before the grant’s first influence'
    )
    if (!participating) return
    try {
      await this.c.runs.retrain(jobId)
    } catch (err) {
      const code = (err as ShoalError).code
      if (code !== 'JOB_NO_DATA' && code !== 'JOB_PRIVACY_BUDGET') throw err
      event.retrain = 'no-data'
      event.finishedAt = new Date().toISOString()
      event.ms = Date.now() - startedAt
      await this.c.db.put(EXCLUSIONS_KIND, jobId, rec)
      await this.c.runs.revoked(jobId)
      this.c.log.info({ job: jobId, grant }, 'this node’s data for the job was revoked: it stops training')
    }
  }

  /** Marks the job's pending unlearning events done (its retraining finished here). */
  async finished(jobId: string): Promise<void> {
    const rec = await this.exclusions(jobId)
    if (rec === undefined) return
    let changed = false
    for (const e of rec.events) {
      if (e.retrain !== 'retraining') continue
      e.retrain = 'done'
      e.finishedAt = new Date().toISOString()
      e.ms = Date.parse(e.finishedAt) - Date.parse(e.startedAt)
      changed = true
    }
    if (changed) await this.c.db.put(EXCLUSIONS_KIND, jobId, rec)
  }
}

/**
 * Which of a job's checkpoints a grant first used in `fromRound` may have influenced (dropped),
 * and the newest one it did not (rolled back to; undefined: back to the initial weights).
 */
export function rollbackPlan(
  checkpoints: readonly CheckpointRecord[],
  job: string,
  fromRound: number
): { dropped: CheckpointRecord[]; target: CheckpointRecord | undefined } {
  const mine = checkpoints.filter((c) => c.job === job && c.source === 'job')
  const influenced = (c: CheckpointRecord): boolean =>
    (c.round ?? 0) >= fromRound || (c.maxInputRound ?? c.round ?? 0) >= fromRound
  return {
    dropped: mine.filter(influenced),
    target: mine
      .filter((c) => !influenced(c))
      .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
      .at(-1)
  }
}
