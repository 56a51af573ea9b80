/**
 * Step 2 of a round, what a node shares: the model it announces (clipped and noised under a
 * job's whole-update privacy, compressed as the job says, stored), the execution provider its
 * receipt names, and — for a round that is not bit-reproducible — its exact result weights,
 * published so that a verifier can compare them with a CPU re-run within a tolerance
 * (docs/receipts.md, "Verification with a tolerance").
 */
import { availableParallelism } from 'node:os'
import type { Rng } from '../../common/index.js'
import { encodeCompressed } from '../aggregate/index.js'
import { isDpsgd } from '../dpsgd/index.js'
import { encodeWeights } from '../export/index.js'
import { applyUpdate, diffWeights, privatizeUpdate } from '../privacy/index.js'
import type { ExecutionProviderName } from '../runtime/index.js'
import { PARALLEL_CPU_EP, REPRODUCIBLE_EP } from './constants.js'
import type { JobSpec } from './job.js'
import type { ParamLayout } from './local/index.js'
import type { WeightStore } from './types.js'

/** What {@link shareRound} needs. */
export interface ShareInput {
  /** The weights after the local steps, and the round's base. */
  mine: Map<string, Float32Array>
  base: Map<string, Float32Array>
  job: Pick<JobSpec, 'privacy'>
  params: ParamLayout
  compression: 'none' | 'int8'
  /** Draws the privacy noise (private to the node). */
  noiseRng: Rng
  store: WeightStore
  /** Where the round ran, and whether in deterministic (one-thread, bit-reproducible) mode. */
  executionProvider: ExecutionProviderName
  deterministic: boolean
  /** Intra-op threads asked for (undefined: the machine's parallelism). */
  threads: number | undefined
  signal: AbortSignal
}

/** What a node shares of a round. */
export interface SharedRound {
  /** The weights announced (privatized under whole-update DP, else `mine`). */
  shared: Map<string, Float32Array>
  /** Their encoding as announced, and its CID. */
  bytes: Uint8Array
  weightsCid: string
  /** `cpu` only for a deterministic CPU round; `cpu-parallel` for a multi-threaded one; else the GPU provider. */
  ep: ExecutionProviderName | typeof PARALLEL_CPU_EP
  /** A non-bit-exact round's exact result (SHOALWT1; absent under DP) and thread count. */
  result?: { resultCid?: string; threads: number }
}

/** Privatize, encode and store a round's model; publish its exact result when it is not bit-exact. */
export async function shareRound(input: ShareInput): Promise<SharedRound> {
  const { mine, base, job, params, store, signal } = input
  const privacy = job.privacy
  const private_ = privacy !== undefined && privacy !== null
  let shared = mine
  if (private_ && !isDpsgd(privacy)) {
    const { update } = privatizeUpdate(diffWeights(mine, base), {
      clipNorm: privacy.clipNorm,
      noiseMultiplier: privacy.noiseMultiplier,
      rng: input.noiseRng
    })
    shared = applyUpdate(base, update)
  }
  const bytes = encodeCompressed(shared, input.compression, params)
  const weightsCid = await store.put(bytes, signal)
  const cpu = input.executionProvider === REPRODUCIBLE_EP
  const ep = cpu && !input.deterministic ? PARALLEL_CPU_EP : input.executionProvider
  if (cpu && input.deterministic) return { shared, bytes, weightsCid, ep }
  const threads = input.threads ?? availableParallelism()
  // Only noised weights may leave a node under differential privacy: no published result.
  if (private_) return { shared, bytes, weightsCid, ep, result: { threads } }
  const resultCid = await store.put(encodeWeights(mine, params), signal)
  return { shared, bytes, weightsCid, ep, result: { resultCid, threads } }
}
