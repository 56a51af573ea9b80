/**
 * Jobs on a node: create (signed, content-addressed) and announce them on the swarm's jobs
 * topic; join a job when this node holds grants for some of its dataset's shards (or is told
 * to); run the round protocol (`SwarmTrainer`) over gossip and bitswap; sign a receipt per
 * round; keep per-round stats and checkpoints; pause/resume contribution.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { ShoalError, logger } from '../common/index.js'
import type { Identity } from '../identity/index.js'
import type { JobMessage, SwarmTopics } from '../p2p/index.js'
import { loadMnist, toLabeledImages, trainTestSplit, type Dataset } from '../storage/datasets/index.js'
import type { ContentStore } from '../storage/index.js'
import {
  ContentWeightStore,
  FileCheckpointStore,
  RoundReexecutor,
  SwarmTrainer,
  concatDatasets,
  epochOf,
  createJob,
  gossipUpdateBus,
  jobAnnouncement,
  updatesTopic,
  verifyJob,
  verifyJobAnnouncement,
  type JobSpec,
  type JobSpecInput,
  type RoundRecord,
  type RoundStats,
  type UpdateAnnouncement,
  type VerifiedJob
} from '../training/swarm/index.js'
import {
  IMAGE_NORMALIZATION,
  decodeWeights,
  encodeWeights,
  fromImages,
  paramsOf,
  type TensorDataset
} from '../training/index.js'
import { decodeReceipt, issueReceipt, receiptHash, resultHash } from '../training/receipts/index.js'
import { grantStatus, type GrantInfo } from '../storage/grants/index.js'
import type { ShoalConfig } from './config/index.js'
import type { CheckpointRecord, NodeDb } from './db.js'
import type { NodeDatasets } from './datasets.js'
import type { NodeSwarm } from './swarm.js'
import { roundsWithin, type NodePrivacy } from './privacy.js'
import { pinReceipt, type ReceiptRecord } from './receipts.js'

const log = logger('shoal:node:jobs')

/** The input standardisation of every job (the nodes must agree; exports put it into the graph). */
const NORM = IMAGE_NORMALIZATION
/** Stats of the last rounds kept in memory for job_status. */
const HISTORY = 500
/**
 * After finishing a job, and while paused, a node re-announces its latest model this often, for
 * LINGER_MS, so that a late joiner, a straggler or a restarted node (which missed the last
 * announcements: gossipsub keeps no history) starts from it or catches up instead of training
 * alone.
 */
const LINGER_EVERY_MS = 2000
const LINGER_MS = 5 * 60_000

/** Thrown for job requests this node cannot serve. */
export class JobRequestError extends ShoalError<
  | 'JOB_NOT_FOUND'
  | 'JOB_NO_DATA'
  | 'JOB_ALREADY_RUNNING'
  | 'JOB_NOT_RUNNING'
  | 'JOB_PRIVACY_BUDGET'
  | 'JOB_INIT_INVALID',
  Record<string, unknown>
> {}

export interface JobRecord {
  id: string
  jwt: string
  name: string
  creator: string
  dataset: string
  createdAt: string
}

interface Running {
  job: VerifiedJob
  trainer: SwarmTrainer
  controller: AbortController
  state: 'starting' | 'running' | 'paused' | 'done' | 'failed' | 'left' | 'unlearning' | 'revoked'
  /** Grants (ids, sorted) whose data this run's lineage excludes: unlearned after they ended. */
  excluded: string[]
  /** Settles when `execute` has finished with this run. */
  finished?: Promise<void>
  history: Array<
    Omit<RoundStats, 'peers' | 'rejected' | 'unavailable'> & { rejected: number; unavailable: number }
  >
  rejected: Array<{ round: number; from: string; reason: string }>
  shards: Array<{ cid: string; grant: string }>
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
  startedAt: number
  lastAnnouncement?: UpdateAnnouncement
  /** Publishes on the job's updates topic without recording (for lingering re-announcements). */
  announce?: (msg: UpdateAnnouncement) => Promise<void>
  linger?: ReturnType<typeof setInterval>
}

export interface JobsComponents {
  identity: Identity
  store: ContentStore
  db: NodeDb
  swarm: NodeSwarm
  datasets: NodeDatasets
  config: ShoalConfig
  jobsDir: string
  /** DIDs whose models are not aggregated (the audit service's convictions). */
  exclusions?: { excluded(did: string): boolean }
  /** Privacy accounting over the stored receipts (the owners' budgets are enforced with it). */
  privacy: NodePrivacy
}

