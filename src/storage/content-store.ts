/**
 * ContentStore: add, read, pin and collect objects on a Helia node, encrypted by default.
 *
 * An encrypted object is a UnixFS file of ciphertext (one leaf per sealed chunk, see
 * crypto.ts) plus a dag-cbor envelope (see envelope.ts) whose CID names the object and which is
 * pinned recursively, so the ciphertext is pinned with it. Nothing in plaintext is stored except
 * the optional name. A plain object (`plain: true`) is ordinary UnixFS.
 */
import { randomBytes } from 'node:crypto'
import type { GraphWalkerComponents, GraphWalkerFactory, Helia } from 'helia'
import { unixfs, type AddOptions as UnixFSAddOptions, type UnixFS } from '@helia/unixfs'
import { depthFirstWalker } from '@helia/utils'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2'
import { RAW_CODEC, logger, type Logger } from '../common/index.js'
import { encryptForDids, type Identity } from '../identity/index.js'
import {
  CONTENT_KEY_BYTES,
  DEFAULT_ALGORITHM,
  DEFAULT_CHUNK_SIZE,
  ENVELOPE_TYPE,
  ENVELOPE_VERSION,
  MAX_ENVELOPE_BYTES,
  PIN_KIND_KEY,
  ROOT_FETCH_TIMEOUT_MS,
  WORKER_MIN_BYTES
} from './constants.js'
import { CryptoWorker } from './crypto-worker-client.js'
import {
  StreamDecryptor,
  StreamEncryptor,
  assertKeyCommitment,
  assertStreamParams,
  keyCommitment,
  type AeadAlgorithm,
  type PlaintextDigest,
  type StreamParams
} from './crypto.js'
import { getBlock, readFile } from './dag.js'
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.js'
import {
  IntegrityError,
  InvalidParametersError,
  NotAuthorizedError,
  NotFoundError,
  UnsupportedFormatError
} from './errors.js'

const log = logger('shoal:storage')

const DAG_PB_CODEC = 0x70

/** What a ContentStore needs: a started Helia node and the identity that owns what it adds. */
export interface ContentStoreComponents {
  helia: Helia
  identity: Pick<Identity, 'did' | 'decryptJwe'>
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of a ContentStore (defaults in constants.ts). */
export interface ContentStoreInit {
  /** Plaintext bytes per encrypted chunk (default 1 MiB). */
  chunkSize?: number
  /** AEAD for new objects (default AES-256-GCM). */
  algorithm?: AeadAlgorithm
  /** Never fetch from the network: missing blocks are NOT_FOUND at once (default false). */
  offline?: boolean
  /** How long to wait for a missing root block before NOT_FOUND (default 30 s). */
  rootTimeoutMs?: number
  /** Ciphertext blocks read ahead of the consumer in `get` (default 4). */
  readAhead?: number
  /**
   * Run encryption, decryption and plaintext hashing in a worker thread (default true), for
   * objects of at least `workerMinBytes` (streams of unknown length always qualify). Falls back
   * to this thread if the worker cannot start.
   */
  worker?: boolean
  /** Smallest known plaintext size sent to the worker (default 4 MiB). */
  workerMinBytes?: number
}

/** Options of {@link ContentStore.add}. */
export interface AddOptions {
  /** Store as ordinary, unencrypted UnixFS (public data). */
  plain?: boolean
  /** Name recorded in the envelope (public metadata) and in the pin. */
  name?: string
  signal?: AbortSignal
  /** Called with the cumulative number of plaintext bytes consumed so far. */
  onProgress?: (bytes: number) => void
}

/** What {@link ContentStore.add} stored. */
export interface AddResult {
  /** The envelope CID (encrypted) or the UnixFS root CID (plain). */
  cid: CID
  /** Plaintext length in bytes. */
  size: number
  encrypted: boolean
}

/** Options of {@link ContentStore.get}. */
export interface GetOptions {
  signal?: AbortSignal
  /** Use this content key (e.g. one received in a grant) instead of unwrapping the owner's. */
  contentKey?: Uint8Array
  /** Override the store's `offline` setting for this call. */
  offline?: boolean
}

/** Options of calls that only read the root block. */
export interface ReadOptions {
  signal?: AbortSignal
  offline?: boolean
}

/** What {@link ContentStore.stat} reports. */
export interface StatResult {
  cid: CID
  encrypted: boolean
  /** Plaintext length in bytes. */
  size: number
  /** Whether the root block is pinned (directly or under another pin). */
  pinned: boolean
  /** Encrypted objects: the ciphertext root. */
  ciphertextCid?: CID
  name?: string
  /** Encrypted objects: plaintext bytes per chunk. */
  chunkSize?: number
  /** Encrypted objects: the AEAD. */
  algorithm?: AeadAlgorithm
  /** Encrypted objects: the DID that added it. */
  owner?: string
}

/** One pin, as listed by {@link ContentStore.pins}. */
export interface PinInfo {
  cid: CID
  /** true/false for objects added by a ContentStore, undefined for other pins. */
  encrypted?: boolean
  name?: string
  depth: number
}

/** What {@link ContentStore.gc} removed. */
export interface GcResult {
  /**
   * The blocks deleted, as the blockstore lists them: blockstore-fs keys blocks by multihash,
   * so these come back as CIDv0/dag-pb-shaped CIDs; compare `cid.multihash`, not the CID.
   */
  removed: CID[]
}

type PinKind = 'encrypted' | 'plain' | 'document'

/** Where a {@link ContentStore} encrypts and decrypts its large streams. */
export interface CryptoStatus {
  /**
   * `running`: the worker thread started; `not-started`: no large stream yet (it starts on the
   * first); `failed`: it could not start (`error` says why) and streams run on the main thread;
   * `disabled`: the store was made with `worker: false`.
   */
  worker: 'running' | 'not-started' | 'failed' | 'disabled'
  /** Streams of at least `workerMinBytes` run in the worker. */
  workerStreams: number
  /** Streams of at least `workerMinBytes` that ran on the main thread (worker disabled or failed). */
  mainThreadStreams: number
  error?: string
}

/**
 * A content store on a Helia node: encrypted objects by default, plain UnixFS on request.
 *
 * @example
 * ```ts
 * const store = new ContentStore({ helia, identity })
 * const { cid } = await store.add(fileStream, { name: 'shard-0' })
 * for await (const bytes of store.get(cid)) process(bytes)
 * ```
 */
export class ContentStore {
  private readonly log: Logger
  private readonly helia: Helia
  private readonly identity: Pick<Identity, 'did' | 'decryptJwe'>
  private readonly fs: UnixFS
  private readonly params: StreamParams
  private readonly offline: boolean
  private readonly rootTimeoutMs: number
  private readonly readAhead: number
  private readonly workerMinBytes: number
  private cryptoWorker: CryptoWorker | undefined
  private readonly crypto: CryptoStatus

