/**
 * In-memory tensor data sets: normalised float32 samples in a model's input shape plus
 * integer labels. Built from 8-bit images (`LabeledImages` of the storage layer) or from
 * plain tensors.
 */
import { DataOptionsError, LabelRangeError, ShapeError } from './errors.js'
import { DEFAULT_PIXEL_SCALE } from './constants.js'

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1

/** Integer class labels, one per sample. */
export type Labels = Uint8Array | Uint16Array | Int32Array | Uint32Array

/** Samples `x` (row-major, `count * product(sampleShape)` float32 values) and labels `y`. */
export interface TensorDataset {
  readonly x: Float32Array
  readonly y: Labels
  readonly count: number
  /** The shape of one sample, e.g. `[784]` or `[1, 28, 28]`. */
  readonly sampleShape: readonly number[]
}

/** 8-bit images with labels; `LabeledImages` from the storage layer has this shape. */
export interface ImageSet {
  /** Pixels, row-major, one byte per pixel (0..255). */
  readonly images: Uint8Array
  readonly labels: Uint8Array
  readonly count: number
  readonly rows: number
  readonly cols: number
}

/**
 * Normalisation applied to each pixel: `v = p * scale`, then `(v - mean) / std` when
 * `mean`/`std` are given. The default `scale` is 1/255 (pixels to [0, 1]).
 */
export interface Normalization {
  scale?: number
  mean?: number
  std?: number
}

export interface FromImagesOptions extends Normalization {
  /** The sample shape to produce, e.g. `[784]` (default) or `[1, 28, 28]`; its size must be rows × cols. */
  shape?: readonly number[]
}

/** The number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

function checkShape(shape: readonly number[], what: string): void {
  if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`${what} must be a non-empty list of positive integers, got [${shape.join(', ')}]`, {
      got: [...shape]
    })
  }
}

function checkNormalization(n: Normalization): { scale: number; mean: number; std: number } {
  const scale = n.scale ?? DEFAULT_PIXEL_SCALE
  const mean = n.mean ?? 0
  const std = n.std ?? 1
  if (!Number.isFinite(scale) || !Number.isFinite(mean) || !Number.isFinite(std) || !(std > 0)) {
    throw new DataOptionsError('normalisation needs finite scale and mean and a positive std', {
      scale,
      mean,
      std
    })
  }
  return { scale, mean, std }
}

/**
 * Convert 8-bit images into a float32 data set in the given sample shape:
 * `x = (pixel * scale - mean) / std`. The labels are shared, not copied.
 *
 * @throws {ShapeError} when `shape` does not hold rows × cols values or the image buffer is short.
 */
export function fromImages(set: ImageSet, opts: FromImagesOptions = {}): TensorDataset {
  const px = set.rows * set.cols
  const shape = opts.shape ?? [px]
  checkShape(shape, 'sample shape')
  if (shapeSize(shape) !== px) {
    throw new ShapeError(
      `sample shape [${shape.join(', ')}] holds ${shapeSize(shape)} values but images are ${set.rows}×${set.cols}`,
      { expected: [set.rows, set.cols], got: [...shape] }
    )
  }
  if (set.images.length !== set.count * px || set.labels.length !== set.count) {
    throw new ShapeError(
      `image set of ${set.count} samples has ${set.images.length} pixels and ${set.labels.length} labels`,
      {
        expected: [set.count, set.rows, set.cols],
        got: set.images.length
      }
    )
  }
  const { scale, mean, std } = checkNormalization(opts)
  // Precompute the 256 possible values: exact, fast, and identical everywhere.
  const lut = new Float32Array(256)
  for (let p = 0; p < 256; p++) lut[p] = (p * scale - mean) / std
  const x = new Float32Array(set.images.length)
  const img = set.images
  for (let i = 0; i < img.length; i++) x[i] = lut[img[i]!]!
  return { x, y: set.labels, count: set.count, sampleShape: [...shape] }
}

/**
 * Wrap plain tensors as a data set (no copy).
 *
 * @throws {ShapeError} when `x` does not hold `y.length` samples of `sampleShape`.
 */
export function fromTensors(x: Float32Array, y: Labels, sampleShape: readonly number[]): TensorDataset {
  checkShape(sampleShape, 'sample shape')
  const size = shapeSize(sampleShape)
  if (x.length !== y.length * size) {
    throw new ShapeError(
      `x holds ${x.length} values; ${y.length} samples of [${sampleShape.join(', ')}] need ${y.length * size}`,
      { expected: [y.length, ...sampleShape], got: x.length }
    )
  }
  return { x, y, count: y.length, sampleShape: [...sampleShape] }
}

/**
 * The same samples viewed in another sample shape of equal size (e.g. `[784]` ↔ `[1, 28, 28]`); no copy.
 *
 * @throws {ShapeError} when the sizes differ.
 */
export function reshapeDataset(data: TensorDataset, sampleShape: readonly number[]): TensorDataset {
  checkShape(sampleShape, 'sample shape')
  if (shapeSize(sampleShape) !== shapeSize(data.sampleShape)) {
    throw new ShapeError(
      `cannot view samples of [${data.sampleShape.join(', ')}] as [${sampleShape.join(', ')}]`,
      { expected: [...data.sampleShape], got: [...sampleShape] }
    )
  }
  return { ...data, sampleShape: [...sampleShape] }
}

/** The samples at `indices`, copied into a new data set. */
export function selectSamples(data: TensorDataset, indices: ArrayLike<number>): TensorDataset {
  const size = shapeSize(data.sampleShape)
  const x = new Float32Array(indices.length * size)
  const y = new Int32Array(indices.length)
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!
    if (!Number.isInteger(j) || j < 0 || j >= data.count)
      throw new RangeError(`sample index ${j} out of range`)
    x.set(data.x.subarray(j * size, (j + 1) * size), i * size)
    y[i] = data.y[j]!
  }
  return { x, y, count: indices.length, sampleShape: [...data.sampleShape] }
}

/** Mean and standard deviation of all values of `x` (for `Normalization`; compute them on training data only). */
export function featureStats(data: TensorDataset): { mean: number; std: number } {
  let s = 0
  for (let i = 0; i < data.x.length; i++) s += data.x[i]!
  const mean = s / Math.max(1, data.x.length)
  let v = 0
  for (let i = 0; i < data.x.length; i++) {
    const d = data.x[i]! - mean
    v += d * d
  }
  return { mean, std: Math.sqrt(v / Math.max(1, data.x.length)) }
}

/**
 * Check that every label is an integer in `[0, classes)`.
 *
 * @throws {LabelRangeError} naming the first bad label.
 */
export function checkLabels(y: ArrayLike<number | bigint>, classes: number): void {
  const fail = (i: number): never => {
    throw new LabelRangeError(`label ${String(y[i])} at index ${i} is not a class in [0, ${classes})`, {
      index: i,
      label: String(y[i]),
      classes
    })
  }
  if (y instanceof BigInt64Array && LITTLE_ENDIAN) {
    // Read the int64 labels as (low, high) int32 pairs: no BigInt is allocated per label.
    const words = new Int32Array(y.buffer, y.byteOffset, y.length * 2)
    for (let i = 0; i < y.length; i++) {
      const lo = words[2 * i]!
      if (words[2 * i + 1] !== 0 || lo < 0 || lo >= classes) fail(i)
    }
    return
  }
  for (let i = 0; i < y.length; i++) {
    const l = Number(y[i]!)
    if (!(l >= 0 && l < classes && Number.isInteger(l))) fail(i)
  }
}