/** The db kind of each job's unlearned grants and unlearning events (key = job id). */
export const EXCLUSIONS_KIND = 'job-exclusions'

/** One unlearning: a grant ended, the job rolled back before its first influence and retrained without it. */
export interface UnlearningEvent {
  grant: string
  how: 'revoked' | 'expired'
  /** The first round whose receipts name the grant (its first influence). */
  fromRound: number
  /** The round of the checkpoint rolled back to; null: back to the initial weights. */
  rolledBackTo: number | null
  /** This node's checkpoints dropped (influenced by the grant). */
  checkpointsDropped: number
  /** `retraining`/`done`: this node retrains; `no-data`: its only data was revoked; `not-training`: it does not train this job. */
  retrain: 'retraining' | 'done' | 'no-data' | 'not-training'
  startedAt: string
  finishedAt?: string
  /** From the end of the grant to the end of retraining on this node (ms). */
  ms?: number
}

/** What {@link NodeJobs.lineage} returns. */
export interface JobLineage {
  job: string
  epoch: string
  excluded: string[]
  grants: Array<{
    grant: string
    dataset: string | null
    owner: string | null
    grantee: string | null
    status: 'valid' | 'revoked' | 'expired' | 'unknown'
    /** Rolled back and retrained without. */
    unlearned: boolean
    firstRound: number
    lastRound: number
    receipts: number
    trainers: string[]
  }>
  checkpoints: Array<{ cid: string; round: number; excluded: string[]; influencedBy: string[] }>
  unlearning: UnlearningEvent[]
}

export interface ExclusionRecord {
  job: string
  /** Unlearned grants, sorted. */
  grants: string[]
  events: UnlearningEvent[]
}

/** Prepared shard sets kept for re-execution (least recently used beyond it are dropped). */
const REEXEC_DATA_CACHE = 8

/** How long a re-execution waits for a base model or a shard from the network. */
const REEXEC_FETCH_TIMEOUT_MS = 60_000

export class NodeJobs {
  private readonly c: JobsComponents
  private readonly running = new Map<string, Running>()
  private topics: SwarmTopics | undefined
  private unsubscribe: (() => void) | undefined
  /** Paused by the user (node_pause), or by the duty cycle between its active windows. */
  private paused = false
  private dutyPaused = false
  private dutyTimer: ReturnType<typeof setTimeout> | undefined
  private stopped = false

  /**
   * Re-runs peers' rounds for the audit service: the job from this node's records, the base
   * weights by CID (over bitswap when remote), the shards this node owns or holds grants for,
   * prepared exactly as a trainer prepares them.
   */
  readonly reexecutor: RoundReexecutor
  private readonly reexecData = new Map<string, TensorDataset>()
  /** Models (SHOALWT1 weights) in the node's store: announced, checkpoints, bases. */
  private readonly models: ContentWeightStore

  constructor(c: JobsComponents) {
    this.c = c
    this.models = new ContentWeightStore({ content: c.store, reach: c.swarm.reach })
    const weights = this.models
    const within = (signal?: AbortSignal): AbortSignal =>
      AbortSignal.any([
        AbortSignal.timeout(REEXEC_FETCH_TIMEOUT_MS),
        ...(signal === undefined ? [] : [signal])
      ])
    this.reexecutor = new RoundReexecutor({
      job: async (id) => {
        const spec = await this.spec(id)
        if (spec === undefined) throw new JobRequestError('JOB_NOT_FOUND', `unknown job ${id}`, { job: id })
        return spec
      },
      weights: async (cid, signal) => decodeWeights(await weights.get(cid, within(signal))),
      shards: async (cids, spec, signal, jobId) => {
        // Decrypted, prepared shards are kept (a few) for the next re-runs of the same
        // trainer's rounds; dropped when any grant ends.
        const key = `${jobId}\u0000${cids.join(',')}`
        const hit = this.reexecData.get(key)
        if (hit !== undefined) {
          this.reexecData.delete(key)
          this.reexecData.set(key, hit)
          return hit
        }
        const parts: TensorDataset[] = []
        for (const cid of cids) {
          parts.push(this.toTensors(await c.datasets.readAny(cid, jobId, within(signal)), spec))
        }
        const data = concatDatasets(parts)
        this.reexecData.set(key, data)
        while (this.reexecData.size > REEXEC_DATA_CACHE)
          this.reexecData.delete(this.reexecData.keys().next().value!)
        return data
      }
    })
  }

