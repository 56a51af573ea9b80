/**
 * Text datasets in the shard format: a text shard is a `Dataset` whose samples are byte tokens
 * (per-sample shape `[1]`, uint8, in text order) and whose labels say each token's role:
 * `TEXT_TRAIN` (0) for training text, `TEXT_HELD_OUT` (1) for the held-out tail nobody trains
 * on (2 classes, named `TEXT_LABEL_NAMES`). So shards, manifests, grants and their checks are
 * those of every dataset, and a manifest's label counts say which shard is the held-out one.
 * The manifest's schema names the kind (`kind: 'text'`) and the tokenizer (`tokenizer: 'bytes'`).
 *
 * The label byte per token doubles a text shard's size (a codec without labels is left for later).
 */
import { dtypeOf, type Dataset } from './dataset.js'
import { DatasetArgumentError } from './errors.js'
import type { DatasetSchema } from './manifest.js'

/** Label of a training token. */
export const TEXT_TRAIN = 0
/** Label of a held-out token. */
export const TEXT_HELD_OUT = 1
/** The class names of a text dataset's labels (the role of each token). */
export const TEXT_LABEL_NAMES = ['train', 'held-out']

/** The manifest schema of a text dataset of byte tokens. */
export const TEXT_SCHEMA: DatasetSchema = {
  shape: [1],
  dtype: 'uint8',
  classes: 2,
  labelNames: TEXT_LABEL_NAMES,
  kind: 'text',
  tokenizer: 'bytes'
}

/** Whether a manifest schema describes a text dataset. */
export function isTextSchema(schema: DatasetSchema): boolean {
  return schema.kind === 'text'
}

/**
 * A text shard of `tokens` (copied), all of one role.
 *
 * @throws {DatasetArgumentError} DATASET_ARGUMENT for no tokens.
 */
export function textShard(tokens: Uint8Array, role: 'train' | 'held-out'): Dataset {
  if (tokens.length === 0) throw new DatasetArgumentError('DATASET_ARGUMENT', 'a text shard needs tokens')
  return {
    features: Uint8Array.from(tokens),
    labels: new Uint8Array(tokens.length).fill(role === 'train' ? TEXT_TRAIN : TEXT_HELD_OUT),
    count: tokens.length,
    shape: [1],
    classes: 2
  }
}

/** Whether a decoded shard has the form of a text shard (uint8 tokens of shape [1], 2 classes). */
export function isTextDataset(ds: Dataset): boolean {
  return dtypeOf(ds) === 'uint8' && ds.shape.length === 1 && ds.shape[0] === 1 && ds.classes === 2
}

/**
 * The tokens of a text shard by role, in text order (views when the shard has one role).
 *
 * @throws {DatasetArgumentError} DATASET_ARGUMENT when `ds` is not a text shard.
 */
export function textOf(ds: Dataset): { train: Uint8Array; heldOut: Uint8Array } {
  if (!isTextDataset(ds)) {
    throw new DatasetArgumentError(
      'DATASET_ARGUMENT',
      `not a text shard ([${ds.shape.join(', ')}] ${dtypeOf(ds)} with ${ds.classes} classes)`,
      { shape: ds.shape, dtype: dtypeOf(ds), classes: ds.classes }
    )
  }
  const tokens = ds.features as Uint8Array
  let held = 0
  for (let i = 0; i < ds.count; i++) held += ds.labels[i] === TEXT_HELD_OUT ? 1 : 0
  if (held === 0) return { train: tokens.subarray(0, ds.count), heldOut: new Uint8Array(0) }
  if (held === ds.count) return { train: new Uint8Array(0), heldOut: tokens.subarray(0, ds.count) }
  const train = new Uint8Array(ds.count - held)
  const heldOut = new Uint8Array(held)
  let t = 0
  let h = 0
  for (let i = 0; i < ds.count; i++) {
    if (ds.labels[i] === TEXT_HELD_OUT) heldOut[h++] = tokens[i]!
    else train[t++] = tokens[i]!
  }
  return { train, heldOut }
}
