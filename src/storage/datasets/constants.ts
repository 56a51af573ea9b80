/**
 * Formats, limits and defaults of the dataset module.
 * IDX: http://yann.lecun.com/exdb/mnist/ ("file formats" section); the shard format is
 * documented in `shard-codec.ts`.
 */

/** IDX element type: unsigned byte (the MNIST images and labels). */
export const IDX_TYPE_UBYTE = 0x08
/** IDX element type: big-endian IEEE-754 float32. */
export const IDX_TYPE_FLOAT32 = 0x0d
/** IDX magic of an MNIST-style labels file: ubyte, one dimension. */
export const IDX_LABELS_MAGIC = 0x00000801
/** IDX magic of an MNIST-style images file: ubyte, three dimensions (count, rows, cols). */
export const IDX_IMAGES_MAGIC = 0x00000803
/** Largest number of dimensions accepted in an IDX features file (count + up to 3 per-sample dims). */
export const IDX_MAX_DIMS = 4

/** Labels are stored as one byte, so a dataset has at most this many classes. */
export const MAX_CLASSES = 256

/** Magic bytes opening an encoded shard. */
export const SHARD_MAGIC = 'SHRD'
/** Version of the shard format written by `encodeShard`. */
export const SHARD_VERSION = 1
/** Upper bound on the shard header JSON, so a garbled length cannot make us allocate much. */
export const SHARD_MAX_HEADER_BYTES = 64 * 1024
/** Length of the SHA-256 trailer of an encoded shard. */
export const SHARD_DIGEST_BYTES = 32

/** Dirichlet split: draws tried before rebalancing minimally (see `shardDirichlet`). */
export const DIRICHLET_MAX_ATTEMPTS = 100
/** Dirichlet split: smallest shard size accepted by default (no empty shard). */
export const DIRICHLET_MIN_SIZE = 1

/** Version of the manifest body written by `buildManifest`. */
export const MANIFEST_VERSION = 1
/** `type` of a manifest body. */
export const MANIFEST_TYPE = 'shoal/dataset-manifest'
