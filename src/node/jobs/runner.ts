/**
 * Running jobs on this node: joining (grants, privacy budget, data preparation), the run itself
 * (`SwarmTrainer` over gossip and bitswap), pausing (as NodeJobs decides: the user's pause and
 * the duty cycle, pause.ts), lingering after
 * the end, leaving, stalling on a full disk until space returns (space.ts), and what
 * `job_status` and `node_contributions` report.
 */
import type { Logger, ShoalError } from '../../common/index.js'
import type { GossipService } from '../../p2p/index.js'
import { asDiskFull, type Dataset, type GrantInfo, type PrivacyBudget } from '../../storage/index.js'
import {
  type SgmSteps,
  resultHash,
  type ReceiptInput,
  FileCheckpointStore,
  SwarmTrainer,
  byzantineTamper,
  epochOf,
  flipLabels,
  gossipUpdateBus,
  updatesTopic,
  type ContentWeightStore,
  type RoundRecord,
  type UpdateBus,
  type VerifiedJob,
  modelParams,
  type ShardData
} from '../../training/index.js'
import type { ShoalConfig } from '../config/index.js'
import type { NodeDb } from '../db.js'
import { budgetAllowance } from './budget.js'
import type { JobCatalog } from './catalog.js'
import { grantedShards, type GrantedShard, type JobDataPrep } from './data.js'
import { JobRequestError } from './errors.js'
import type { JobLab } from './lab.js'
import { isolatedRun, recordRound, startLinger, stopLinger, type JobRun } from './run.js'
import { spaceNeeded, waitForSpace } from './space.js'

/** What the runner needs of the swarm. */
export interface RunnerSwarm {
  gossip: Pick<GossipService, 'publish' | 'subscribe'>
  /** The swarm this node is in (undefined: none). */
  swarmId(): string | undefined
  /** A peer announced `cid`: a fetch of it dials the announcer first. */
  noteAnnouncer(cid: string, did: string): void
}

/** What the runner needs of the node's data. */
export interface RunnerData {
  /** Grants to this node for a dataset. */
  grants(dataset: string): Promise<GrantInfo[]>
  /** The privacy budget a grant sets (undefined: none). */
  budget(grant: string): Promise<PrivacyBudget | undefined>
  /** Decrypts a granted shard for a job. */
  readShard(cid: string, job: string): Promise<Dataset>
  prep: JobDataPrep
}

export interface RunnerComponents {
  did: string
  db: NodeDb
  catalog: Pick<JobCatalog, 'verified'>
  swarm: RunnerSwarm
  data: RunnerData
  models: ContentWeightStore
  /** Signs, stores and gossips this node's receipt of a round (`NodeReceipts.issue`). */
  receipts: { issue(input: ReceiptInput): Promise<string> }
  /** SGM steps spent so far per shard (`NodePrivacy.spentByShard`). */
  spent(): Promise<ReadonlyMap<string, ReadonlyMap<string, SgmSteps>>>
  /** DIDs whose models are not aggregated (the audit service's convictions). */
  exclusions?: { excluded(did: string): boolean }
  /** The grants a job's lineage excludes (unlearned), sorted. */
  excludedGrants(job: string): Promise<string[]>
  /** The job finished on this node (its pending unlearning events are done). */
  finished(job: string): Promise<void>
  training: ShoalConfig['training']
  /** Where the trainers keep their resume points (in the data dir: its free space is watched). */
  checkpointsDir: string
  /** Free bytes on the file system of a dir (default: statfs), for a job stalled by a full disk. */
  freeSpace?: (dir: string) => Promise<number>
  log: Logger
  /** The swarm trainers' logger (`shoal:training:swarm` with the node id). */
  trainerLog?: Logger
  /** LAB ONLY (`SHOAL_LAB_BYZANTINE`, lab.ts): this node attacks every job it runs. */
  lab?: JobLab
}

export class JobRunner {
  private readonly c: RunnerComponents
  private readonly runs = new Map<string, JobRun>()
  /** Joins in progress, so that an announcement and an explicit join never start two trainers. */
  private readonly joining = new Map<string, Promise<{ job: string; shards: number }>>()
  /** Whether the trainers are paused, and from which round (0: before the next step). */
  private paused = false
  private pauseFrom = 0
  private stopped = false