  constructor(components: ContentStoreComponents, init: ContentStoreInit = {}) {
    this.log = components.log ?? log
    this.helia = components.helia
    this.identity = components.identity
    this.fs = unixfs(this.helia)
    this.params = {
      algorithm: init.algorithm ?? DEFAULT_ALGORITHM,
      chunkSize: init.chunkSize ?? DEFAULT_CHUNK_SIZE
    }
    assertStreamParams(this.params)
    this.offline = init.offline ?? false
    this.rootTimeoutMs = init.rootTimeoutMs ?? ROOT_FETCH_TIMEOUT_MS
    this.readAhead = init.readAhead ?? 4
    this.workerMinBytes = init.workerMinBytes ?? WORKER_MIN_BYTES
    if (init.worker !== false) {
      this.cryptoWorker = new CryptoWorker({ windowBytes: 4 * (this.params.chunkSize + 16) })
    }
    this.crypto = {
      worker: init.worker === false ? 'disabled' : 'not-started',
      workerStreams: 0,
      mainThreadStreams: 0
    }
  }

  /** Where large streams are encrypted and decrypted so far (see {@link CryptoStatus}). */
  cryptoStatus(): CryptoStatus {
    return { ...this.crypto }
  }

  /** Start the crypto worker now rather than on first use (optional). Idempotent. */
  async start(): Promise<void> {
    await this.worker(Infinity, false)
  }

  /** End the crypto worker (it never keeps the process alive, but this frees it). Idempotent. */
  async stop(): Promise<void> {
    await this.cryptoWorker?.terminate()
  }

  /**
   * The worker to use for an object of `size` bytes, if any; falls back if it cannot start.
   * `isStream` false: only starting it (counted in no stream statistics).
   */
  private async worker(size: number, isStream = true): Promise<CryptoWorker | undefined> {
    if (size < this.workerMinBytes) return undefined
    const w = this.cryptoWorker
    if (w === undefined) {
      if (isStream) this.crypto.mainThreadStreams++
      return undefined
    }
    try {
      await w.start()
      this.crypto.worker = 'running'
      if (isStream) this.crypto.workerStreams++
      return w
    } catch (err) {
      this.log.warn({ err }, 'crypto worker failed to start; encrypting on the main thread')
      this.cryptoWorker = undefined
      this.crypto.worker = 'failed'
      this.crypto.error = (err as Error).message
      if (isStream) this.crypto.mainThreadStreams++
      return undefined
    }
  }

