/**
 * A job's data on this node: which shards its grants let it use, and how decrypted shards
 * become training data. The preparation is a port ({@link JobDataPrep}) that `src/node` wires
 * per kind of data (`imageJobData`: 28×28 images for classifiers, text for `gpt` jobs through
 * text.ts), so that nothing in the job services knows which dataset a job trains on.
 */
import { ShoalError, type ErrorCategory } from '../../common/index.js'
import { type Dataset, grantStatus, type GrantInfo } from '../../storage/index.js'
import type { JobSpec, ShardData } from '../../training/index.js'

/** How a job's decrypted data becomes training data, and what it is evaluated on. */
export interface JobDataPrep {
  /**
   * The training data of one decrypted shard, as every trainer (and re-executor) prepares it:
   * tensors for a classifier, `{ tokens }` for a language model.
   */
  tensors(ds: Dataset, spec: JobSpec): ShardData
  /**
   * The held-out set, or undefined when there is none: for images one every node can load
   * locally (so accuracies compare); for text the held-out shard among those prepared by
   * `tensors` for this same `spec` object (the runner prepares the shards, then asks).
   */
  heldOut(spec: JobSpec): Promise<ShardData | undefined>
}

/**
 * Thrown when a job's model and its dataset are of different kinds: a `gpt` job on an image or
 * table dataset, or a classifier on a text dataset.
 */
export class JobDataError extends ShoalError<'JOB_DATA_MISMATCH', Record<string, unknown>> {
  static override readonly categories: Record<JobDataError['code'], ErrorCategory> = {
    JOB_DATA_MISMATCH: 'usage'
  }
}

/** A shard this node may use for a job, and the grant that allows it. */
export interface GrantedShard {
  cid: string
  grant: string
}

/**
 * The shards of `dataset` that valid grants to `grantee` allow (each shard once, under the first
 * grant that names it), in the order of the grants.
 */
export function grantedShards(
  grants: readonly GrantInfo[],
  dataset: string,
  grantee: string,
  now = Math.floor(Date.now() / 1000)
): GrantedShard[] {
  const out = new Map<string, string>()
  for (const g of grants) {
    if (g.dataset !== dataset || g.grantee !== grantee || grantStatus(g, now) !== 'valid') continue
    for (const s of g.shards) if (!out.has(s)) out.set(s, g.id)
  }
  return [...out].map(([cid, grant]) => ({ cid, grant }))
}
