/**
 * Training loops: one epoch over a `BatchLoader` with a `Trainer`, and `trainLocal`, the
 * centralised (single-node) baseline — compile, initialise from a seed, train for some
 * epochs, evaluate on held-out data after each, hand checkpoints to a callback.
 */
import { performance } from 'node:perf_hooks'
import { logger } from '../../common/index.js'
import {
  BatchLoader,
  fromImages,
  type ImageSet,
  type Normalization,
  type TensorDataset
} from '../data/index.js'
import { compileModel, initParams, type ModelSpec, type OptimizerSpec } from '../graph/index.js'
import { DEFAULT_EVAL_BATCH_SIZE } from './constants.js'
import { TrainerOptionsError } from './errors.js'
import type { Device, ExecutionProviderName } from './providers.js'
import { lrAt, validateSchedule, type LrSchedule } from './schedule.js'
import { Trainer } from './trainer.js'
import type { ProgressEvent } from './types.js'

const log = logger('shoal:training:runtime')

/** Default: report progress every this many steps (and at the end of each epoch). */
export const DEFAULT_PROGRESS_EVERY = 50

export interface EpochOptions {
  /** Learning rate of a step within the epoch (step from 0). */
  lr: number | ((step: number, stepsPerEpoch: number) => number)
  signal?: AbortSignal
  onProgress?: (event: ProgressEvent) => void
  progressEvery?: number
}

export interface EpochStats {
  epoch: number
  /** Mean training loss over the epoch's steps (each on the weights before its update). */
  loss: number
  /** Fraction of training samples classified correctly during the epoch. */
  trainAccuracy: number
  steps: number
  samples: number
  /** Learning rate of the last step. */
  lr: number
  /** Wall time of the epoch's steps. */
  seconds: number
}

/**
 * Train one epoch: every batch of `loader.epoch(epoch)` through `trainer.step`.
 *
 * @throws {NonFiniteLossError} when a step's loss is not finite (that step is rolled back).
 */
export async function trainEpoch(
  trainer: Trainer,
  loader: BatchLoader,
  epoch: number,
  opts: EpochOptions
): Promise<EpochStats> {
  const steps = loader.batchesPerEpoch
  const every = opts.progressEvery ?? DEFAULT_PROGRESS_EVERY
  const lrOf = typeof opts.lr === 'number' ? (): number => opts.lr as number : opts.lr
  let lossSum = 0
  let correct = 0
  let samples = 0
  let done = 0
  let lr = 0
  const t0 = performance.now()
  for (const batch of loader.epochSync(epoch)) {
    opts.signal?.throwIfAborted()
    lr = lrOf(batch.index, steps)
    const r = await trainer.step(batch.x, batch.y, lr)
    lossSum += r.loss * r.size
    correct += r.correct
    samples += r.size
    done++
    if (opts.onProgress !== undefined && (done % every === 0 || done === steps)) {
      opts.onProgress({ epoch, step: done, steps, loss: lossSum / samples, lr })
    }
  }
  return {
    epoch,
    loss: samples > 0 ? lossSum / samples : NaN,
    trainAccuracy: samples > 0 ? correct / samples : NaN,
    steps: done,
    samples,
    lr,
    seconds: (performance.now() - t0) / 1000
  }
}

export interface TrainLocalOptions {
  spec: ModelSpec
  optimizer: OptimizerSpec
  /** Learning-rate schedule, evaluated per step. */
  lr: LrSchedule
  epochs: number
  batchSize: number
  /** Seeds the initial weights and the per-epoch shuffles. */
  seed: number
  /** Training data: a tensor data set, or 8-bit images (normalised and reshaped to `spec.input`). */
  train: TensorDataset | ImageSet
  /** Held-out data evaluated after each epoch. */
  test?: TensorDataset | ImageSet
  /** Normalisation of image sets (default: pixels / 255). */
  normalization?: Normalization
  /** Drop each epoch's final partial batch (default false: it is trained as a smaller batch). */
  dropLast?: boolean
  device?: Device
  /** Intra-op threads (default: onnxruntime's choice; 1 in deterministic mode). */
  threads?: number
  deterministic?: boolean
  /** Start from these weights instead of a seeded initialisation. */
  initialWeights?: ReadonlyMap<string, Float32Array>
  evalBatchSize?: number
  onEpoch?: (result: EpochResult) => void | Promise<void>
  onProgress?: (event: ProgressEvent) => void
  /** Called after each epoch (every `checkpointEvery`) with a copy of the weights; awaited. */
  onCheckpoint?: (epoch: number, weights: Map<string, Float32Array>) => void | Promise<void>
  checkpointEvery?: number
  progressEvery?: number
  signal?: AbortSignal
}