  /**
   * Store bytes (a stream or one buffer). Encrypted by default: returns the envelope's CID,
   * pinned recursively. With `plain: true`, returns the pinned UnixFS root.
   *
   * @throws {InvalidParametersError} `INVALID_PARAMETERS` when the source yields something other than bytes.
   */
  async add(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array,
    opts: AddOptions = {}
  ): Promise<AddResult> {
    if (opts.name !== undefined && (typeof opts.name !== 'string' || opts.name.length > 1024)) {
      throw new InvalidParametersError('name must be a string of at most 1024 characters')
    }
    const input = normalize(source, opts.signal)
    if (opts.plain === true) return this.addPlain(input, opts)
    return this.addEncrypted(input, source instanceof Uint8Array ? source.byteLength : Infinity, opts)
  }

  private async addPlain(input: AsyncIterable<Uint8Array>, opts: AddOptions): Promise<AddResult> {
    let size = 0
    const onProgress = opts.onProgress
    const counted = (async function* () {
      for await (const piece of input) {
        size += piece.byteLength
        onProgress?.(size)
        yield piece
      }
    })()
    const cid = await this.fs.addByteStream(counted, { signal: opts.signal })
    await this.pin(cid, 'plain', opts)
    this.log.debug({ cid: cid.toString(), size }, 'added plain object')
    return { cid, size, encrypted: false }
  }

  private async addEncrypted(
    input: AsyncIterable<Uint8Array>,
    knownSize: number,
    opts: AddOptions
  ): Promise<AddResult> {
    const key = new Uint8Array(randomBytes(CONTENT_KEY_BYTES))
    try {
      let consumed = 0
      const onProgress = opts.onProgress
      const onChunk = (n: number): void => {
        consumed += n
        onProgress?.(consumed)
      }
      let digest: PlaintextDigest | undefined
      let sealed: AsyncIterable<Uint8Array>
      // Block hashes of sealed chunks, computed by the worker (see sealedLeafImporter).
      const sealedDigests = new WeakMap<Uint8Array, Uint8Array>()
      const worker = await this.worker(knownSize)
      if (worker !== undefined) {
        sealed = worker.encrypt(key, this.params, input, {
          onChunk,
          onDigest: (d) => (digest = d),
          sealedDigests
        })
      } else {
        const enc = new StreamEncryptor(key, this.params, { onChunk })
        sealed = (async function* () {
          yield* enc.encrypt(input)
          digest = enc.digest()
        })()
      }
      // One sealed chunk per leaf: the encryptor already yields whole sealed chunks, so the
      // chunker passes them through and the leaves line up with the chunks.
      const ciphertext = await this.fs.addByteStream(sealed, {
        chunker: (source) => source,
        bufferImporter: sealedLeafImporter(sealedDigests, opts.signal),
        rawLeaves: true,
        cidVersion: 1,
        signal: opts.signal
      })
      if (digest === undefined) throw new Error('encryption ended without a digest')
      const { length, sha256 } = digest
      const env: Envelope = {
        type: ENVELOPE_TYPE,
        v: ENVELOPE_VERSION,
        alg: this.params.algorithm,
        chunkSize: this.params.chunkSize,
        size: length,
        sha256,
        ciphertext,
        keyCommitment: keyCommitment(key),
        owner: this.identity.did,
        wrappedKey: await encryptForDids(key, [this.identity.did])
      }
      if (opts.name !== undefined) env.name = opts.name
      const { cid, bytes } = await encodeEnvelope(env)
      await this.helia.blockstore.put(cid, bytes, { signal: opts.signal })
      await this.pin(cid, 'encrypted', opts)
      this.log.debug(
        { cid: cid.toString(), ciphertext: ciphertext.toString(), size: length },
        'added encrypted object'
      )
      return { cid, size: length, encrypted: true }
    } finally {
      key.fill(0)
    }
  }

