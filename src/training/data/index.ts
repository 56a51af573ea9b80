/**
 * The training data pipeline: 8-bit images or plain tensors → normalised float32 samples
 * in a model's input shape → seeded per-epoch shuffles → mini-batches in reused buffers.
 *
 * @example
 * ```ts
 * import { fromImages, BatchLoader } from './index.js'
 * const images = { images: new Uint8Array(4 * 784), labels: new Uint8Array(4), count: 4, rows: 28, cols: 28 }
 * const train = fromImages(images, { shape: [1, 28, 28] })
 * const loader = new BatchLoader(train, { batchSize: 2, seed: 7 })
 * for (const batch of loader.epochSync(0)) void batch.x
 * ```
 */
export {
  fromImages,
  fromTensors,
  reshapeDataset,
  selectSamples,
  featureStats,
  checkLabels,
  shapeSize,
  type TensorDataset,
  type ImageSet,
  type Labels,
  type Normalization,
  type FromImagesOptions
} from './dataset.js'
export { BatchLoader, epochSeed, type Batch, type BatchLoaderOptions } from './batches.js'
export { ShapeError, LabelRangeError, DataOptionsError } from './errors.js'
export {
  DEFAULT_PIXEL_SCALE,
  MNIST_MEAN,
  MNIST_STD,
  IMAGE_NORMALIZATION,
  DEFAULT_BATCH_SIZE,
  DEFAULT_SHUFFLE,
  DEFAULT_DROP_LAST
} from './constants.js'
