/**
 * The binary form of one shard, as stored (encrypted) in the content store.
 *
 * Layout, version 1 (all integers big-endian):
 * ```
 * offset  size  field
 * 0       4     magic "SHRD" (ASCII)
 * 4       1     version = 1
 * 5       3     reserved, zero
 * 8       4     H = byte length of the header JSON (at most 64 KiB)
 * 12      H     header, UTF-8 JSON: {"count":n,"shape":[…],"dtype":"uint8"|"float32","classes":k}
 * 12+H    n     labels, one byte per sample, each < classes
 * …       F     features, n · product(shape) values, row-major: uint8 as is,
 *               float32 as IEEE-754 little-endian (F = values · 4)
 * end-32  32    SHA-256 of every preceding byte
 * ```
 * The total length must be exactly 12 + H + n + F + 32. Decoding checks, in order: length,
 * magic, version, header, exact length, checksum, label range; any failure is a
 * `ShardError` with code `SHARD_INVALID`.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import {
  MAX_CLASSES,
  SHARD_DIGEST_BYTES,
  SHARD_MAGIC,
  SHARD_MAX_HEADER_BYTES,
  SHARD_VERSION
} from './constants.js'
import { assertDataset, datasetSubset, dtypeOf, sampleSize, type Dataset, type Dtype } from './dataset.js'
import { ShardError } from './errors.js'

const PREFIX = 12
const MAGIC = new TextEncoder().encode(SHARD_MAGIC)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const ShardHeader = z.strictObject({
  count: z.number().int().min(0),
  shape: z.array(z.number().int().min(1)).min(1).max(16),
  dtype: z.enum(['uint8', 'float32']),
  classes: z.number().int().min(1).max(MAX_CLASSES)
})

/** The header of an encoded shard. */
export type ShardHeader = z.infer<typeof ShardHeader>

const invalid = (reason: string, message: string): never => {
  throw new ShardError('SHARD_INVALID', `invalid shard: ${message}`, { reason })
}

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest())

/**
 * Encode the samples at `indices` (all of them when omitted) as one shard.
 *
 * Thrown `DatasetArgumentError` when the dataset is inconsistent or an index is out of range.
 */
export function encodeShard(ds: Dataset, indices?: ArrayLike<number>): Uint8Array {
  assertDataset(ds)
  const part = indices === undefined ? ds : datasetSubset(ds, indices)
  const dtype: Dtype = dtypeOf(part)
  const header: ShardHeader = { count: part.count, shape: [...part.shape], dtype, classes: part.classes }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const featureBytes = part.features.length * (dtype === 'float32' ? 4 : 1)
  const total = PREFIX + json.length + part.count + featureBytes + SHARD_DIGEST_BYTES
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  out.set(MAGIC, 0)
  out[4] = SHARD_VERSION
  view.setUint32(8, json.length, false)
  out.set(json, PREFIX)
  let at = PREFIX + json.length
  out.set(part.labels, at)
  at += part.count
  if (part.features instanceof Float32Array) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(part.features.buffer, part.features.byteOffset, featureBytes), at)
    } else {
      for (let i = 0; i < part.features.length; i++) view.setFloat32(at + 4 * i, part.features[i]!, true)
    }
  } else {
    out.set(part.features, at)
  }
  at += featureBytes
  out.set(sha256(out.subarray(0, at)), at)
  return out
}

/** Read and validate only the header of an encoded shard (cheap; no checksum). */
export function decodeShardHeader(bytes: Uint8Array): ShardHeader {
  if (bytes.length < PREFIX + SHARD_DIGEST_BYTES) {
    invalid('truncated', `${bytes.length} bytes, shorter than the smallest possible shard`)
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) invalid('magic', `bad magic (expected "${SHARD_MAGIC}")`)
  }
  if (bytes[4] !== SHARD_VERSION)
    invalid('version', `unsupported version ${bytes[4]} (expected ${SHARD_VERSION})`)
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) invalid('reserved', 'reserved bytes are not zero')
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, false)
  if (headerLen > SHARD_MAX_HEADER_BYTES) invalid('header', `header length ${headerLen} exceeds the limit`)
  if (PREFIX + headerLen + SHARD_DIGEST_BYTES > bytes.length) {
    invalid('truncated', `truncated: header of ${headerLen} bytes does not fit in ${bytes.length} bytes`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX, PREFIX + headerLen))
    )
  } catch {
    return invalid('header', 'header is not valid UTF-8 JSON')
  }
  const parsed = ShardHeader.safeParse(raw)
  if (!parsed.success) return invalid('header', `bad header: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/**
 * Decode and validate an encoded shard into a new `Dataset` (independent of `bytes`).
 *
 * Thrown `ShardError` (code `SHARD_INVALID`, `fields.reason` one of `truncated`, `magic`,
 * `version`, `reserved`, `header`, `length`, `checksum`, `label`) when the bytes are not a
 * valid version-1 shard.
 */
export function decodeShard(bytes: Uint8Array): Dataset {
  const header = decodeShardHeader(bytes)
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, false)
  const values = header.count * sampleSize(header.shape)
  const featureBytes = values * (header.dtype === 'float32' ? 4 : 1)
  const expected = PREFIX + headerLen + header.count + featureBytes + SHARD_DIGEST_BYTES
  if (!Number.isSafeInteger(expected)) invalid('header', 'header describes an impossibly large shard')
  if (bytes.length < expected)
    invalid('truncated', `truncated: expected ${expected} bytes, got ${bytes.length}`)
  if (bytes.length > expected) {
    invalid('length', `expected ${expected} bytes, got ${bytes.length} (${bytes.length - expected} extra)`)
  }
  const bodyEnd = expected - SHARD_DIGEST_BYTES
  const digest = sha256(bytes.subarray(0, bodyEnd))
  const stored = bytes.subarray(bodyEnd)
  for (let i = 0; i < SHARD_DIGEST_BYTES; i++) {
    if (digest[i] !== stored[i]) invalid('checksum', 'checksum mismatch (the shard is corrupted)')
  }
  let at = PREFIX + headerLen
  const labels = bytes.slice(at, at + header.count)
  at += header.count
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= header.classes)
      invalid('label', `label ${labels[i]} of sample ${i} >= classes ${header.classes}`)
  }
  let features: Uint8Array | Float32Array
  if (header.dtype === 'uint8') {
    features = bytes.slice(at, at + featureBytes)
  } else if (LITTLE_ENDIAN) {
    features = new Float32Array(bytes.slice(at, at + featureBytes).buffer)
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, featureBytes)
    features = new Float32Array(values)
    for (let i = 0; i < values; i++) features[i] = view.getFloat32(4 * i, true)
  }
  const ds: Dataset = { features, labels, count: header.count, shape: header.shape, classes: header.classes }
  assertDataset(ds)
  return ds
}