  /**
   * The plaintext of an object, streamed. Encrypted objects are decrypted chunk by chunk; a
   * chunk is yielded only after it has been authenticated. The plaintext length and hash are
   * checked when the stream ends, so an IntegrityError for them comes after the (individually
   * authenticated) chunks were yielded.
   *
   * @throws {NotFoundError} `NOT_FOUND` when a block is missing (offline) or the root is not found in time.
   * @throws {NotAuthorizedError} `NOT_AUTHORIZED` when the key cannot be unwrapped or does not fit.
   * @throws {IntegrityError} `INTEGRITY` when a chunk fails authentication or the stream does not match the envelope.
   * @throws {UnsupportedFormatError} `UNSUPPORTED_FORMAT` when the CID is neither an envelope nor a UnixFS file.
   */
  async *get(cid: CID, opts: GetOptions = {}): AsyncGenerator<Uint8Array> {
    const offline = opts.offline ?? this.offline
    const root = await this.loadRoot(cid, opts)
    if (root.kind === 'plain') {
      // readFile rather than unixfs.cat: the UnixFS exporter queues blocks without bound when
      // the consumer is slower than the reads; readFile keeps `readAhead` blocks in flight.
      const bytes = readFile(this.helia, cid, { signal: opts.signal, offline, readAhead: this.readAhead })
      yield* this.mapErrors(cid, bytes, opts.signal)
      return
    }
    const env = root.envelope
    const key = opts.contentKey !== undefined ? opts.contentKey : await this.unwrap(cid, env)
    assertKeyCommitment(key, env.keyCommitment)
    const params: StreamParams = { algorithm: env.alg, chunkSize: env.chunkSize }
    const expected: PlaintextDigest = { length: env.size, sha256: env.sha256 }
    const sealed = readFile(this.helia, env.ciphertext, {
      signal: opts.signal,
      offline,
      readAhead: this.readAhead
    })
    const worker = await this.worker(env.size)
    const plain =
      worker !== undefined
        ? worker.decrypt(key, params, expected, sealed)
        : new StreamDecryptor(key, params, expected).decrypt(sealed)
    yield* this.mapErrors(cid, plain, opts.signal)
  }

  /**
   * What an object is: encrypted or not, plaintext size, pin state and (encrypted) envelope fields.
   *
   * @throws {NotFoundError} `NOT_FOUND` when the root block is not available.
   */
  async stat(cid: CID, opts: ReadOptions = {}): Promise<StatResult> {
    const root = await this.loadRoot(cid, opts)
    const pinned = await this.helia.pins.isPinned(cid, { signal: opts.signal })
    if (root.kind === 'plain') {
      const offline = opts.offline ?? this.offline
      const st = await this.mapErrorsAsync(
        cid,
        this.fs.stat(cid, { signal: opts.signal, offline }),
        opts.signal
      )
      return { cid, encrypted: false, size: Number(st.size), pinned }
    }
    const env = root.envelope
    const out: StatResult = {
      cid,
      encrypted: true,
      size: env.size,
      pinned,
      ciphertextCid: env.ciphertext,
      chunkSize: env.chunkSize,
      algorithm: env.alg,
      owner: env.owner
    }
    if (env.name !== undefined) out.name = env.name
    return out
  }

  /**
   * The content key of an encrypted object, unwrapped with this store's identity (to grant
   * access to others). Treat it as a secret.
   *
   * @throws {NotAuthorizedError} `NOT_AUTHORIZED` when the identity cannot unwrap it.
   * @throws {UnsupportedFormatError} `UNSUPPORTED_FORMAT` when the object is not encrypted.
   */
  async contentKey(cid: CID, opts: ReadOptions = {}): Promise<Uint8Array> {
    const root = await this.loadRoot(cid, opts)
    if (root.kind === 'plain') {
      throw new UnsupportedFormatError('object is not encrypted', { cid: cid.toString() })
    }
    const key = await this.unwrap(cid, root.envelope)
    assertKeyCommitment(key, root.envelope.keyCommitment)
    return key
  }

  /** The envelope of an encrypted object (decoded and validated). */
  async envelope(cid: CID, opts: ReadOptions = {}): Promise<Envelope> {
    const root = await this.loadRoot(cid, opts)
    if (root.kind === 'plain') {
      throw new UnsupportedFormatError('object is not encrypted', { cid: cid.toString() })
    }
    return root.envelope
  }

  /**
   * Store a small public JSON document (e.g. a signed receipt) as one dag-json block, pinned.
   * The same value gives the same CID (adding it again is a no-op).
   */
  async putDocument(value: unknown, opts: AddOptions = {}): Promise<CID> {
    const bytes = dagJson.encode(value)
    const cid = CID.createV1(dagJson.code, await sha256Hasher.digest(bytes))
    await this.helia.blockstore.put(cid, bytes, { signal: opts.signal })
    await this.pin(cid, 'document', opts)
    return cid
  }