  async start(): Promise<void> {
    await mkdir(this.c.jobsDir, { recursive: true, mode: 0o700 })
    this.c.swarm.onEnter((topics) => this.attach(topics))
    this.c.datasets.onGrantEnded((grant, how) => {
      this.grantEnded(grant, how).catch((err: unknown) =>
        log.error({ grant: grant.id, err: (err as Error).message }, 'unlearning failed')
      )
    })
    const { dutyCycle, dutyPeriodSeconds } = this.c.config.training
    if (dutyCycle < 1) this.dutyWindow(true, dutyCycle, dutyPeriodSeconds * 1000)
  }

  /** Alternate active (dutyCycle × period) and idle windows. */
  private dutyWindow(active: boolean, cycle: number, periodMs: number): void {
    if (this.stopped) return
    this.dutyPaused = !active
    this.apply()
    const ms = active ? cycle * periodMs : (1 - cycle) * periodMs
    this.dutyTimer = setTimeout(() => this.dutyWindow(!active, cycle, periodMs), ms)
    this.dutyTimer.unref?.()
  }

  /** Pause or resume every trainer to match the user's and the duty cycle's wishes. */
  private apply(): void {
    const pause = this.paused || this.dutyPaused
    for (const r of this.running.values()) {
      if (pause && r.state === 'running') {
        r.trainer.pause()
        r.state = 'paused'
        // While paused it keeps offering its latest model, so late joiners start from it.
        this.linger(r)
      } else if (!pause && r.state === 'paused') {
        if (r.linger !== undefined) clearInterval(r.linger)
        r.linger = undefined
        r.trainer.resume()
        r.state = 'running'
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.dutyTimer !== undefined) clearTimeout(this.dutyTimer)
    this.unsubscribe?.()
    for (const r of this.running.values()) {
      r.controller.abort()
      if (r.linger !== undefined) clearInterval(r.linger)
    }
    await Promise.all([...this.running.values()].map(async (r) => r.trainer.stop().catch(() => {})))
    await this.reexecutor.close().catch(() => {})
  }

  private attach(topics: SwarmTopics): void {
    this.unsubscribe?.()
    this.topics = topics
    this.unsubscribe = this.c.swarm.gossip.subscribe(topics.jobs, (msg) => {
      this.onJobMessage(msg).catch((err: unknown) => {
        log.warn({ job: msg.jobId, err: (err as Error).message }, 'job announcement refused')
      })
    })
    // Resume jobs this node was running before a restart.
    void this.resumeJoined()
  }

  private async resumeJoined(): Promise<void> {
    for (const j of await this.c.db.list<{ id: string }>('joined')) {
      const rec = await this.c.db.get<JobRecord>('jobs', j.id)
      if (rec !== undefined && !this.running.has(j.id)) {
        this.join(j.id).catch((err: unknown) =>
          log.warn({ job: j.id, err: (err as Error).message }, 'resume failed')
        )
      }
    }
  }

  private async onJobMessage(msg: JobMessage): Promise<void> {
    const job = await verifyJobAnnouncement(msg)
    if ((await this.c.db.get<JobRecord>('jobs', job.id)) === undefined) await this.record(job)
    const current = this.running.get(job.id)
    if ((current !== undefined && current.state !== 'left') || this.joining.has(job.id)) return
    const shards = await this.localShards(job.spec)
    if (shards.length > 0 && (await this.c.db.get('left', job.id)) === undefined) {
      log.info({ job: job.id, shards: shards.length }, 'joining an announced job this node holds grants for')
      await this.join(job.id)
    }
  }

  private async record(job: VerifiedJob): Promise<JobRecord> {
    const rec: JobRecord = {
      id: job.id,
      jwt: job.jwt,
      name: job.spec.name,
      creator: job.spec.creator,
      dataset: job.spec.dataset,
      createdAt: new Date(job.iat * 1000).toISOString()
    }
    await this.c.db.put('jobs', job.id, rec)
    return rec
  }

  /**
   * @throws {JobRequestError} `JOB_INIT_INVALID` when `spec.init` is not a checkpoint of this
   *   node with the job's model.
   */
  async create(spec: JobSpecInput): Promise<JobRecord> {
    if (spec.init !== undefined) {
      const cp = await this.c.db.get<CheckpointRecord>('checkpoints', spec.init)
      if (cp === undefined || JSON.stringify(cp.spec) !== JSON.stringify(spec.model)) {
        throw new JobRequestError(
          'JOB_INIT_INVALID',
          cp === undefined
            ? `init ${spec.init} is not a checkpoint on this node (import the model first)`
            : `init ${spec.init} is a checkpoint of another model than the job's`,
          { init: spec.init }
        )
      }
      // A checkpoint may be encrypted for this node alone: the swarm gets it as a plain model,
      // published by CID (the creator's choice to share it).
      const weights = decodeWeights(await this.models.get(spec.init))
      const plain = await this.models.put(encodeWeights(weights, paramsOf(spec.model as JobSpec['model'])))
      spec = { ...spec, init: plain }
    }
    const signed = await createJob(this.c.identity, spec)
    const verified = await verifyJob(signed.jwt)
    const rec = await this.record(verified)
    await this.announce(rec)
    return rec
  }

  /** (Re)publish a job on the jobs topic (late joiners only see what is published after they subscribe). */
  async announce(rec: Pick<JobRecord, 'id' | 'jwt'>): Promise<void> {
    if (this.topics === undefined) return
    await this.c.swarm.gossip.publish(this.topics.jobs, jobAnnouncement(rec))
  }

  async list(): Promise<Array<JobRecord & { state: string }>> {
    const jobs = await this.c.db.list<JobRecord>('jobs')
    return jobs.map((j) => ({ ...j, state: this.running.get(j.id)?.state ?? 'known' }))
  }

  /** Shards of the job's dataset this node may use for it: granted (purpose job or any). */
  private async localShards(spec: JobSpec): Promise<Array<{ cid: string; grant: string }>> {
    const grants = await this.c.datasets.grants.list({ dataset: spec.dataset, grantee: this.c.identity.did })
    const out = new Map<string, string>()
    const now = Math.floor(Date.now() / 1000)
    for (const g of grants) {
      if (grantStatus(g, now) !== 'valid') continue
      for (const s of g.shards) if (!out.has(s)) out.set(s, g.id)
    }
    return [...out].map(([cid, grant]) => ({ cid, grant }))
  }

  private toTensors(ds: Dataset, spec: JobSpec): TensorDataset {
    return fromImages(toLabeledImages(ds), { ...NORM, shape: spec.model.input })
  }

  /** Joins in progress, so that an announcement and an explicit join never start two trainers. */
  private readonly joining = new Map<string, Promise<{ job: string; shards: number }>>()

  async join(jobId: string, opts: { shards?: string[] } = {}): Promise<{ job: string; shards: number }> {
    const pending = this.joining.get(jobId)
    if (pending !== undefined) return pending
    const p = this.doJoin(jobId, opts).finally(() => this.joining.delete(jobId))
    this.joining.set(jobId, p)
    return p
  }

  private async doJoin(jobId: string, opts: { shards?: string[] }): Promise<{ job: string; shards: number }> {
    const current = this.running.get(jobId)
    if (current !== undefined && ['starting', 'running', 'paused'].includes(current.state)) {
      throw new JobRequestError('JOB_ALREADY_RUNNING', `this node already runs job ${jobId}`, { job: jobId })
    }
    const rec = await this.c.db.get<JobRecord>('jobs', jobId)
    if (rec === undefined) throw new JobRequestError('JOB_NOT_FOUND', `unknown job ${jobId}`, { job: jobId })
    const job = await verifyJob(rec.jwt, { expectedId: jobId })
    let shards = await this.localShards(job.spec)
    if (opts.shards !== undefined) shards = shards.filter((s) => opts.shards!.includes(s.cid))
    if (shards.length === 0) {
      throw new JobRequestError(
        'JOB_NO_DATA',
        `this node holds no grant for any shard of dataset ${job.spec.dataset} (job ${jobId})`,
        { job: jobId, dataset: job.spec.dataset }
      )
    }
    const budget = await this.allowance(job.spec, shards)
    shards = budget.shards
    const excluded = (await this.c.db.get<ExclusionRecord>(EXCLUSIONS_KIND, jobId))?.grants ?? []
    const train: TensorDataset[] = []
    for (const s of shards)
      train.push(this.toTensors(await this.c.datasets.readShard(s.cid, jobId), job.spec))
    const test = await this.heldOut(job.spec)
    const topics = this.topics
    if (topics === undefined) throw new JobRequestError('JOB_NOT_RUNNING', 'this node is not in a swarm', {})
    const swarmId = this.c.swarm.swarm!.id
    const gossipBus = gossipUpdateBus(this.c.swarm.gossip, updatesTopic(swarmId, jobId))
    const run: Running = {
      job,
      trainer: undefined as unknown as SwarmTrainer,
      controller: new AbortController(),
      state: 'starting',
      history: [],
      rejected: [],
      shards,
      deterministic: this.deterministic(),
      allowance: budget.rounds,
      excluded,
      receipts: 0,
      aggregated: 0,
      startedAt: Date.now()
    }
    const bus: typeof gossipBus = {
      publish: async (msg) => {
        run.lastAnnouncement = msg
        await gossipBus.publish(msg)
      },
      subscribe: (handler) =>
        gossipBus.subscribe((msg, from) => {
          this.c.swarm.noteAnnouncer(msg.weightsCid, from.did) // its fetch dials the announcer
          handler(msg, from)
        })
    }
    run.announce = async (msg) => gossipBus.publish(msg)
    run.trainer = new SwarmTrainer(
      {
        bus,
        store: this.models,
        checkpoints: new FileCheckpointStore({ dir: join(this.c.jobsDir, 'checkpoints') }),
        train,
        ...(test !== undefined ? { test } : {}),
        receipts: { sign: async (r) => this.signReceipt(run, r) },
        ...(this.c.exclusions !== undefined ? { exclusions: this.c.exclusions } : {})
      },
      {
        job: job.spec,
        jobId,
        did: this.c.identity.did,
        requireReceipts: true,
        epoch: epochOf(excluded),
        deterministic: run.deterministic,
        device: run.deterministic ? 'cpu' : this.c.config.training.device,
        ...(this.c.config.training.threads > 0 ? { threads: this.c.config.training.threads } : {})
      }
    )
    this.running.set(jobId, run)
    await this.c.db.put('joined', jobId, { id: jobId })
    await this.c.db.del('left', jobId)
    run.state = 'running'
    this.apply()
    run.finished = this.execute(run)
    return { job: jobId, shards: shards.length }
  }

  /**
   * The rounds this node may still train on `shards` under their grants' privacy budgets
   * (ε of every round by anyone on the shard so far, plus this job's rounds, ≤ ε_max at δ);
   * shards whose budget is spent are left out.
   *
   * @throws {JobRequestError} `JOB_PRIVACY_BUDGET` when no shard has budget left (or the job adds no noise).
   */
  private async allowance(
    spec: JobSpec,
    shards: Array<{ cid: string; grant: string }>
  ): Promise<{ shards: Array<{ cid: string; grant: string }>; rounds: number }> {
    const cap = spec.hyper.rounds ?? Number.MAX_SAFE_INTEGER
    const spent = await this.c.privacy.spentByShard()
    const kept: Array<{ cid: string; grant: string }> = []
    let rounds = Infinity
    const refused: string[] = []
    for (const s of shards) {
      const budget = (await this.c.datasets.grants.find(s.grant))?.privacy
      if (budget === undefined) {
        kept.push(s)
        continue
      }
      const n = roundsWithin(spec, budget, [...(spent.get(s.cid)?.values() ?? [])], cap)
      if (n === 0) {
        refused.push(s.cid)
        continue
      }
      kept.push(s)
      rounds = Math.min(rounds, n)
    }
    if (kept.length === 0) {
      throw new JobRequestError(
        'JOB_PRIVACY_BUDGET',
        spec.privacy === undefined || spec.privacy === null
          ? `the owners' grants set a privacy budget and job "${spec.name}" adds no DP noise: it may not train on their data`
          : `the privacy budget of every granted shard is spent (${refused.length} shards)`,
        { shards: refused }
      )
    }
    if (refused.length > 0)
      log.warn({ shards: refused }, 'privacy budget spent: training without these shards')
    return { shards: kept, rounds }
  }

  /** The verified spec of a job this node has recorded (undefined when unknown). */
  async spec(jobId: string): Promise<JobSpec | undefined> {
    const rec = await this.c.db.get<JobRecord>('jobs', jobId)
    if (rec === undefined) return undefined
    return (await verifyJob(rec.jwt, { expectedId: jobId })).spec
  }

  /**
   * A grant ended (revoked or expired). Every job whose stored receipts name it — this node's
   * or any peer's — unlearns it: see {@link unlearn}.
   */
  private async grantEnded(grant: GrantInfo, how: 'revoked' | 'expired'): Promise<void> {
    this.reexecData.clear()
    const firstUse = new Map<string, number>()
    for (const r of await this.c.db.list<{ jwt: string; job: string; round: number }>('receipts')) {
      let names = false
      try {
        names = decodeReceipt(r.jwt).claims.shards.some((s) => s.grant === grant.id)
      } catch {
        continue
      }
      if (names) firstUse.set(r.job, Math.min(firstUse.get(r.job) ?? Infinity, r.round))
    }
    for (const [job, fromRound] of firstUse) {
      const rec = await this.c.db.get<ExclusionRecord>(EXCLUSIONS_KIND, job)
      if (rec?.grants.includes(grant.id) === true) continue
      const prior = this.unlearning.get(job) ?? Promise.resolve()
      const next = prior.then(async () => this.unlearn(job, grant.id, how, fromRound))
      this.unlearning.set(
        job,
        next.catch(() => {})
      )
      await next
    }
  }

  private readonly unlearning = new Map<string, Promise<void>>()

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
    const run = this.running.get(jobId)
    const participating =
      (run !== undefined && run.state !== 'left' && run.state !== 'revoked') ||
      (await this.c.db.get('joined', jobId)) !== undefined
    if (run !== undefined) {
      run.state = 'unlearning'
      if (run.linger !== undefined) clearInterval(run.linger)
      run.controller.abort()
      await run.trainer.stop().catch(() => {})
      await run.finished?.catch(() => {})
    }
    const cps = (await this.c.db.list<CheckpointRecord>('checkpoints')).filter(
      (c) => c.job === jobId && c.source === 'job'
    )
    const influenced = (c: CheckpointRecord): boolean =>
      (c.round ?? 0) >= fromRound || (c.maxInputRound ?? c.round ?? 0) >= fromRound
    const dropped = cps.filter(influenced)
    const target = cps
      .filter((c) => !influenced(c))
      .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
      .at(-1)
    for (const c of dropped) {
      await this.c.db.del('checkpoints', c.cid)
      await this.c.store.unpin(CID.parse(c.cid)).catch(() => {})
    }
    const files = new FileCheckpointStore({ dir: join(this.c.jobsDir, 'checkpoints') })
    if (target !== undefined) {
      await files.reset(jobId, { job: jobId, round: target.round ?? 0, weightsCid: target.cid })
      await this.c.db.put('latest', jobId, {
        cid: target.cid,
        round: target.round,
        accuracy: target.accuracy
      })
    } else {
      await files.reset(jobId)
      await this.c.db.del('latest', jobId)
    }
    const rec = (await this.c.db.get<ExclusionRecord>(EXCLUSIONS_KIND, jobId)) ?? {
      job: jobId,
      grants: [],
      events: []
    }
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
    log.info(
      { job: jobId, grant, how, fromRound, rolledBackTo: event.rolledBackTo, dropped: dropped.length },
      'unlearning: rolled back before the grant’s first influence'
    )
    if (!participating) return
    try {
      await this.doJoin(jobId, {})
    } catch (err) {
      const code = (err as ShoalError).code
      if (code !== 'JOB_NO_DATA' && code !== 'JOB_PRIVACY_BUDGET') throw err
      event.retrain = 'no-data'
      event.finishedAt = new Date().toISOString()
      event.ms = Date.now() - startedAt
      await this.c.db.put(EXCLUSIONS_KIND, jobId, rec)
      await this.c.db.del('joined', jobId)
      if (run !== undefined) run.state = 'revoked'
      log.info({ job: jobId, grant }, 'this node’s data for the job was revoked: it stops training')
    }
  }