export interface EpochResult extends EpochStats {
  /** Held-out loss and accuracy after the epoch (absent without `test`). */
  testLoss?: number
  testAccuracy?: number
}

export interface TrainLocalResult {
  epochs: EpochResult[]
  weights: Map<string, Float32Array>
  state: Map<string, Float32Array>
  executionProvider: ExecutionProviderName
  steps: number
  /** Wall time of the training steps (evaluation excluded). */
  trainSeconds: number
  samplesPerSecond: number
}

function isImageSet(d: TensorDataset | ImageSet): d is ImageSet {
  return (d as ImageSet).images instanceof Uint8Array
}

function asTensors(
  d: TensorDataset | ImageSet,
  spec: ModelSpec,
  norm: Normalization | undefined
): TensorDataset {
  return isImageSet(d) ? fromImages(d, { ...norm, shape: spec.input }) : d
}

/**
 * Train a model on one node: the centralised baseline and the building block of local rounds.
 *
 * @throws {NonFiniteLossError} when training diverges (the weights are not returned).
 * @throws the signal's reason when aborted.
 */
export async function trainLocal(opts: TrainLocalOptions): Promise<TrainLocalResult> {
  if (!Number.isInteger(opts.epochs) || opts.epochs < 0) {
    throw new TrainerOptionsError(`epochs must be a non-negative integer, got ${opts.epochs}`, {
      epochs: opts.epochs
    })
  }
  validateSchedule(opts.lr)
  opts.signal?.throwIfAborted()
  const compiled = compileModel(opts.spec, opts.optimizer)
  const train = asTensors(opts.train, opts.spec, opts.normalization)
  const test = opts.test === undefined ? undefined : asTensors(opts.test, opts.spec, opts.normalization)
  const loader = new BatchLoader(train, {
    batchSize: opts.batchSize,
    seed: opts.seed,
    dropLast: opts.dropLast ?? false
  })
  const trainer = await Trainer.create(compiled, {
    weights: opts.initialWeights ?? initParams(compiled, opts.seed),
    ...(opts.device !== undefined ? { device: opts.device } : {}),
    ...(opts.threads !== undefined ? { intraOpNumThreads: opts.threads } : {}),
    deterministic: opts.deterministic === true,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {})
  })
  try {
    const epochs: EpochResult[] = []
    const every = opts.checkpointEvery ?? 1
    let trainSeconds = 0
    let samples = 0
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const stats = await trainEpoch(trainer, loader, epoch, {
        lr: (step, stepsPerEpoch) => lrAt(opts.lr, { epoch, step, stepsPerEpoch, epochs: opts.epochs }),
        ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
        ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}),
        ...(opts.progressEvery !== undefined ? { progressEvery: opts.progressEvery } : {})
      })
      trainSeconds += stats.seconds
      samples += stats.samples
      const result: EpochResult = { ...stats }
      if (test !== undefined) {
        const ev = await trainer.evaluate(test, opts.evalBatchSize ?? DEFAULT_EVAL_BATCH_SIZE, {
          ...(opts.signal !== undefined ? { signal: opts.signal } : {})
        })
        result.testLoss = ev.loss
        result.testAccuracy = ev.accuracy
      }
      epochs.push(result)
      log.debug({ ...result }, 'epoch done')
      await opts.onEpoch?.(result)
      if (opts.onCheckpoint !== undefined && ((epoch + 1) % every === 0 || epoch === opts.epochs - 1)) {
        await opts.onCheckpoint(epoch, trainer.getWeights())
      }
    }
    return {
      epochs,
      weights: trainer.getWeights(),
      state: trainer.getState(),
      executionProvider: trainer.executionProvider,
      steps: trainer.steps,
      trainSeconds,
      samplesPerSecond: trainSeconds > 0 ? samples / trainSeconds : 0
    }
  } finally {
    await trainer.close()
  }
}