  /**
   * A dag-json document by CID (fetched over bitswap when not local).
   *
   * @throws {UnsupportedFormatError} when the CID is not dag-json.
   */
  async getDocument(cid: CID, opts: ReadOptions = {}): Promise<unknown> {
    if (cid.code !== dagJson.code) {
      throw new UnsupportedFormatError('not a dag-json document', { cid: cid.toString() })
    }
    return dagJson.decode(await getBlock(this.helia, cid, opts))
  }

  /** Every pin on the node; objects added here say whether they are encrypted. */
  async *pins(opts: { signal?: AbortSignal } = {}): AsyncGenerator<PinInfo> {
    for await (const pin of this.helia.pins.ls({ signal: opts.signal })) {
      const kind = pin.metadata[PIN_KIND_KEY]
      const info: PinInfo = { cid: pin.cid, depth: pin.depth }
      if (kind === 'encrypted' || kind === 'plain') info.encrypted = kind === 'encrypted'
      const name = pin.metadata.name
      if (typeof name === 'string') info.name = name
      yield info
    }
  }

  /**
   * Remove the pin of an object (its blocks stay until {@link gc}).
   *
   * @throws {NotFoundError} `NOT_FOUND` when the CID is not pinned.
   */
  async unpin(cid: CID, opts: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.helia.pins.get(cid, { signal: opts.signal })
    } catch (err) {
      throw new NotFoundError('not pinned', { cid: cid.toString() }, { cause: err })
    }
    for await (const _ of this.helia.pins.rm(cid, { signal: opts.signal, walker: localWalker })) {
      // drain
    }
    this.log.debug({ cid: cid.toString() }, 'unpinned')
  }

  /** Delete every block that no pin holds; returns the CIDs removed. */
  async gc(opts: { signal?: AbortSignal } = {}): Promise<GcResult> {
    const removed: CID[] = []
    await this.helia.gc({
      signal: opts.signal,
      onProgress: (evt) => {
        if (evt.type === 'helia:gc:deleted') removed.push(evt.detail)
      }
    })
    this.log.debug({ removed: removed.length }, 'gc finished')
    return { removed }
  }

  private async pin(cid: CID, kind: PinKind, opts: AddOptions): Promise<void> {
    const metadata: Record<string, string> = { [PIN_KIND_KEY]: kind }
    if (opts.name !== undefined) metadata.name = opts.name
    try {
      for await (const _ of this.helia.pins.add(cid, {
        signal: opts.signal,
        metadata,
        walker: localWalker
      })) {
        // drain
      }
    } catch (err) {
      // The same plain bytes added twice give the same CID: already pinned is success.
      if ((err as Error).name !== 'AlreadyPinnedError') throw err
    }
  }

  private async unwrap(cid: CID, env: Envelope): Promise<Uint8Array> {
    let key: Uint8Array
    try {
      key = await this.identity.decryptJwe(env.wrappedKey)
    } catch (err) {
      throw new NotAuthorizedError(
        'this identity cannot unwrap the content key',
        { cid: cid.toString(), did: this.identity.did, owner: env.owner },
        { cause: err }
      )
    }
    return key
  }

  /** Fetch and classify the root block: an envelope, or (dag-pb/raw) plain UnixFS. */
  private async loadRoot(
    cid: CID,
    opts: ReadOptions
  ): Promise<{ kind: 'plain' } | { kind: 'encrypted'; envelope: Envelope }> {
    if (cid.code !== dagCbor.code) {
      if (cid.code !== DAG_PB_CODEC && cid.code !== RAW_CODEC) {
        throw new UnsupportedFormatError('CID is neither an envelope nor UnixFS', {
          cid: cid.toString(),
          codec: cid.code
        })
      }
      // Make sure the root exists (within the timeout) before handing over to UnixFS.
      if (!(await this.helia.blockstore.has(cid))) await this.fetchRoot(cid, opts)
      return { kind: 'plain' }
    }
    const bytes = await this.fetchRoot(cid, opts)
    return { kind: 'encrypted', envelope: decodeEnvelope(bytes, cid) }
  }

