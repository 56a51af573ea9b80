/**
 * Per-sample cross-entropy losses of a model on a data set, from the inference graph's logits (what membership
 * inference and unlearning checks need; `Trainer.evaluate` only reports the mean). Each loss is computed exactly
 * as `evaluate` computes its terms, so with the same batch size their mean is `evaluate`'s loss.
 */
import { checkLabels, shapeSize, type TensorDataset, ShapeError } from '../data/index.js'
import { DEFAULT_EVAL_BATCH_SIZE } from './constants.js'
import { TrainerOptionsError } from './errors.js'
import type { SessionConfig } from './providers.js'
import { Trainer } from './trainer.js'
import type { TrainableModel } from './types.js'

/** Options of {@link perSampleLoss}. */
export interface PerSampleLossOptions {
  /** Samples per inference call (default `DEFAULT_EVAL_BATCH_SIZE`, as `Trainer.evaluate`). */
  batchSize?: number
  signal?: AbortSignal
}

/** What {@link perSampleLoss} needs of a trainer. */
export type LogitsSource = Pick<Trainer, 'predict' | 'inputShape' | 'classes'>

/**
 * The cross-entropy loss `−log softmax(logits)[y]` of every sample of `data` under the trainer's current weights,
 * in the data set's order (float64; log-sum-exp with the row maximum subtracted, as `Trainer.evaluate`).
 *
 * @example
 * ```ts
 * const losses = await perSampleLoss(trainer, shard)
 * const { advantage } = lossThresholdAdvantage(losses, await perSampleLoss(trainer, heldOut))
 * ```
 * @throws {ShapeError} when the samples do not have the model's input size.
 * @throws {LabelRangeError} when a label is outside `[0, classes)` (models that declare their classes).
 * @throws {TrainerOptionsError} for a batch size that is not a positive integer.
 */
export async function perSampleLoss(
  trainer: LogitsSource,
  data: TensorDataset,
  opts: PerSampleLossOptions = {}
): Promise<Float64Array> {
  const S = shapeSize(trainer.inputShape)
  if (shapeSize(data.sampleShape) !== S) {
    throw new ShapeError(
      `data samples of [${data.sampleShape.join(', ')}] do not fit model input [${trainer.inputShape.join(', ')}]`,
      { expected: [...trainer.inputShape], got: [...data.sampleShape] }
    )
  }
  const batchSize = opts.batchSize ?? DEFAULT_EVAL_BATCH_SIZE
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TrainerOptionsError(`batch size must be a positive integer, got ${batchSize}`, { batchSize })
  }
  if (trainer.classes !== undefined) checkLabels(data.y, trainer.classes)
  const losses = new Float64Array(data.count)
  for (let start = 0; start < data.count; start += batchSize) {
    opts.signal?.throwIfAborted()
    const end = Math.min(data.count, start + batchSize)
    const logits = await trainer.predict(
      data.x.subarray(start * S, end * S),
      end - start,
      opts.signal !== undefined ? { signal: opts.signal } : {}
    )
    const C = logits.length / (end - start)
    for (let i = 0; i < end - start; i++) {
      const row = logits.subarray(i * C, (i + 1) * C)
      let max = -Infinity
      for (let c = 0; c < C; c++) if (row[c]! > max) max = row[c]!
      let sum = 0
      for (let c = 0; c < C; c++) sum += Math.exp(row[c]! - max)
      const label = data.y[start + i]!
      losses[start + i] = Math.log(sum) + max - row[label]!
    }
  }
  return losses
}

/**
 * {@link perSampleLoss} for a set of weights: a trainer is created for `model` (on the CPU, deterministic, unless
 * the config says otherwise), used and closed.
 *
 * @throws as `Trainer.create` and {@link perSampleLoss}.
 */
export async function perSampleLossOf(
  model: TrainableModel,
  weights: ReadonlyMap<string, Float32Array>,
  data: TensorDataset,
  opts: PerSampleLossOptions & SessionConfig = {}
): Promise<Float64Array> {
  const { batchSize, signal, ...config } = opts
  const device = config.device ?? 'cpu'
  const trainer = await Trainer.create(model, {
    ...config,
    device,
    deterministic: config.deterministic ?? device === 'cpu',
    weights,
    ...(signal !== undefined ? { signal } : {})
  })
  try {
    return await perSampleLoss(trainer, data, {
      ...(batchSize !== undefined ? { batchSize } : {}),
      ...(signal !== undefined ? { signal } : {})
    })
  } finally {
    await trainer.close()
  }
}
