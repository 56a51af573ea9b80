/**
 * Re-running peers' rounds for the audit service: the job from this node's catalog, the base
 * weights by CID (over bitswap when remote), and the shards this node owns or holds grants for,
 * prepared exactly as a trainer prepares them (tensors, or the tokens of a `gpt` job's text
 * shards). Prepared shard sets are kept (a few) for the
 * next re-runs of the same trainer's rounds, and dropped when any grant ends.
 */
import type { Dataset } from '../../storage/index.js'
import {
  RoundReexecutor,
  concatDatasets,
  concatTokens,
  isGptModel,
  type JobSpec,
  decodeWeights,
  type ShardData,
  type TensorDataset
} from '../../training/index.js'
import type { JobDataPrep } from './data.js'
import type { ModelStore } from './catalog.js'
import { jobNotFound } from './errors.js'

/** Prepared shard sets kept for re-execution (least recently used beyond it are dropped). */
export const REEXEC_DATA_CACHE = 8

/** How long a re-execution waits for a base model or a shard from the network. */
export const REEXEC_FETCH_TIMEOUT_MS = 60_000

/** A small least-recently-used cache of prepared shard sets, keyed by job and shard CIDs. */
export class PreparedShards {
  private readonly sets = new Map<string, ShardData>()

  constructor(private readonly capacity = REEXEC_DATA_CACHE) {}

  get size(): number {
    return this.sets.size
  }

  /** The prepared set of `cids` for `job`, from the cache or made by `load` (and kept). */
  async get(job: string, cids: readonly string[], load: () => Promise<ShardData>): Promise<ShardData> {
    const key = `${job}\u0000${cids.join(',')}`
    const hit = this.sets.get(key)
    if (hit !== undefined) {
      this.sets.delete(key)
      this.sets.set(key, hit)
      return hit
    }
    const data = await load()
    this.sets.set(key, data)
    while (this.sets.size > this.capacity) this.sets.delete(this.sets.keys().next().value!)
    return data
  }

  /** Drops every prepared set (a grant ended: its data may no longer be used). */
  clear(): void {
    this.sets.clear()
  }
}

export interface ReexecComponents {
  /** The verified spec of a job this node knows. */
  spec(job: string): Promise<JobSpec | undefined>
  models: Pick<ModelStore, 'get'>
  /** Reads a shard this node owns or holds a grant for (`NodeDatasets.readAny`). */
  readShard(cid: string, job: string, signal: AbortSignal): Promise<Dataset>
  prep: JobDataPrep
  cache: PreparedShards
}

/** The node's re-executor over its catalog, models and data. */
export function jobReexecutor(c: ReexecComponents): RoundReexecutor {
  const within = (signal?: AbortSignal): AbortSignal =>
    AbortSignal.any([AbortSignal.timeout(REEXEC_FETCH_TIMEOUT_MS), ...(signal === undefined ? [] : [signal])])
  return new RoundReexecutor({
    job: async (id) => {
      const spec = await c.spec(id)
      if (spec === undefined) throw jobNotFound(id)
      return spec
    },
    weights: async (cid, signal) => decodeWeights(await c.models.get(cid, within(signal))),
    shards: async (cids, spec, signal, job) =>
      c.cache.get(job, cids, async () => {
        const parts: ShardData[] = []
        for (const cid of cids) parts.push(c.prep.tensors(await c.readShard(cid, job, within(signal)), spec))
        // A language model's text shards are concatenated in order, as the trainer's are.
        return isGptModel(spec.model)
          ? { tokens: concatTokens(parts) }
          : concatDatasets(parts as TensorDataset[])
      })
  })
}