  private async fetchRoot(cid: CID, opts: ReadOptions): Promise<Uint8Array> {
    const offline = opts.offline ?? this.offline
    const timeout = AbortSignal.timeout(this.rootTimeoutMs)
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout])
    let bytes: Uint8Array
    try {
      bytes = await getBlock(this.helia, cid, { signal, offline })
    } catch (err) {
      // The caller's abort wins over whatever Helia made of it (often LoadBlockFailedError).
      opts.signal?.throwIfAborted()
      if (timeout.aborted || isNotFound(err)) {
        throw new NotFoundError(
          offline ? 'not in the local blockstore' : 'block not found in time',
          {
            cid: cid.toString(),
            offline
          },
          { cause: err }
        )
      }
      throw err
    }
    if (bytes.byteLength > MAX_ENVELOPE_BYTES && cid.code === dagCbor.code) {
      throw new IntegrityError('envelope block too large', { cid: cid.toString(), length: bytes.byteLength })
    }
    return bytes
  }

  private async *mapErrors(
    cid: CID,
    source: AsyncIterable<Uint8Array>,
    signal: AbortSignal | undefined
  ): AsyncGenerator<Uint8Array> {
    try {
      yield* source
    } catch (err) {
      signal?.throwIfAborted()
      throw mapError(cid, err)
    }
  }

  private async mapErrorsAsync<T>(cid: CID, p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    try {
      return await p
    } catch (err) {
      signal?.throwIfAborted()
      throw mapError(cid, err)
    }
  }
}

function mapError(cid: CID, err: unknown): unknown {
  if (isNotFound(err)) {
    return new NotFoundError('a block of the object is missing', { cid: cid.toString() }, { cause: err })
  }
  const name = (err as Error | undefined)?.name
  if (name === 'NotUnixFSError') {
    return new UnsupportedFormatError('not a UnixFS file', { cid: cid.toString() }, { cause: err })
  }
  if (name === 'OverReadError' || name === 'UnderReadError') {
    return new IntegrityError('UnixFS sizes do not match its blocks', { cid: cid.toString() }, { cause: err })
  }
  return err
}

function isNotFound(err: unknown): boolean {
  const name = (err as Error | undefined)?.name
  return (
    name === 'NotFoundError' || name === 'BlockNotFoundWhileOfflineError' || name === 'LoadBlockFailedError'
  )
}

/**
 * The importer's leaf step for ciphertext: each sealed chunk becomes one raw block (CIDv1,
 * sha2-256), as with `rawLeaves`, but using the hash the crypto worker already computed when
 * there is one, so the main thread does not hash every byte a second time.
 */
function sealedLeafImporter(
  digests: WeakMap<Uint8Array, Uint8Array>,
  signal: AbortSignal | undefined
): NonNullable<UnixFSAddOptions['bufferImporter']> {
  return async function* (file, blockstore) {
    for await (const block of file.content) {
      yield async () => {
        const known = digests.get(block)
        const mh =
          known !== undefined ? createDigest(sha256Hasher.code, known) : await sha256Hasher.digest(block)
        const cid = CID.createV1(RAW_CODEC, mh)
        await blockstore.put(cid, block, { signal })
        return { cid, size: BigInt(block.byteLength), path: file.path, block }
      }
    }
  }
}

/** Accept one buffer or a (sync or async) stream of buffers; check the signal between pieces. */
async function* normalize(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array,
  signal: AbortSignal | undefined
): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted()
  if (source instanceof Uint8Array) {
    yield source
    return
  }
  for await (const piece of source) {
    signal?.throwIfAborted()
    if (!(piece instanceof Uint8Array)) {
      throw new InvalidParametersError('a source must yield Uint8Arrays', { type: typeof piece })
    }
    yield piece
  }
}

/**
 * Pins walk a DAG to record every block it holds. Helia's walker reads each block to find its
 * links, raw leaves included (a full re-read of everything just added). Raw blocks have no
 * links: for those present locally this walker gives Helia's walker an empty body instead of
 * reading them, and fetches only what is missing. The walker calls nothing but `get`.
 */
const localWalker: GraphWalkerFactory = (components) => {
  const blockstore = components.blockstore
  const rawSkipping = {
    async *get(cid: CID, options?: { signal?: AbortSignal }): AsyncGenerator<Uint8Array> {
      if (cid.code === RAW_CODEC && (await blockstore.has(cid, options))) {
        yield new Uint8Array(0)
        return
      }
      yield* blockstore.get(cid, options)
    }
  }
  return depthFirstWalker()({
    ...components,
    blockstore: rawSkipping as unknown as GraphWalkerComponents['blockstore']
  })
}