  constructor(components: RunnerComponents) {
    this.c = components
  }

  /** The trainers' resume points (unlearning resets them). */
  get resumePoints(): FileCheckpointStore {
    return new FileCheckpointStore({ dir: this.c.checkpointsDir })
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const r of this.runs.values()) {
      r.controller.abort()
      stopLinger(r)
    }
    await Promise.all([...this.runs.values()].map(async (r) => r.trainer.stop().catch(() => {})))
  }

  /** The state of a job here (`known` when it does not run). */
  state(job: string): string {
    return this.runs.get(job)?.state ?? 'known'
  }

  /** Resume the jobs this node was running before a restart. */
  async resumeJoined(): Promise<void> {
    for (const j of await this.c.db.list('joined')) {
      if ((await this.c.db.get('jobs', j.id)) === undefined || this.runs.has(j.id)) continue
      this.join(j.id).catch((err: unknown) =>
        this.c.log.warn({ job: j.id, err: (err as Error).message }, 'resume failed')
      )
    }
  }

  /** A job was announced: join it when this node holds grants for it and has not left it. */
  async announced(job: VerifiedJob): Promise<void> {
    const current = this.runs.get(job.id)
    if ((current !== undefined && current.state !== 'left') || this.joining.has(job.id)) return
    const shards = await this.localShards(job)
    if (shards.length > 0 && (await this.c.db.get('left', job.id)) === undefined) {
      this.c.log.info(
        { job: job.id, shards: shards.length },
        'joining an announced job this node holds grants for'
      )
      await this.join(job.id)
    }
  }

  /** `previous`: a run this one continues (stalled on a full disk): its history and counters carry over. */
  async join(
    jobId: string,
    opts: { shards?: string[]; previous?: JobRun } = {}
  ): Promise<{ job: string; shards: number }> {
    const pending = this.joining.get(jobId)
    if (pending !== undefined) return pending
    const p = this.doJoin(jobId, opts).finally(() => this.joining.delete(jobId))
    this.joining.set(jobId, p)
    return p
  }

  private async doJoin(
    jobId: string,
    opts: { shards?: string[]; previous?: JobRun }
  ): Promise<{ job: string; shards: number }> {
    const current = this.runs.get(jobId)
    if (current !== undefined && ['starting', 'running', 'paused'].includes(current.state)) {
      throw new JobRequestError('JOB_ALREADY_RUNNING', `this node already runs job ${jobId}`, { job: jobId })
    }
    const job = await this.c.catalog.verified(jobId)
    let shards = await this.localShards(job)
    if (opts.shards !== undefined) shards = shards.filter((s) => opts.shards!.includes(s.cid))
    if (shards.length === 0) {
      throw new JobRequestError(
        'JOB_NO_DATA',
        `this node holds no grant for any shard of dataset ${job.spec.dataset} (job ${jobId})`,
        { job: jobId, dataset: job.spec.dataset }
      )
    }
    const budget = await budgetAllowance({
      spec: job.spec,
      shards,
      spent: await this.c.spent(),
      budget: async (grant) => this.c.data.budget(grant)
    })
    if (budget.refused.length > 0)
      this.c.log.warn({ shards: budget.refused }, 'privacy budget spent: training without these shards')
    shards = budget.shards
    const excluded = await this.c.excludedGrants(jobId)
    const train: ShardData[] = []
    for (const s of shards)
      train.push(this.c.data.prep.tensors(await this.c.data.readShard(s.cid, jobId), job.spec))
    const attack = this.c.lab?.byzantine
    if (attack?.kind === 'label-flip') {
      const classes = 'classes' in job.spec.model ? job.spec.model.classes : 0
      train.splice(0, train.length, ...train.map((d) => ('y' in d ? flipLabels(d, classes) : d)))
    }
    if (attack !== undefined) this.c.log.warn({ job: jobId, attack }, 'LAB: this node attacks the job')
    const test = await this.c.data.prep.heldOut(job.spec)
    const swarmId = this.c.swarm.swarmId()
    if (swarmId === undefined) throw new JobRequestError('JOB_NOT_RUNNING', 'this node is not in a swarm', {})
    const deterministic = this.deterministic()
    const prev = opts.previous
    const run: JobRun = {
      job,
      trainer: undefined as unknown as SwarmTrainer, // set right below (the receipt signer needs `run`)
      controller: new AbortController(),
      state: 'starting',
      history: [...(prev?.history ?? [])],
      rejected: [...(prev?.rejected ?? [])],
      shards,
      deterministic,
      allowance: budget.rounds,
      excluded,
      receipts: prev?.receipts ?? 0,
      aggregated: prev?.aggregated ?? 0,
      ...(prev?.stalls !== undefined ? { stalls: prev.stalls } : {}),
      startedAt: prev?.startedAt ?? Date.now()
    }
    run.trainer = new SwarmTrainer(
      {
        bus: this.recordingBus(run, gossipUpdateBus(this.c.swarm.gossip, updatesTopic(swarmId, jobId))),
        store: this.c.models,
        checkpoints: this.resumePoints,
        train,
        ...(test !== undefined ? { test } : {}),
        receipts: { sign: async (r) => this.signReceipt(run, r) },
        ...(this.c.exclusions !== undefined ? { exclusions: this.c.exclusions } : {}),
        ...(this.c.trainerLog !== undefined ? { log: this.c.trainerLog } : {}),
        ...(attack !== undefined && attack.kind !== 'label-flip' ? { tamper: byzantineTamper(attack) } : {})
      },
      {
        job: job.spec,
        jobId,
        did: this.c.did,
        requireReceipts: true,
        epoch: epochOf(excluded),
        deterministic,
        device: deterministic ? 'cpu' : this.c.training.device,
        // A volunteer's GPU that fails to start must not stop it from training: CPU, with a warning.
        fallbackToCpu: true,
        fetchTimeoutMs: this.c.training.fetchTimeoutSeconds * 1000,
        ...(this.c.training.threads > 0 ? { threads: this.c.training.threads } : {})
      }
    )
    this.runs.set(jobId, run)
    await this.c.db.put('joined', jobId, { id: jobId })
    await this.c.db.del('left', jobId)
    run.state = 'running'
    this.apply()
    run.finished = this.execute(run)
    return { job: jobId, shards: shards.length }
  }

  /**
   * The job's updates bus, recording this node's last announcement (lingering repeats it) and
   * noting each announcer of a CID (its fetch dials the announcer).
   */
  private recordingBus(run: JobRun, gossip: UpdateBus): UpdateBus {
    run.announce = async (msg) => gossip.publish(msg)
    return {
      publish: async (msg) => {
        run.lastAnnouncement = msg
        await gossip.publish(msg)
      },
      subscribe: (handler) =>
        gossip.subscribe((msg, from) => {
          this.c.swarm.noteAnnouncer(msg.weightsCid, from.did)
          handler(msg, from)
        })
    }
  }

  /** Shards of the job's dataset this node may use for it: granted (purpose job or any). */
  private async localShards(job: VerifiedJob): Promise<GrantedShard[]> {
    return grantedShards(await this.c.data.grants(job.spec.dataset), job.spec.dataset, this.c.did)
  }

  /** Deterministic CPU training unless the node is told to use a GPU or not to be verifiable. */
  private deterministic(): boolean {
    const { verifiable, device } = this.c.training
    return verifiable && (device === 'auto' || device === 'cpu')
  }

  private async execute(run: JobRun): Promise<void> {
    const id = run.job.id
    try {
      const result = await run.trainer.run({
        signal: run.controller.signal,
        ...(Number.isFinite(run.allowance) ? { maxRounds: run.allowance } : {}),
        onRound: async (s) => {
          recordRound(run, s)
          run.stalls = 0
          const reached = s.nextRound - 1
          await this.c.db.put('checkpoints', s.checkpointCid, {
            cid: s.checkpointCid,
            spec: run.job.spec.model,
            source: 'job',
            job: id,
            round: reached,
            maxInputRound: Math.max(reached, ...s.peers.map((p) => p.round)),
            excluded: run.excluded,
            accuracy: s.accuracy,
            loss: s.loss,
            lineage: [id],
            createdAt: new Date().toISOString()
          })
          await this.c.db.put('latest', id, { cid: s.checkpointCid, round: reached, accuracy: s.accuracy })
        }
      })
      if (run.state === 'unlearning') return // superseded by a rollback; the new run goes on
      run.state = result.stopped === 'aborted' ? (run.state === 'left' ? 'left' : 'failed') : 'done'
      if (run.state === 'done') await this.c.finished(id)
      if (result.stopped === 'budget') {
        run.stopped = 'budget'
        this.c.log.info(
          { job: id, rounds: result.roundsRun },
          'privacy budget spent: this node stops training'
        )
      }
      if (run.state === 'done') {
        await this.c.db.del('joined', id)
        startLinger(run, () => this.stopped)
      }
      if (run.state === 'done' && isolatedRun(run))
        this.c.log.warn(
          { job: id, rounds: result.roundsRun, k: run.job.spec.hyper.k },
          'job finished without aggregating any peer model: this node trained alone (isolated)'
        )
      this.c.log.info(
        { job: id, rounds: result.roundsRun, accuracy: result.accuracy },
        'job finished on this node'
      )
    } catch (caught) {
      if (!this.stopped) this.ended(run, caught)
    }
  }

  /**
   * A run that ended with an error: a full disk stalls it until space returns (unless it was
   * left or is being unlearned), anything else fails it.
   */
  private ended(run: JobRun, caught: unknown): void {
    const full = asDiskFull(caught)
    const err = (full ?? caught) as ShoalError
    run.error = { code: err.code, message: err.message }
    if (full !== undefined && run.state !== 'left' && run.state !== 'unlearning') {
      run.state = 'stalled'
      this.c.log.error(
        { job: run.job.id, round: run.trainer.round, err: run.error },
        'disk full: the job stalls on this node and resumes from its checkpoint when space returns'
      )
      void this.resumeWhenSpace(run)
      return
    }
    run.state = 'failed'
    this.c.log.error({ job: run.job.id, err: run.error }, 'job failed on this node')
  }

  /**
   * A run stalled by a full disk: its trainer is released; once the data dir's file system has
   * room for a few rounds again, the job is joined again (from its checkpoint: a round already
   * signed keeps its receipt), unless it was left, unlearned, joined by hand or the node stopped.
   * Still full: it stalls again.
   */
  private async resumeWhenSpace(run: JobRun): Promise<void> {
    const id = run.job.id
    await run.trainer.stop().catch(() => {})
    const stalls = run.stalls ?? 0
    run.stalls = stalls + 1
    const need = spaceNeeded(modelParams(run.job.spec.model))
    const free = this.c.freeSpace
    try {
      await waitForSpace(this.c.checkpointsDir, need, {
        signal: run.controller.signal,
        stalls,
        ...(free !== undefined ? { free } : {})
      })
    } catch {
      return // left, unlearned or stopped meanwhile
    }
    if (this.stopped || run.state !== 'stalled' || this.runs.get(id) !== run) return
    this.c.log.info({ job: id, round: run.trainer.round }, 'space returned: the job resumes on this node')
    try {
      await this.join(id, { previous: run })
    } catch (caught) {
      const started = this.runs.get(id)
      if (started !== run && started?.finished === undefined) {
        // Joined, then failed before it ran (e.g. its record could not be written): back to the stall.
        await started?.trainer.stop().catch(() => {})
        this.runs.set(id, run)
      }
      this.ended(run, caught) // still full: stalls again
    }
  }

  private async signReceipt(run: JobRun, r: RoundRecord): Promise<string> {
    const jwt = await this.c.receipts.issue({
      job: r.job,
      round: r.round,
      baseCid: r.baseCid,
      shards: run.shards,
      hyper: r.hyper,
      seed: r.seed,
      samples: r.samples,
      steps: r.steps,
      resultHash: resultHash(r.weights, modelParams(run.job.spec.model)),
      lossBefore: Number.isFinite(r.lossBefore) ? r.lossBefore : 0,
      lossAfter: Number.isFinite(r.lossAfter) ? r.lossAfter : 0,
      ep: r.ep,
      ...(r.resultCid === undefined ? {} : { resultCid: r.resultCid }),
      ...(r.threads === undefined ? {} : { threads: r.threads }),
      ...(run.excluded.length > 0 ? { excluded: run.excluded } : {})
    })
    run.receipts++
    return jwt
  }

  /** Pause or resume every trainer to match `pauseAll`/`resumeAll`. */
  private apply(): void {
    const pause = this.paused
    for (const r of this.runs.values()) {
      if (pause && (r.state === 'running' || r.state === 'paused')) {
        r.trainer.pause({ fromRound: this.pauseFrom })
        if (r.state === 'paused') continue
        r.state = 'paused'
        // While paused it keeps offering its latest model, so late joiners start from it.
        startLinger(r, () => this.stopped)
      } else if (!pause && r.state === 'paused') {
        stopLinger(r)
        r.trainer.resume()
        r.state = 'running'
      }
    }
  }

  /** Pause every job before its next step, or (`fromRound`) before its round `fromRound`. */
  pauseAll(opts: { fromRound?: number } = {}): void {
    this.pauseFrom = opts.fromRound ?? 0
    this.paused = true
    this.apply()
  }

  resumeAll(): void {
    this.pauseFrom = 0
    this.paused = false
    this.apply()
  }

  get isPaused(): boolean {
    return this.paused
  }

  async leave(jobId: string): Promise<void> {
    const run = this.runs.get(jobId)
    if (run === undefined)
      throw new JobRequestError('JOB_NOT_RUNNING', `this node does not run job ${jobId}`, { job: jobId })
    run.state = 'left'
    run.controller.abort()
    stopLinger(run)
    await run.trainer.stop().catch(() => {})
    await this.c.db.del('joined', jobId)
    await this.c.db.put('left', jobId, { id: jobId })
  }

  /** For unlearning: stops the job's run for a rollback; whether this node takes part in the job. */
  async halt(jobId: string): Promise<boolean> {
    const run = this.runs.get(jobId)
    const participating =
      (run !== undefined && run.state !== 'left' && run.state !== 'revoked') ||
      (await this.c.db.get('joined', jobId)) !== undefined
    if (run !== undefined) {
      run.state = 'unlearning'
      stopLinger(run)
      run.controller.abort()
      await run.trainer.stop().catch(() => {})
      await run.finished?.catch(() => {})
    }
    return participating
  }

  /** For unlearning: joins again after a rollback. */
  async retrain(jobId: string): Promise<void> {
    await this.doJoin(jobId, {})
  }

  /** For unlearning: this node's data for the job is gone. */
  async revoked(jobId: string): Promise<void> {
    await this.c.db.del('joined', jobId)
    const run = this.runs.get(jobId)
    if (run !== undefined) run.state = 'revoked'
  }

  /** `job_status` of a job, less its record (`checkpoints`: this node's, oldest first). */
  status(jobId: string, checkpoints: unknown[]): Record<string, unknown> {
    const run = this.runs.get(jobId)
    const last = run?.history.at(-1)
    const counters = run?.trainer.counters
    return {
      state: run?.state ?? 'known',
      held: run?.trainer.isHeld ?? false,
      round: last?.round ?? null,
      rounds: run?.job.spec.hyper.rounds ?? null,
      accuracy: [...(run?.history ?? [])].reverse().find((h) => h.accuracy !== undefined)?.accuracy ?? null,
      loss: last?.loss ?? null,
      peersUsed: last?.peersUsed ?? 0,
      peersAggregated: run?.aggregated ?? 0,
      isolated: run !== undefined && isolatedRun(run),
      shards: run?.shards ?? [],
      bytesSent: counters?.bytesSent ?? 0,
      bytesReceived: counters?.bytesReceived ?? 0,
      receipts: run?.receipts ?? 0,
      stopped: run?.stopped ?? null,
      allowance: run === undefined || !Number.isFinite(run.allowance) ? null : run.allowance,
      rejected: run?.rejected ?? [],
      history: run?.history ?? [],
      checkpoints,
      epoch: epochOf(run?.excluded ?? []),
      excluded: run?.excluded ?? [],
      error: run?.error ?? null
    }
  }

  contributions(): Record<string, unknown> {
    return Object.fromEntries(
      [...this.runs].map(([id, r]) => [
        id,
        {
          state: r.state,
          rounds: r.history.length,
          samples: r.history.reduce((a, h) => a + h.samples, 0),
          receipts: r.receipts,
          bytesSent: r.trainer.counters.bytesSent,
          bytesReceived: r.trainer.counters.bytesReceived
        }
      ])
    )
  }
}
