/**
 * Datasets: import (the `mnist` package, IDX and numeric CSV files; text as byte tokens in
 * contiguous shards with a held-out tail, `text.ts`), split into shards
 * (IID, or non-IID by a seeded Dirichlet(α) label split), encode each shard in a small
 * checksummed binary format (`SHRD`, see `shard-codec.ts`), and describe the whole in a
 * manifest signed by the owner (a did-jwt JWT over the body, see `manifest.ts`).
 *
 * Everything is deterministic for a seed. Parsers either return a complete dataset or
 * throw `DatasetParseError` (`DATASET_PARSE`) naming the file and the place (line and
 * column for CSV; sample and byte offset for IDX). Bad shards throw `ShardError`
 * (`SHARD_INVALID`), refused manifests `ManifestError` (`MANIFEST_INVALID`, with a `reason`).
 *
 * @example
 * ```ts
 * import { Identity, generateKeypair } from '../../identity/index.js'
 * import {
 *   loadMnist, fromLabeledImages, shardDirichlet, encodeShard, decodeShard,
 *   shardEntry, buildManifest, verifyManifest, checkShardAgainstManifest
 * } from './index.js'
 *
 * const owner = Identity.fromKeypair(generateKeypair())
 * const ds = fromLabeledImages(await loadMnist()) // 10,000 × [28, 28] uint8, 10 classes
 * const split = shardDirichlet(ds, 4, 0.5, 42)     // 4 index lists, none empty
 * const blobs = split.map((idx) => encodeShard(ds, idx))
 * const cids = await Promise.all(blobs.map((b) => store.add(b))) // the content store (encrypts)
 * const signed = await buildManifest(owner, {
 *   name: 'mnist-4',
 *   schema: { shape: ds.shape, dtype: 'uint8', classes: ds.classes },
 *   shards: blobs.map((b, i) => shardEntry(cids[i]!, decodeShard(b))),
 *   source: 'mnist',
 *   split: { kind: 'dirichlet', alpha: 0.5, seed: 42 }
 * })
 * // A receiver:
 * const body = await verifyManifest(signed, { expectedOwner: owner.did })
 * checkShardAgainstManifest(body.shards[0]!, decodeShard(blobs[0]!), body.schema)
 * ```
 */
export { loadMnist, subset, trainTestSplit, type LabeledImages } from './mnist.js'
export {
  assertDataset,
  classCount,
  datasetSubset,
  joinDatasets,
  dtypeOf,
  fromLabeledImages,
  labelCounts,
  sampleSize,
  toLabeledImages,
  type Dataset,
  type Dtype,
  type LabeledSet
} from './dataset.js'
export { readIdx, encodeIdx, writeIdx, type ReadIdxOptions } from './idx.js'
export { readCsv, type ReadCsvOptions } from './csv.js'
export { shardIid, shardDirichlet, shardStats, type ShardStats, type DirichletOptions } from './split.js'
export { encodeShard, decodeShard, decodeShardHeader, type ShardHeader } from './shard-codec.js'
export {
  buildManifest,
  verifyManifest,
  checkShardAgainstManifest,
  shardEntry,
  ManifestBodySchema,
  DatasetSchema,
  ManifestShard,
  ManifestSplit,
  type ManifestBody,
  type SignedManifest,
  type ManifestSigner,
  type BuildManifestInput,
  type VerifyManifestOptions
} from './manifest.js'
export {
  DatasetParseError,
  DatasetArgumentError,
  ShardError,
  ManifestError,
  type DatasetParseFields,
  type ManifestErrorReason
} from './errors.js'
export * as datasetConstants from './constants.js'
export {
  TEXT_HELD_OUT,
  TEXT_LABEL_NAMES,
  TEXT_SCHEMA,
  TEXT_TRAIN,
  isTextDataset,
  isTextSchema,
  textOf,
  textShard
} from './text.js'
export {
  importDataset,
  importTextDataset,
  loadManifest,
  MAX_MANIFEST_BYTES,
  type ImportDatasetOptions,
  type ImportTextOptions,
  type ImportResult,
  type ImportedShard,
  type LoadedManifest,
  type LoadManifestOptions
} from './import.js'
