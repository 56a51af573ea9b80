/**
 * The in-memory form of a labelled dataset, shared by every source (mnist, IDX, CSV),
 * the splitters and the shard codec.
 */
import { MAX_CLASSES } from './constants.js'
import { DatasetArgumentError } from './errors.js'
import type { LabeledImages } from './mnist.js'

/** Element type of a dataset's features. */
export type Dtype = 'uint8' | 'float32'

/**
 * A labelled dataset, samples stored one after another (row-major).
 * `features.length === count * product(shape)` and `labels.length === count`;
 * every label is in `[0, classes)`.
 */
export interface Dataset {
  features: Uint8Array | Float32Array
  labels: Uint8Array
  count: number
  /** Per-sample shape, e.g. `[28, 28]` for MNIST, `[n]` for a CSV with n feature columns. */
  shape: number[]
  classes: number
}

/** What the splitters need: labels and a count (a `Dataset` or a `LabeledImages` both fit). */
export interface LabeledSet {
  labels: Uint8Array
  count: number
  /** Number of classes; when absent, `max(label) + 1`. */
  classes?: number
}

/** Number of feature values in one sample of the given per-sample shape. */
export function sampleSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** The dtype of a dataset's features. */
export function dtypeOf(ds: Pick<Dataset, 'features'>): Dtype {
  return ds.features instanceof Float32Array ? 'float32' : 'uint8'
}

/** The class count of a labelled set: its `classes` when given, else `max(label) + 1`. */
export function classCount(ds: LabeledSet): number {
  if (ds.classes !== undefined) return ds.classes
  let max = -1
  for (let i = 0; i < ds.count; i++) max = Math.max(max, ds.labels[i]!)
  return max + 1
}

/**
 * View an mnist `LabeledImages` as a `Dataset` (no copy: the arrays are shared).
 * `classes` defaults to 10 (digits).
 */
export function fromLabeledImages(set: LabeledImages, classes = 10): Dataset {
  const ds: Dataset = {
    features: set.images,
    labels: set.labels,
    count: set.count,
    shape: [set.rows, set.cols],
    classes
  }
  assertDataset(ds)
  return ds
}

/**
 * View a 2-D uint8 `Dataset` as mnist's `LabeledImages` (no copy).
 *
 * Thrown `DatasetArgumentError` when the dataset is not 2-D uint8.
 */
export function toLabeledImages(ds: Dataset): LabeledImages {
  const [rows, cols] = ds.shape
  if (
    !(ds.features instanceof Uint8Array) ||
    ds.shape.length !== 2 ||
    rows === undefined ||
    cols === undefined
  ) {
    throw new DatasetArgumentError(
      'DATASET_ARGUMENT',
      `not a 2-D uint8 image set (shape [${ds.shape.join(', ')}], ${dtypeOf(ds)})`,
      { shape: ds.shape, dtype: dtypeOf(ds) }
    )
  }
  return { images: ds.features, labels: ds.labels, count: ds.count, rows, cols }
}

/**
 * Select samples by index into a new, independent dataset (in the order given).
 *
 * Thrown `DatasetArgumentError` when an index is out of range.
 */
export function datasetSubset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const size = sampleSize(ds.shape)
  const features =
    ds.features instanceof Float32Array
      ? new Float32Array(indices.length * size)
      : new Uint8Array(indices.length * size)
  const labels = new Uint8Array(indices.length)
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!
    if (!Number.isInteger(j) || j < 0 || j >= ds.count) {
      throw new DatasetArgumentError('DATASET_ARGUMENT', `index ${j} out of range [0, ${ds.count})`, {
        index: j,
        count: ds.count
      })
    }
    features.set(ds.features.subarray(j * size, (j + 1) * size), i * size)
    labels[i] = ds.labels[j]!
  }
  return { features, labels, count: indices.length, shape: [...ds.shape], classes: ds.classes }
}

/**
 * Several datasets of one shape and dtype as one (copied, in the given order), e.g. the shards
 * of an imported dataset joined back together.
 *
 * Thrown `DatasetArgumentError` when there is none, or their shapes or dtypes differ.
 */
export function joinDatasets(parts: readonly Dataset[]): Dataset {
  const first = parts[0]
  if (first === undefined) throw new DatasetArgumentError('DATASET_ARGUMENT', 'nothing to join')
  const size = sampleSize(first.shape)
  for (const d of parts) {
    if (sampleSize(d.shape) !== size || dtypeOf(d) !== dtypeOf(first)) {
      throw new DatasetArgumentError(
        'DATASET_ARGUMENT',
        `cannot join a ${dtypeOf(d)} [${d.shape.join(', ')}] dataset to a ${dtypeOf(first)} [${first.shape.join(', ')}] one`
      )
    }
  }
  const count = parts.reduce((n, d) => n + d.count, 0)
  const features =
    first.features instanceof Float32Array ? new Float32Array(count * size) : new Uint8Array(count * size)
  const labels = new Uint8Array(count)
  let at = 0
  for (const d of parts) {
    features.set(d.features.subarray(0, d.count * size), at * size)
    labels.set(d.labels.subarray(0, d.count), at)
    at += d.count
  }
  return {
    features,
    labels,
    count,
    shape: [...first.shape],
    classes: Math.max(...parts.map((d) => d.classes))
  }
}

/** Samples per label: `counts[label]`, length `classes`. */
export function labelCounts(ds: LabeledSet, indices?: ArrayLike<number>): number[] {
  const counts = new Array<number>(classCount(ds)).fill(0)
  const n = indices?.length ?? ds.count
  for (let i = 0; i < n; i++) {
    const label = ds.labels[indices === undefined ? i : indices[i]!]!
    counts[label] = (counts[label] ?? 0) + 1
  }
  return counts
}

/**
 * Check a dataset's internal consistency (sizes, shape, classes, label range).
 *
 * Thrown `DatasetArgumentError` naming the first inconsistency.
 */
export function assertDataset(ds: Dataset): void {
  const fail = (msg: string): never => {
    throw new DatasetArgumentError('DATASET_ARGUMENT', `invalid dataset: ${msg}`)
  }
  if (!Number.isSafeInteger(ds.count) || ds.count < 0) fail(`count ${ds.count}`)
  if (ds.shape.length === 0 || ds.shape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    fail(`shape [${ds.shape.join(', ')}]`)
  }
  if (!Number.isInteger(ds.classes) || ds.classes < 1 || ds.classes > MAX_CLASSES)
    fail(`classes ${ds.classes}`)
  if (ds.labels.length !== ds.count) fail(`${ds.labels.length} labels for ${ds.count} samples`)
  const expected = ds.count * sampleSize(ds.shape)
  if (ds.features.length !== expected) fail(`${ds.features.length} feature values, expected ${expected}`)
  for (let i = 0; i < ds.count; i++) {
    if (ds.labels[i]! >= ds.classes) fail(`label ${ds.labels[i]} of sample ${i} >= classes ${ds.classes}`)
  }
}
