/**
 * Jobs on a node, as four pieces wired here:
 * - `JobCatalog` (catalog.ts): signed, content-addressed job records; create, announce, list;
 * - `JobRunner` (runner.ts): join, run, pause and duty cycle, linger, leave, status;
 * - `JobUnlearning` (unlearning.ts): a grant ended → roll back, retrain, and `jobLineage`
 *   (lineage.ts); it gets callbacks, not the runner;
 * - re-execution of peers' rounds for the audit (`jobReexecutor`, `PreparedShards`: reexec.ts).
 * How a job's data becomes tensors is a port (`JobDataPrep`, data.ts; images: images.ts).
 * `NodeJobs` is the facade the RPC methods use.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../common/index.js'
import type { ItemSource, SwarmTopics } from '../../p2p/index.js'
import type { Dataset, GrantInfo, PrivacyBudget } from '../../storage/index.js'
import type {
  SgmSteps,
  ReceiptInput,
  ContentWeightStore,
  JobSpec,
  JobSpecInput
} from '../../training/index.js'
import type { ShoalConfig } from '../config/index.js'
import type { NodeDb } from '../db.js'
import type { JobRecord, LatestRecord } from '../records.js'
import type { JobCatalog } from './catalog.js'
import type { JobDataPrep } from './data.js'
import { jobLineage, type JobLineage } from './lineage.js'
import type { PreparedShards } from './reexec.js'
import type { JobLab } from './lab.js'
import { PauseControl, type DutyCycleState } from './pause.js'
import { JobRunner, type RunnerSwarm } from './runner.js'
import { JobUnlearning } from './unlearning.js'
import { jobSyncSource } from './sync.js'
import type { CID } from 'multiformats/cid'

export { JobRequestError } from './errors.js'
export { JobCatalog, type JobsGossip, type ModelStore } from './catalog.js'
export { grantedShards, type GrantedShard, type JobDataPrep } from './data.js'
export { imageJobData } from './images.js'
export { jobLineage, type JobLineage } from './lineage.js'
export { PreparedShards, jobReexecutor, REEXEC_DATA_CACHE, REEXEC_FETCH_TIMEOUT_MS } from './reexec.js'
export { JobUnlearning, EXCLUSIONS_KIND, rollbackPlan, type UnlearningRuns } from './unlearning.js'
export { JobRunner } from './runner.js'
export { JOB_SYNC_PROTOCOL, jobSyncSource, type JobSyncComponents } from './sync.js'
export { LAB_BYZANTINE_ENV, labFromEnv, type JobLab } from './lab.js'
export { PauseControl, type DutyCycleState } from './pause.js'
export type { JobRecord, UnlearningEvent, ExclusionRecord } from '../records.js'

export interface JobsComponents {
  did: string
  db: NodeDb
  /** The node's ContentStore: dropped checkpoints are unpinned. */
  store: { unpin(cid: CID): Promise<unknown> }
  swarm: RunnerSwarm & { onEnter(listener: (topics: SwarmTopics) => void): void }
  datasets: {
    grants: {
      list(opts: { dataset: string; grantee: string }): Promise<GrantInfo[]>
      find(id: string): Promise<GrantInfo | undefined>
    }
    readShard(cid: string, job: string): Promise<Dataset>
    onGrantEnded(listener: (grant: GrantInfo, how: 'revoked' | 'expired') => void): unknown
  }
  catalog: JobCatalog
  models: ContentWeightStore
  receipts: { issue(input: ReceiptInput): Promise<string> }
  privacy: { spentByShard(): Promise<ReadonlyMap<string, ReadonlyMap<string, SgmSteps>>> }
  /** DIDs whose models are not aggregated (the audit service's convictions). */
  exclusions?: { excluded(did: string): boolean }
  /** Prepared shards of re-executions: dropped when a grant ends. */
  prepared?: PreparedShards
  prep: JobDataPrep
  training: ShoalConfig['training']
  jobsDir: string
  log: Logger
  /** The swarm trainers' logger (`shoal:training:swarm` with the node id). */
  trainerLog?: Logger
  /** LAB ONLY: `SHOAL_LAB_BYZANTINE` (lab.ts). */
  lab?: JobLab
}

export class NodeJobs {
  readonly catalog: JobCatalog
  private readonly runner: JobRunner
  private readonly unlearning: JobUnlearning
  private readonly c: JobsComponents
  /**
   * The user's pause and the duty cycle, here so that the cycle can change at run time
   * (`setDutyCycle`); the runner is told the outcome (its own duty cycle is off).
   */
  private readonly pausing = new PauseControl(() => this.applyPause())
  /** The round from which the user's pause holds (0: the next step). */
  private pauseFrom = 0

  constructor(c: JobsComponents) {
    this.c = c
    this.catalog = c.catalog
    const did = c.did
    this.runner = new JobRunner({
      did,
      db: c.db,
      catalog: c.catalog,
      swarm: c.swarm,
      data: {
        grants: async (dataset) => c.datasets.grants.list({ dataset, grantee: did }),
        budget: async (grant): Promise<PrivacyBudget | undefined> =>
          (await c.datasets.grants.find(grant))?.privacy,
        readShard: async (cid, job) => c.datasets.readShard(cid, job),
        prep: c.prep
      },
      models: c.models,
      receipts: c.receipts,
      spent: async () => c.privacy.spentByShard(),
      ...(c.exclusions !== undefined ? { exclusions: c.exclusions } : {}),
      excludedGrants: async (job) => (await this.unlearning.exclusions(job))?.grants ?? [],
      finished: async (job) => this.unlearning.finished(job),
      training: c.training,
      checkpointsDir: join(c.jobsDir, 'checkpoints'),
      log: c.log,
      ...(c.trainerLog !== undefined ? { trainerLog: c.trainerLog } : {}),
      ...(c.lab !== undefined ? { lab: c.lab } : {})
    })
    this.unlearning = new JobUnlearning({
      db: c.db,
      store: c.store,
      resume: this.runner.resumePoints,
      runs: {
        halt: async (job) => this.runner.halt(job),
        retrain: async (job) => this.runner.retrain(job),
        revoked: async (job) => this.runner.revoked(job)
      },
      log: c.log
    })
  }

