/**
 * A job's data on this node: which shards its grants let it use, and how decrypted shards
 * become tensors. The preparation is a port ({@link JobDataPrep}) that `src/node` wires per kind
 * of data (today 28×28 images, `imageJobData`), so that nothing in the job services knows
 * which dataset a job trains on.
 */
import { type Dataset, grantStatus, type GrantInfo } from '../../storage/index.js'
import type { JobSpec, TensorDataset } from '../../training/index.js'

/** How a job's decrypted data becomes tensors, and what it is evaluated on. */
export interface JobDataPrep {
  /** The training tensors of one decrypted shard, as every trainer (and re-executor) prepares them. */
  tensors(ds: Dataset, spec: JobSpec): TensorDataset
  /** A held-out set every node can load locally (so accuracies compare), or undefined when there is none. */
  heldOut(spec: JobSpec): Promise<TensorDataset | undefined>
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
