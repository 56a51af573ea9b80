/**
 * Seeded per-epoch shuffling and mini-batching into reused buffers.
 *
 * The order of epoch `e` depends only on `(seed, e)`, so a run can resume at any epoch
 * and every process sees the same batches. Each batch's `x` (float32) and `y` (int64)
 * live in two buffers allocated once per loader: a batch is valid until the next one is
 * requested — copy it if you need to keep it.
 */
import { Rng } from '../../common/index.js'
import { DEFAULT_DROP_LAST, DEFAULT_SHUFFLE } from './constants.js'
import { shapeSize, type TensorDataset } from './dataset.js'
import { DataOptionsError } from './errors.js'

export interface BatchLoaderOptions {
  batchSize: number
  /** Seed of the per-epoch shuffle (default 0). */
  seed?: number
  /** Shuffle each epoch (default true); otherwise samples come in data-set order. */
  shuffle?: boolean
  /**
   * Drop the final partial batch of an epoch (default false: it is yielded as a smaller
   * batch, views of the first `size` rows of the same buffers).
   */
  dropLast?: boolean
}

/** One mini-batch. `x` holds `size` samples of `sampleShape`, `y` their labels. */
export interface Batch {
  readonly x: Float32Array
  readonly y: BigInt64Array
  readonly size: number
  /** Index of this batch in its epoch, from 0. */
  readonly index: number
  readonly epoch: number
}

/** The seed of epoch `epoch`'s shuffle, derived from the loader seed. */
export function epochSeed(seed: number, epoch: number): number {
  return (Math.imul((epoch + 1) >>> 0, 0x9e3779b1) ^ (seed >>> 0)) >>> 0
}

/**
 * Produces mini-batches of a data set, epoch by epoch.
 *
 * @example
 * ```ts
 * const loader = new BatchLoader(train, { batchSize: 64, seed: 1 })
 * for await (const batch of loader.epoch(0)) await trainer.step(batch.x, batch.y, 0.1)
 * ```
 */
export class BatchLoader {
  readonly data: TensorDataset
  readonly batchSize: number
  readonly seed: number
  readonly shuffle: boolean
  readonly dropLast: boolean
  /** Number of batches an epoch yields. */
  readonly batchesPerEpoch: number

  private readonly sampleSize: number
  private readonly labels: BigInt64Array
  private readonly x: Float32Array
  private readonly y: BigInt64Array
  private readonly tailX: Float32Array
  private readonly tailY: BigInt64Array
  private readonly order: Uint32Array

  /** @throws {DataOptionsError} for a batch size that is not a positive integer. */
  constructor(data: TensorDataset, opts: BatchLoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new DataOptionsError(`batch size must be a positive integer, got ${opts.batchSize}`, {
        batchSize: opts.batchSize
      })
    }
    this.data = data
    this.seed = (opts.seed ?? 0) >>> 0
    this.shuffle = opts.shuffle ?? DEFAULT_SHUFFLE
    this.dropLast = opts.dropLast ?? DEFAULT_DROP_LAST
    this.batchSize = opts.batchSize
    this.sampleSize = shapeSize(data.sampleShape)
    const full = Math.floor(data.count / this.batchSize)
    const tail = data.count - full * this.batchSize
    this.batchesPerEpoch = full + (tail > 0 && !this.dropLast ? 1 : 0)
    this.labels = BigInt64Array.from(data.y, (l) => BigInt(l))
    this.x = new Float32Array(this.batchSize * this.sampleSize)
    this.y = new BigInt64Array(this.batchSize)
    this.tailX = this.x.subarray(0, tail * this.sampleSize)
    this.tailY = this.y.subarray(0, tail)
    this.order = new Uint32Array(data.count)
  }

  /** The sample order of an epoch (a permutation of `0..count-1`; identity when not shuffling). */
  epochOrder(epoch: number): Uint32Array {
    const order = new Uint32Array(this.data.count)
    this.fillOrder(order, epoch)
    return order
  }

  private fillOrder(order: Uint32Array, epoch: number): void {
    for (let i = 0; i < order.length; i++) order[i] = i
    if (this.shuffle) new Rng(epochSeed(this.seed, epoch)).shuffle(order)
  }

  /**
   * The batches of one epoch, in order. The buffers are reused: each batch is overwritten
   * when the next is requested.
   */
  *epochSync(epoch: number): Generator<Batch, void, undefined> {
    this.fillOrder(this.order, epoch)
    const { sampleSize: S, batchSize: B, data } = this
    for (let index = 0; index < this.batchesPerEpoch; index++) {
      const start = index * B
      const size = Math.min(B, data.count - start)
      for (let i = 0; i < size; i++) {
        const j = this.order[start + i]!
        this.x.set(data.x.subarray(j * S, (j + 1) * S), i * S)
        this.y[i] = this.labels[j]!
      }
      const partial = size < B
      yield { x: partial ? this.tailX : this.x, y: partial ? this.tailY : this.y, size, index, epoch }
    }
  }

  /** Async form of {@link epochSync}; stops with the signal's reason when it is aborted. */
  async *epoch(epoch: number, opts: { signal?: AbortSignal } = {}): AsyncGenerator<Batch, void, undefined> {
    for (const batch of this.epochSync(epoch)) {
      opts.signal?.throwIfAborted()
      yield batch
    }
  }

  /** Batches of epochs `from` … `from + epochs - 1`, back to back. */
  async *epochs(
    epochs: number,
    opts: { from?: number; signal?: AbortSignal } = {}
  ): AsyncGenerator<Batch, void, undefined> {
    const from = opts.from ?? 0
    for (let e = from; e < from + epochs; e++) yield* this.epoch(e, opts)
  }
}