  async start(): Promise<void> {
    await mkdir(this.c.jobsDir, { recursive: true, mode: 0o700 })
    this.c.swarm.onEnter((topics) => {
      this.catalog.attach(topics.jobs, async (job) => this.runner.announced(job))
      // Resume jobs this node was running before a restart.
      void this.runner.resumeJoined()
    })
    this.c.datasets.onGrantEnded((grant, how) => {
      this.c.prepared?.clear()
      this.unlearning
        .grantEnded(grant, how)
        .catch((err: unknown) =>
          this.c.log.error({ grant: grant.id, err: (err as Error).message }, 'unlearning failed')
        )
    })
    this.pausing.startDutyCycle(this.c.training.dutyCycle, this.c.training.dutyPeriodSeconds * 1000)
  }

  async stop(): Promise<void> {
    this.pausing.stop()
    this.catalog.detach()
    await this.runner.stop()
  }

  /** @throws {JobRequestError} `JOB_INIT_INVALID` (see `JobCatalog.create`) */
  async create(spec: JobSpecInput): Promise<JobRecord> {
    return this.catalog.create(spec)
  }

  async announce(rec: Pick<JobRecord, 'id' | 'jwt'>): Promise<void> {
    return this.catalog.announce(rec)
  }

  async list(): Promise<Array<JobRecord & { state: string }>> {
    return (await this.catalog.list()).map((j) => ({ ...j, state: this.runner.state(j.id) }))
  }

  async spec(jobId: string): Promise<JobSpec | undefined> {
    return this.catalog.spec(jobId)
  }

  async join(jobId: string, opts: { shards?: string[] } = {}): Promise<{ job: string; shards: number }> {
    return this.runner.join(jobId, opts)
  }

  async leave(jobId: string): Promise<void> {
    return this.runner.leave(jobId)
  }

  pauseAll(opts: { fromRound?: number } = {}): void {
    this.pauseFrom = opts.fromRound ?? 0
    this.pausing.pauseUser()
  }

  /** The node's jobs as anti-entropy items, taken in like announcements (sync.ts). */
  syncSource(): ItemSource {
    return jobSyncSource({
      list: async () => this.catalog.list(),
      receive: async (msg) => this.catalog.receive(msg, async (job) => this.runner.announced(job)),
      log: this.c.log
    })
  }

  resumeAll(): void {
    this.pauseFrom = 0
    this.pausing.resumeUser()
  }

  /** The duty cycle now (see {@link setDutyCycle}) and the one in the node's config. */
  dutyCycle(): DutyCycleState & {
    paused: boolean
    userPaused: boolean
    configured: { cycle: number; periodMs: number }
  } {
    return {
      ...this.pausing.dutyCycle,
      paused: this.pausing.paused,
      userPaused: this.pausing.userPaused,
      configured: {
        cycle: this.c.training.dutyCycle,
        periodMs: this.c.training.dutyPeriodSeconds * 1000
      }
    }
  }

  /**
   * Replaces the duty cycle until the daemon restarts (the config's `training.dutyCycle` and
   * `dutyPeriodSeconds` apply again then): a new period starts now, active first.
   */
  setDutyCycle(cycle: number, periodMs: number): ReturnType<NodeJobs['dutyCycle']> {
    this.pausing.setDutyCycle(cycle, periodMs)
    return this.dutyCycle()
  }

  /** Tells the runner what the user's pause and the duty cycle decide together. */
  private applyPause(): void {
    if (!this.pausing.paused) this.runner.resumeAll()
    // An idle window of the duty cycle holds at once; the user's pause may name a round.
    else this.runner.pauseAll({ fromRound: this.pausing.dutyIdle ? 0 : this.pauseFrom })
  }

  get isPaused(): boolean {
    return this.runner.isPaused
  }

  contributions(): Record<string, unknown> {
    return this.runner.contributions()
  }

  /** @throws {JobRequestError} `JOB_NOT_FOUND` */
  async status(jobId: string): Promise<Record<string, unknown>> {
    const rec = await this.catalog.require(jobId)
    const checkpoints = (await this.c.db.list('checkpoints'))
      .filter((c) => c.job === jobId)
      .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
      .map((c) => ({ cid: c.cid, round: c.round, accuracy: c.accuracy }))
    return { job: rec, ...this.runner.status(jobId, checkpoints) }
  }

  /** @throws {JobRequestError} `JOB_NOT_FOUND` */
  async lineage(jobId: string): Promise<JobLineage> {
    await this.catalog.require(jobId)
    return jobLineage({
      job: jobId,
      receipts: await this.c.db.list('receipts'),
      checkpoints: await this.c.db.list('checkpoints'),
      exclusions: await this.unlearning.exclusions(jobId),
      grant: async (id) => this.c.datasets.grants.find(id)
    })
  }

  /** The newest checkpoint of a job on this node. */
  async latestCheckpoint(jobId: string): Promise<LatestRecord | undefined> {
    return this.c.db.get('latest', jobId)
  }
}
