/**
 * Storage: a Helia 7 node with persistent blocks and pins, and a ContentStore that keeps
 * objects encrypted by default — a random content key per object, chunked streaming AEAD
 * (STREAM with AES-256-GCM), a dag-cbor envelope holding the key wrapped for the owner's DID —
 * or as plain UnixFS on request. See docs/storage.md.
 *
 * @example
 * ```ts
 * import { createHeliaNode, ContentStore } from '../storage/index.js'
 *
 * const helia = await createHeliaNode({ blocksPath, datastorePath, libp2p: libp2pOptions })
 * const store = new ContentStore({ helia, identity })
 * const { cid, size } = await store.add(stream, { name: 'shard-0' })
 * for await (const bytes of store.get(cid)) consume(bytes)
 * await helia.stop()
 * ```
 */
export { createHeliaNode, type HeliaNodeInit, type ShoalHelia } from './helia.js'
export {
  ContentStore,
  type ContentStoreComponents,
  type ContentStoreInit,
  type AddOptions,
  type AddResult,
  type GetOptions,
  type ReadOptions,
  type StatResult,
  type PinInfo,
  type GcResult,
  type CryptoStatus
} from './content-store.js'
export {
  ChunkCipher,
  StreamEncryptor,
  StreamDecryptor,
  keyCommitment,
  chunkCount,
  sealedLength,
  AEAD_ALGORITHMS,
  type AeadAlgorithm,
  type StreamParams,
  type PlaintextDigest
} from './crypto.js'
export { encodeEnvelope, decodeEnvelope, type Envelope } from './envelope.js'
export { readFile, type ReadFileOptions } from './dag.js'
export {
  IntegrityError,
  NotAuthorizedError,
  NotFoundError,
  UnsupportedFormatError,
  InvalidParametersError,
  DiskFullError,
  asDiskFull
} from './errors.js'
export * as storageConstants from './constants.js'
export * from './datasets/index.js'
export * from './grants/index.js'
