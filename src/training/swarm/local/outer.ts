/**
 * DiLoCo's outer step as a node applies it (docs/lm.md): it keeps its round's base and a momentum
 * buffer, and the next base is `outerNesterovStep(base, aggregate, momentum, job.outer)` instead of
 * the aggregate. Every node applies it to its own base, so no message is added. Without `outer`
 * the aggregate is the next base (plain averaging). The buffer is kept beside each checkpoint
 * (`save`/`restore`), so a restarted node goes on with the momentum it had, not from zeros.
 */
import type { Logger } from '../../../common/index.js'
import { outerNesterovStep, validateUpdate, type OuterNesterovOptions } from '../../aggregate/index.js'
import { decodeWeights, encodeWeights } from '../../export/index.js'
import type { ParamLayout } from './types.js'
import type { WeightStore } from '../types.js'

/** A node's outer optimizer: its momentum buffer between rounds. */
export class OuterOptimizer {
  readonly options: OuterNesterovOptions | undefined
  private buffer: Map<string, Float32Array> | undefined

  constructor(options: OuterNesterovOptions | null | undefined) {
    this.options = options ?? undefined
  }

  /** The momentum buffer (undefined: zeros, before the first step or after `reset`). */
  get momentum(): Map<string, Float32Array> | undefined {
    return this.buffer
  }

  /**
   * The next base from the round's `base` and the `aggregate` of its models (the aggregate
   * itself without outer options); updates the momentum.
   *
   * @throws {AggregationError} AGGREGATION_INVALID when the tensors do not match.
   */
  next(base: Map<string, Float32Array>, aggregate: Map<string, Float32Array>): Map<string, Float32Array> {
    if (this.options === undefined) return aggregate
    const step = outerNesterovStep(base, aggregate, this.buffer, this.options)
    this.buffer = step.momentum
    return step.weights
  }

  /** Forget the momentum, or take `momentum` (a node that joins from peers' models or restores a checkpoint). */
  reset(momentum?: Map<string, Float32Array>): void {
    this.buffer = momentum
  }

  /**
   * Store the momentum buffer (SHOALWT1, the model's layout) for a checkpoint; its CID, or
   * undefined when there is none to keep (plain averaging, or before the first outer step).
   */
  async save(
    store: Pick<WeightStore, 'put'>,
    params: ParamLayout,
    signal?: AbortSignal
  ): Promise<string | undefined> {
    if (this.options === undefined || this.buffer === undefined) return undefined
    return store.put(encodeWeights(this.buffer, params), signal)
  }

  /**
   * The momentum a checkpoint kept (`cid`, from `save`) for `reset`; undefined — zeros — when
   * there is none, the job has no outer step, or it does not load (logged).
   *
   * @throws the signal's reason when aborted.
   */
  async restore(
    store: Pick<WeightStore, 'get'>,
    cid: string | undefined,
    reference: { params: ParamLayout },
    signal: AbortSignal,
    log: Logger
  ): Promise<Map<string, Float32Array> | undefined> {
    if (cid === undefined || this.options === undefined) return undefined
    try {
      return await OuterOptimizer.load(store, cid, reference, signal)
    } catch (err) {
      if (signal.aborted) throw err
      log.warn(
        { cid, err: (err as Error).message },
        'the checkpoint’s outer momentum does not load; it restarts from zeros'
      )
      return undefined
    }
  }

  /**
   * The momentum buffer a checkpoint kept (`save`), checked against the model's layout
   * (names, shapes, finite values).
   *
   * @throws the store's errors, {@link WeightsFormatError} or {@link UpdateRejectedError} when
   * it does not decode to the layout.
   */
  static async load(
    store: Pick<WeightStore, 'get'>,
    cid: string,
    reference: { params: ParamLayout },
    signal?: AbortSignal
  ): Promise<Map<string, Float32Array>> {
    const momentum = decodeWeights(await store.get(cid, signal))
    validateUpdate(momentum, reference)
    return momentum
  }
}
