/**
 * The jobs a node knows: signed, content-addressed job records (created here or announced on
 * the swarm's jobs topic), their verified specs, and (re)publishing them. It does not run jobs:
 * announcements it verifies are handed to a listener (the runner decides whether to join).
 */
import type { Logger } from '../../common/index.js'
import type { Identity } from '../../identity/index.js'
import type { JobMessage, TopicSpec } from '../../p2p/index.js'
import {
  createJob,
  jobAnnouncement,
  verifyJob,
  verifyJobAnnouncement,
  type JobSpec,
  type JobSpecInput,
  type VerifiedJob,
  decodeWeights,
  encodeWeights,
  modelParams
} from '../../training/index.js'
import type { NodeDb } from '../db.js'
import type { JobRecord } from '../records.js'
import { JobRequestError, jobNotFound } from './errors.js'

/** What the catalog needs of gossip: the jobs topic. */
export interface JobsGossip {
  publish(topic: TopicSpec<JobMessage>, msg: JobMessage): Promise<unknown>
  subscribe(topic: TopicSpec<JobMessage>, handler: (msg: JobMessage) => void): () => void
}

/** Where models live (the node's ContentWeightStore): a job's `init` checkpoint is republished as a plain model. */
export interface ModelStore {
  get(cid: string, signal?: AbortSignal): Promise<Uint8Array>
  put(bytes: Uint8Array, signal?: AbortSignal): Promise<string>
}

export interface CatalogComponents {
  identity: Identity
  db: NodeDb
  models: ModelStore
  gossip: JobsGossip
  log: Logger
}

export class JobCatalog {
  private readonly c: CatalogComponents
  private topic: TopicSpec<JobMessage> | undefined
  private unsubscribe: (() => void) | undefined

  constructor(components: CatalogComponents) {
    this.c = components
  }

  /**
   * Listens on a swarm's jobs topic (replacing an earlier one): each announcement is verified
   * (signature, id = CID of the JWT), recorded when new, and handed to `onJob`. Refused
   * announcements and failures of `onJob` are logged; neither stops the listener.
   */
  attach(topic: TopicSpec<JobMessage>, onJob: (job: VerifiedJob) => Promise<void>): void {
    this.detach()
    this.topic = topic
    this.unsubscribe = this.c.gossip.subscribe(topic, (msg) => {
      this.receive(msg, onJob).catch((err: unknown) => {
        this.c.log.warn({ job: msg.jobId, err: (err as Error).message }, 'job announcement refused')
      })
    })
  }

  /**
   * One announcement: verified, recorded when new, handed to `onJob`.
   *
   * @throws {JobError} `JOB_INVALID` when the announcement's job does not verify.
   */
  async receive(msg: JobMessage, onJob: (job: VerifiedJob) => Promise<void>): Promise<VerifiedJob> {
    const job = await verifyJobAnnouncement(msg)
    if ((await this.get(job.id)) === undefined) await this.record(job)
    await onJob(job)
    return job
  }

  detach(): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  async record(job: VerifiedJob): Promise<JobRecord> {
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

  async get(jobId: string): Promise<JobRecord | undefined> {
    return this.c.db.get('jobs', jobId)
  }

  /** @throws {JobRequestError} `JOB_NOT_FOUND` */
  async require(jobId: string): Promise<JobRecord> {
    const rec = await this.get(jobId)
    if (rec === undefined) throw jobNotFound(jobId)
    return rec
  }

  /** The job, its record's JWT verified again (signature, id). @throws {JobRequestError} `JOB_NOT_FOUND` */
  async verified(jobId: string): Promise<VerifiedJob> {
    return verifyJob((await this.require(jobId)).jwt, { expectedId: jobId })
  }

  /** The verified spec of a job this node has recorded (undefined when unknown). */
  async spec(jobId: string): Promise<JobSpec | undefined> {
    const rec = await this.get(jobId)
    if (rec === undefined) return undefined
    return (await verifyJob(rec.jwt, { expectedId: jobId })).spec
  }

  async list(): Promise<JobRecord[]> {
    return this.c.db.list('jobs')
  }

  /**
   * Signs, records and announces a job.
   *
   * @throws {JobRequestError} `JOB_INIT_INVALID` when `spec.init` is not a checkpoint of this
   *   node with the job's model.
   */
  async create(spec: JobSpecInput): Promise<JobRecord> {
    if (spec.init !== undefined) spec = { ...spec, init: await this.publishInit(spec, spec.init) }
    const signed = await createJob(this.c.identity, spec)
    const rec = await this.record(await verifyJob(signed.jwt))
    await this.announce(rec)
    return rec
  }

  /** (Re)publish a job on the jobs topic (late joiners only see what is published after they subscribe). */
  async announce(rec: Pick<JobRecord, 'id' | 'jwt'>): Promise<void> {
    if (this.topic === undefined) return
    await this.c.gossip.publish(this.topic, jobAnnouncement(rec))
  }

  /**
   * A checkpoint may be encrypted for this node alone: the swarm gets it as a plain model,
   * published by CID (the creator's choice to share it).
   */
  private async publishInit(spec: JobSpecInput, init: string): Promise<string> {
    const cp = await this.c.db.get('checkpoints', init)
    if (cp === undefined || JSON.stringify(cp.spec) !== JSON.stringify(spec.model)) {
      throw new JobRequestError(
        'JOB_INIT_INVALID',
        cp === undefined
          ? `init ${init} is not a checkpoint on this node (import the model first)`
          : `init ${init} is a checkpoint of another model than the job's`,
        { init }
      )
    }
    const weights = decodeWeights(await this.c.models.get(init))
    return this.c.models.put(encodeWeights(weights, modelParams(spec.model as JobSpec['model'])))
  }
}