  /** Marks the job's pending unlearning events done (its retraining finished here). */
  private async unlearningFinished(jobId: string): Promise<void> {
    const rec = await this.c.db.get<ExclusionRecord>(EXCLUSIONS_KIND, jobId)
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

  /** Deterministic CPU training unless the node is told to use a GPU or not to be verifiable. */
  private deterministic(): boolean {
    const { verifiable, device } = this.c.config.training
    return verifiable && (device === 'auto' || device === 'cpu')
  }

  private async heldOut(spec: JobSpec): Promise<TensorDataset | undefined> {
    // Jobs on the mnist package evaluate on the package's held-out 2,000 digits (seed 42),
    // which every node can load locally; other datasets carry no public test set yet.
    const all = await loadMnist()
    const { test } = trainTestSplit(all, { seed: 42 })
    try {
      return fromImages(test, { ...NORM, shape: spec.model.input })
    } catch {
      return undefined
    }
  }

  private async execute(run: Running): Promise<void> {
    const id = run.job.id
    try {
      const result = await run.trainer.run({
        signal: run.controller.signal,
        ...(Number.isFinite(run.allowance) ? { maxRounds: run.allowance } : {}),
        onRound: async (s) => {
          run.history.push({
            ...s,
            rejected: s.rejected.length,
            unavailable: s.unavailable.length
          })
          if (run.history.length > HISTORY) run.history.shift()
          run.aggregated += s.peersUsed
          for (const r of s.rejected) run.rejected.push({ round: s.round, from: r.from, reason: r.reason })
          if (run.rejected.length > HISTORY) run.rejected.splice(0, run.rejected.length - HISTORY)
          const reached = s.nextRound - 1
          await this.c.db.put<CheckpointRecord>('checkpoints', s.checkpointCid, {
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
      if (run.state === 'done') await this.unlearningFinished(id)
      if (result.stopped === 'budget') {
        run.stopped = 'budget'
        log.info({ job: id, rounds: result.roundsRun }, 'privacy budget spent: this node stops training')
      }
      if (run.state === 'done') {
        await this.c.db.del('joined', id)
        this.linger(run)
      }
      if (run.state === 'done' && isolatedRun(run))
        log.warn(
          { job: id, rounds: result.roundsRun, k: run.job.spec.hyper.k },
          'job finished without aggregating any peer model: this node trained alone (isolated)'
        )
      log.info({ job: id, rounds: result.roundsRun, accuracy: result.accuracy }, 'job finished on this node')
    } catch (err) {
      if (this.stopped) return
      run.state = 'failed'
      run.error = { code: (err as ShoalError).code, message: (err as Error).message }
      log.error({ job: id, err: run.error }, 'job failed on this node')
    }
  }

  private linger(run: Running): void {
    if (run.linger !== undefined) clearInterval(run.linger)
    const last = run.lastAnnouncement
    const announce = run.announce
    if (last === undefined || announce === undefined || this.stopped) return
    const until = Date.now() + LINGER_MS
    run.linger = setInterval(() => {
      if (Date.now() > until || this.stopped) {
        clearInterval(run.linger)
        return
      }
      announce(last).catch(() => {})
    }, LINGER_EVERY_MS)
    run.linger.unref?.()
  }

  private async signReceipt(run: Running, r: RoundRecord): Promise<string | undefined> {
    const prev = await this.c.db.get<{ jwt: string }>('receipt-head', this.c.identity.did)
    const jwt = await issueReceipt(
      this.c.identity,
      {
        job: r.job,
        round: r.round,
        baseCid: r.baseCid,
        shards: run.shards,
        hyper: r.hyper,
        seed: r.seed,
        samples: r.samples,
        steps: r.steps,
        resultHash: resultHash(r.weights, paramsOf(run.job.spec.model)),
        lossBefore: Number.isFinite(r.lossBefore) ? r.lossBefore : 0,
        lossAfter: Number.isFinite(r.lossAfter) ? r.lossAfter : 0,
        ep: r.ep,
        ...(run.excluded.length > 0 ? { excluded: run.excluded } : {})
      },
      prev?.jwt ?? null
    )
    // Saved before it is announced: a crash between the two must not look like a fork.
    const hash = receiptHash(jwt)
    const doc = await pinReceipt(this.c.store, jwt)
    await this.c.db.put<ReceiptRecord>('receipts', hash, {
      hash,
      jwt,
      job: r.job,
      round: r.round,
      issuer: this.c.identity.did,
      ...(doc === undefined ? {} : { doc })
    })
    await this.c.db.put('receipt-head', this.c.identity.did, { jwt, hash })
    run.receipts++
    if (this.topics !== undefined) {
      this.c.swarm.gossip.publish(this.topics.receipts, { type: 'receipt', receipt: jwt }).catch(() => {})
    }
    return jwt
  }

  async leave(jobId: string): Promise<void> {
    const run = this.running.get(jobId)
    if (run === undefined)
      throw new JobRequestError('JOB_NOT_RUNNING', `this node does not run job ${jobId}`, { job: jobId })
    run.state = 'left'
    run.controller.abort()
    if (run.linger !== undefined) clearInterval(run.linger)
    await run.trainer.stop().catch(() => {})
    await this.c.db.del('joined', jobId)
    await this.c.db.put('left', jobId, { id: jobId })
  }

  pauseAll(): void {
    this.paused = true
    this.apply()
  }

  resumeAll(): void {
    this.paused = false
    this.apply()
  }

  get isPaused(): boolean {
    return this.paused || this.dutyPaused
  }

  async status(jobId: string): Promise<Record<string, unknown>> {
    const rec = await this.c.db.get<JobRecord>('jobs', jobId)
    if (rec === undefined) throw new JobRequestError('JOB_NOT_FOUND', `unknown job ${jobId}`, { job: jobId })
    const run = this.running.get(jobId)
    const checkpoints = (await this.c.db.list<CheckpointRecord>('checkpoints'))
      .filter((c) => c.job === jobId)
      .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
      .map((c) => ({ cid: c.cid, round: c.round, accuracy: c.accuracy }))
    const last = run?.history.at(-1)
    const counters = run?.trainer.counters
    return {
      job: rec,
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

  /**
   * The job's lineage from the receipts this node holds: each grant (dataset, owner, grantee,
   * status) whose shards trained the job, the rounds that used it, and which of this node's
   * checkpoints it influenced (conservatively: every checkpoint built from rounds at or after
   * its first use, unless the checkpoint's lineage excludes it); the unlearning events.
   *
   * @throws {JobRequestError} `JOB_NOT_FOUND`
   */
  async lineage(jobId: string): Promise<JobLineage> {
    const rec = await this.c.db.get<JobRecord>('jobs', jobId)
    if (rec === undefined) throw new JobRequestError('JOB_NOT_FOUND', `unknown job ${jobId}`, { job: jobId })
    const excl = await this.c.db.get<ExclusionRecord>(EXCLUSIONS_KIND, jobId)
    const uses = new Map<string, { rounds: Set<number>; issuers: Set<string>; receipts: number }>()
    for (const r of await this.c.db.list<{ jwt: string; job: string }>('receipts')) {
      if (r.job !== jobId) continue
      let claims
      try {
        claims = decodeReceipt(r.jwt).claims
      } catch {
        continue
      }
      for (const g of new Set(claims.shards.map((x) => x.grant))) {
        let u = uses.get(g)
        if (u === undefined) uses.set(g, (u = { rounds: new Set(), issuers: new Set(), receipts: 0 }))
        u.rounds.add(claims.round)
        u.issuers.add(claims.iss)
        u.receipts++
      }
    }
    const now = Math.floor(Date.now() / 1000)
    const grants: JobLineage['grants'] = []
    for (const [id, u] of [...uses].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const info = await this.c.datasets.grants.find(id)
      const rounds = [...u.rounds].sort((a, b) => a - b)
      grants.push({
        grant: id,
        dataset: info?.dataset ?? null,
        owner: info?.owner ?? null,
        grantee: info?.grantee ?? null,
        status: info === undefined ? 'unknown' : grantStatus(info, now),
        unlearned: excl?.grants.includes(id) === true,
        firstRound: rounds[0]!,
        lastRound: rounds.at(-1)!,
        receipts: u.receipts,
        trainers: [...u.issuers].sort()
      })
    }
    const checkpoints = (await this.c.db.list<CheckpointRecord>('checkpoints'))
      .filter((c) => c.job === jobId && c.source === 'job')
      .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
      .map((c) => {
        const reach = c.maxInputRound ?? c.round ?? 0
        const excluded = c.excluded ?? []
        return {
          cid: c.cid,
          round: c.round ?? 0,
          excluded,
          influencedBy: grants
            .filter((g) => g.firstRound <= reach && !excluded.includes(g.grant))
            .map((g) => g.grant)
        }
      })
    return {
      job: jobId,
      epoch: epochOf(excl?.grants ?? []),
      excluded: excl?.grants ?? [],
      grants,
      checkpoints,
      unlearning: excl?.events ?? []
    }
  }

  /** The newest checkpoint of a job on this node. */
  async latestCheckpoint(jobId: string): Promise<{ cid: string; round: number } | undefined> {
    return this.c.db.get<{ cid: string; round: number }>('latest', jobId)
  }

  contributions(): Record<string, unknown> {
    return Object.fromEntries(
      [...this.running].map(([id, r]) => [
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

/** A run that trained rounds of a job with k > 0 and never aggregated a peer's model. */
function isolatedRun(run: Running): boolean {
  return run.job.spec.hyper.k > 0 && run.history.length > 0 && run.aggregated === 0
}
