/**
 * Chunked streaming AEAD: the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár
 * ("Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015),
 * instantiated with OpenSSL's AES-256-GCM or ChaCha20-Poly1305 through `node:crypto`.
 *
 * Construction (version 1), for a random 32-byte content key K used for exactly one object:
 *
 * - Subkeys: `Kaead = HKDF-SHA256(K, salt = "", info = "shoal/stream/v1/aead/" ‖ ALG)` and a key
 *   commitment `C = HKDF-SHA256(K, salt = "", info = "shoal/stream/v1/commit")` (stored in the
 *   envelope, so a key that does not belong to an object is refused before any decryption, and
 *   no key can open the same ciphertext to two different plaintexts).
 * - The plaintext is cut into chunks of exactly `chunkSize` bytes; the last chunk holds the
 *   remaining 0…chunkSize bytes and is never empty unless the whole plaintext is (an empty
 *   plaintext is one empty final chunk). A plaintext whose length is a multiple of `chunkSize`
 *   ends with a full final chunk, not an extra empty one: the encryptor holds one chunk back
 *   until it knows whether more bytes follow.
 * - Chunk i is sealed as `AEAD(Kaead, nonce_i, aad_i, chunk_i) = ciphertext ‖ 16-byte tag` with
 *   `nonce_i = 0x000000 ‖ uint64be(i) ‖ final` (12 bytes; `final` is 0x01 on the last chunk,
 *   else 0x00), and
 *   `aad_i = "shoal/stream/v1" ‖ uint32be(chunkSize) ‖ uint64be(i) ‖ final ‖ uint64be(total)`,
 *   where `total` is the plaintext length on the final chunk and 0 on every other chunk. Only
 *   the final chunk commits to the length, because a streamed plaintext's length is known only
 *   when the stream ends.
 *
 * What this detects: a flipped bit (tag), two chunks swapped or a chunk repeated (the index is in
 * the nonce), a dropped tail (the new last chunk was not sealed as final), an appended chunk
 * (nothing may follow the final chunk), a length field that disagrees with the stream (the final
 * chunk's AAD and its position), a chunk moved from another object (another key) or sealed with
 * another chunk size (AAD). Each chunk is authenticated before a byte of it is released.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  hkdfSync,
  timingSafeEqual,
  type Hash,
  type KeyObject
} from 'node:crypto'
import { CONTENT_KEY_BYTES, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, NONCE_BYTES, TAG_BYTES } from './constants.js'
import { IntegrityError, InvalidParametersError, NotAuthorizedError } from './errors.js'

/** The AEADs an envelope may name. */
export type AeadAlgorithm = 'AES-256-GCM' | 'CHACHA20-POLY1305'

export const AEAD_ALGORITHMS: readonly AeadAlgorithm[] = ['AES-256-GCM', 'CHACHA20-POLY1305']

/** What both sides of a stream must agree on (recorded in the envelope). */
export interface StreamParams {
  algorithm: AeadAlgorithm
  /** Plaintext bytes per chunk (the last chunk may be shorter). */
  chunkSize: number
}

/** The plaintext facts an encryptor produced and a decryptor checks. */
export interface PlaintextDigest {
  /** Plaintext length in bytes. */
  length: number
  /** SHA-256 of the whole plaintext. */
  sha256: Uint8Array
}

const LABEL = 'shoal/stream/v1'
const LABEL_BYTES = new TextEncoder().encode(LABEL)
const AAD_BYTES = LABEL_BYTES.byteLength + 4 + 8 + 1 + 8
const TWO_32 = 0x1_0000_0000

/** Check stream parameters; throws InvalidParametersError. */
export function assertStreamParams(params: StreamParams): void {
  if (!AEAD_ALGORITHMS.includes(params.algorithm)) {
    throw new InvalidParametersError(`unknown AEAD algorithm ${String(params.algorithm)}`, {
      algorithm: params.algorithm
    })
  }
  const cs = params.chunkSize
  if (!Number.isSafeInteger(cs) || cs < MIN_CHUNK_SIZE || cs > MAX_CHUNK_SIZE) {
    throw new InvalidParametersError(
      `chunk size must be an integer in [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}], got ${cs}`,
      { chunkSize: cs, min: MIN_CHUNK_SIZE, max: MAX_CHUNK_SIZE }
    )
  }
}

function assertKey(contentKey: Uint8Array): void {
  if (contentKey.byteLength !== CONTENT_KEY_BYTES) {
    throw new InvalidParametersError(`content key must be ${CONTENT_KEY_BYTES} bytes`, {
      length: contentKey.byteLength
    })
  }
}

function hkdf(key: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key, new Uint8Array(0), info, 32))
}

/** The key commitment stored in an envelope (see the module comment). */
export function keyCommitment(contentKey: Uint8Array): Uint8Array {
  assertKey(contentKey)
  return hkdf(contentKey, `${LABEL}/commit`)
}

/** Throws NotAuthorizedError unless `contentKey` matches `commitment`. */
export function assertKeyCommitment(contentKey: Uint8Array, commitment: Uint8Array): void {
  if (contentKey.byteLength !== CONTENT_KEY_BYTES) {
    throw new NotAuthorizedError('content key has the wrong length', { length: contentKey.byteLength })
  }
  const c = keyCommitment(contentKey)
  if (c.byteLength !== commitment.byteLength || !timingSafeEqual(c, commitment)) {
    throw new NotAuthorizedError('content key does not belong to this object')
  }
}

function nodeCipherName(algorithm: AeadAlgorithm): 'aes-256-gcm' | 'chacha20-poly1305' {
  return algorithm === 'AES-256-GCM' ? 'aes-256-gcm' : 'chacha20-poly1305'
}

/**
 * Seals and opens single chunks of one object. Pure and synchronous; {@link StreamEncryptor}
 * and {@link StreamDecryptor} drive it over streams.
 */
export class ChunkCipher {
  readonly params: StreamParams
  private readonly key: KeyObject
  private readonly cipherName: 'aes-256-gcm' | 'chacha20-poly1305'

  constructor(contentKey: Uint8Array, params: StreamParams) {
    assertKey(contentKey)
    assertStreamParams(params)
    this.params = { algorithm: params.algorithm, chunkSize: params.chunkSize }
    this.key = createSecretKey(hkdf(contentKey, `${LABEL}/aead/${params.algorithm}`))
    this.cipherName = nodeCipherName(params.algorithm)
  }

  /** `0x000000 ‖ uint64be(index) ‖ final`. */
  nonce(index: number, final: boolean): Buffer {
    const n = Buffer.alloc(NONCE_BYTES)
    n.writeUInt32BE(Math.floor(index / TWO_32), 3)
    n.writeUInt32BE(index % TWO_32, 7)
    n[11] = final ? 1 : 0
    return n
  }

  /** `"shoal/stream/v1" ‖ uint32be(chunkSize) ‖ uint64be(index) ‖ final ‖ uint64be(total or 0)`. */
  aad(index: number, final: boolean, totalLength: number): Buffer {
    const a = Buffer.alloc(AAD_BYTES)
    let o = a.byteLength - (4 + 8 + 1 + 8)
    a.set(LABEL_BYTES, 0)
    a.writeUInt32BE(this.params.chunkSize, o)
    o += 4
    a.writeUInt32BE(Math.floor(index / TWO_32), o)
    a.writeUInt32BE(index % TWO_32, o + 4)
    o += 8
    a[o] = final ? 1 : 0
    o += 1
    const total = final ? totalLength : 0
    a.writeUInt32BE(Math.floor(total / TWO_32), o)
    a.writeUInt32BE(total % TWO_32, o + 4)
    return a
  }

  /**
   * Seal one chunk of plaintext: returns `ciphertext ‖ tag` in one buffer, `into` (which must
   * hold `plaintext.byteLength + 16` bytes) when given. `totalLength` matters only when `final`.
   */
  seal(
    index: number,
    final: boolean,
    totalLength: number,
    plaintext: Uint8Array,
    into?: Uint8Array
  ): Uint8Array {
    // The cast only picks an overload: both AEADs have setAAD/getAuthTag with these arguments.
    const c = createCipheriv(this.cipherName as 'aes-256-gcm', this.key, this.nonce(index, final), {
      authTagLength: TAG_BYTES
    })
    c.setAAD(this.aad(index, final, totalLength))
    const out = into ?? Buffer.allocUnsafe(plaintext.byteLength + TAG_BYTES)
    const ct = c.update(plaintext)
    out.set(ct, 0)
    let o = ct.byteLength
    const rest = c.final()
    out.set(rest, o)
    o += rest.byteLength
    out.set(c.getAuthTag(), o)
    return out.subarray(0, o + TAG_BYTES)
  }

  /**
   * Open one sealed chunk (`ciphertext ‖ tag`). Returns the plaintext (copied into `into` when
   * given) only after its tag has verified; throws IntegrityError otherwise.
   */
  open(
    index: number,
    final: boolean,
    totalLength: number,
    sealed: Uint8Array,
    into?: Uint8Array
  ): Uint8Array {
    if (sealed.byteLength < TAG_BYTES) {
      throw new IntegrityError('sealed chunk shorter than its tag', { index, length: sealed.byteLength })
    }
    const d = createDecipheriv(this.cipherName as 'aes-256-gcm', this.key, this.nonce(index, final), {
      authTagLength: TAG_BYTES
    })
    d.setAAD(this.aad(index, final, totalLength))
    d.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES))
    const plain = d.update(sealed.subarray(0, sealed.byteLength - TAG_BYTES))
    try {
      d.final()
    } catch (err) {
      // The bytes in `plain` are unauthenticated and are dropped here.
      throw new IntegrityError('chunk failed authentication', { index, final }, { cause: err })
    }
    if (into === undefined) return plain
    into.set(plain, 0)
    return into.subarray(0, plain.byteLength)
  }
}

/** Gives the buffer a sealed or opened chunk is written into (`size` bytes or more). */
export type Allocator = (size: number) => Uint8Array

/** Number of chunks of a plaintext of `length` bytes (at least one). */
export function chunkCount(length: number, chunkSize: number): number {
  return length === 0 ? 1 : Math.ceil(length / chunkSize)
}

/** Sealed (ciphertext) length of a plaintext of `length` bytes. */
export function sealedLength(length: number, chunkSize: number): number {
  return length + chunkCount(length, chunkSize) * TAG_BYTES
}

/**
 * Push-style encryption of one object: feed plaintext pieces of any size, get sealed chunks
 * (`chunkSize + 16` bytes, the last one shorter) as soon as they are known not to be the final
 * one; `finish()` seals the final chunk and returns the plaintext length and SHA-256.
 *
 * `push` never keeps a reference to its argument: the current chunk is assembled in an
 * internal buffer, so a caller may reuse its buffer at once. Memory: one chunk.
 */
export class EncryptCore {
  private readonly cipher: ChunkCipher
  private readonly hash: Hash = createHash('sha256')
  private readonly alloc: Allocator | undefined
  private readonly buf: Uint8Array
  private fill = 0
  private length = 0
  private index = 0
  private finished = false

  constructor(contentKey: Uint8Array, params: StreamParams, alloc?: Allocator) {
    this.cipher = new ChunkCipher(contentKey, params)
    this.alloc = alloc
    this.buf = new Uint8Array(params.chunkSize)
  }

  /** Feed a piece; returns the chunks it completed (each known not to be final). */
  push(piece: Uint8Array): Uint8Array[] {
    if (this.finished) throw new Error('EncryptCore: push after finish')
    const out: Uint8Array[] = []
    const cs = this.buf.byteLength
    this.hash.update(piece)
    this.length += piece.byteLength
    let o = 0
    while (o < piece.byteLength) {
      // A full chunk is sealed only once a byte beyond it has arrived: only then is it known
      // not to be the final chunk.
      if (this.fill === cs) {
        out.push(this.cipher.seal(this.index, false, 0, this.buf, this.alloc?.(cs + TAG_BYTES)))
        this.index++
        this.fill = 0
      }
      const take = Math.min(cs - this.fill, piece.byteLength - o)
      this.buf.set(piece.subarray(o, o + take), this.fill)
      this.fill += take
      o += take
    }
    return out
  }

  /** Seal the final chunk (possibly empty); returns it with the plaintext digest. */
  finish(): { sealed: Uint8Array; finalBytes: number; digest: PlaintextDigest } {
    if (this.finished) throw new Error('EncryptCore: finish called twice')
    this.finished = true
    const finalBytes = this.fill
    const sealed = this.cipher.seal(
      this.index,
      true,
      this.length,
      this.buf.subarray(0, finalBytes),
      this.alloc?.(finalBytes + TAG_BYTES)
    )
    return { sealed, finalBytes, digest: { length: this.length, sha256: new Uint8Array(this.hash.digest()) } }
  }
}

/**
 * Push-style decryption of one object whose plaintext length and SHA-256 are known from the
 * envelope. Feed ciphertext pieces of any size; get plaintext chunks, each only after its tag
 * has verified. Throws IntegrityError on a failed chunk or bytes after the final chunk;
 * `finish()` throws it on a short stream or (after every chunk was returned) a wrong hash.
 *
 * A chunk that lies whole inside a piece is opened in place; one split across pieces is
 * assembled in an internal buffer. Either way `push` keeps no reference to its argument.
 */
export class DecryptCore {
  private readonly cipher: ChunkCipher
  private readonly expected: PlaintextDigest
  private readonly hash: Hash = createHash('sha256')
  private readonly alloc: Allocator | undefined
  private readonly n: number
  private index = 0
  private asm: Uint8Array | undefined
  private fill = 0

  constructor(contentKey: Uint8Array, params: StreamParams, expected: PlaintextDigest, alloc?: Allocator) {
    this.cipher = new ChunkCipher(contentKey, params)
    if (!Number.isSafeInteger(expected.length) || expected.length < 0) {
      throw new IntegrityError('invalid plaintext length', { length: expected.length })
    }
    this.expected = expected
    this.alloc = alloc
    this.n = chunkCount(expected.length, params.chunkSize)
  }

  private sealedSize(i: number): number {
    const cs = this.cipher.params.chunkSize
    return (i < this.n - 1 ? cs : this.expected.length - (this.n - 1) * cs) + TAG_BYTES
  }

  private openChunk(sealed: Uint8Array): Uint8Array {
    const plain = this.cipher.open(
      this.index,
      this.index === this.n - 1,
      this.expected.length,
      sealed,
      this.alloc?.(sealed.byteLength - TAG_BYTES)
    )
    this.hash.update(plain)
    this.index++
    return plain
  }

  /** Feed ciphertext; returns the plaintext of every chunk it completed (authenticated). */
  push(piece: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    let o = 0
    while (o < piece.byteLength) {
      if (this.index >= this.n) {
        throw new IntegrityError('ciphertext continues after the final chunk', { chunks: this.n })
      }
      const want = this.sealedSize(this.index)
      if (this.fill === 0 && piece.byteLength - o >= want) {
        out.push(this.openChunk(piece.subarray(o, o + want)))
        o += want
        continue
      }
      this.asm ??= new Uint8Array(this.cipher.params.chunkSize + TAG_BYTES)
      const take = Math.min(want - this.fill, piece.byteLength - o)
      this.asm.set(piece.subarray(o, o + take), this.fill)
      this.fill += take
      o += take
      if (this.fill === want) {
        out.push(this.openChunk(this.asm.subarray(0, want)))
        this.fill = 0
      }
    }
    return out
  }

  /** Check that the stream was complete and the plaintext hash matches. */
  finish(): void {
    if (this.index < this.n) {
      throw new IntegrityError('ciphertext is truncated', {
        chunks: this.index,
        expectedChunks: this.n,
        partialBytes: this.fill
      })
    }
    const digest = this.hash.digest()
    if (
      digest.byteLength !== this.expected.sha256.byteLength ||
      !timingSafeEqual(digest, this.expected.sha256)
    ) {
      throw new IntegrityError('plaintext hash does not match the envelope', { length: this.expected.length })
    }
  }
}

/**
 * Encrypts a stream of plaintext pieces into sealed chunks, one yielded buffer per chunk, in
 * this thread (see {@link EncryptCore}; `CryptoWorker` runs the same code in a worker thread).
 */
export class StreamEncryptor {
  private readonly core: EncryptCore
  private result: PlaintextDigest | undefined
  private readonly onChunk: ((plainBytes: number) => void) | undefined
  private readonly chunkSize: number

  constructor(
    contentKey: Uint8Array,
    params: StreamParams,
    opts: { onChunk?(plainBytes: number): void } = {}
  ) {
    this.core = new EncryptCore(contentKey, params)
    this.onChunk = opts.onChunk
    this.chunkSize = params.chunkSize
  }

  /** Sealed chunks of `source`. Iterate it to the end before reading {@link digest}. */
  async *encrypt(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of source) {
      for (const sealed of this.core.push(piece)) {
        this.onChunk?.(this.chunkSize)
        yield sealed
      }
    }
    const { sealed, finalBytes, digest } = this.core.finish()
    this.result = digest
    this.onChunk?.(finalBytes)
    yield sealed
  }

  /** Length and SHA-256 of the plaintext; available once {@link encrypt} has finished. */
  digest(): PlaintextDigest {
    if (this.result === undefined) throw new Error('StreamEncryptor.digest() called before the stream ended')
    return this.result
  }
}

/**
 * Decrypts a ciphertext stream (pieces of any size) in this thread (see {@link DecryptCore}).
 * Yields one plaintext buffer per chunk, each only after its tag has verified; throws
 * IntegrityError on a failed chunk, a short or long stream, or (after the last chunk, so after
 * earlier verified chunks were yielded) a wrong plaintext hash.
 */
export class StreamDecryptor {
  private readonly core: DecryptCore

  constructor(contentKey: Uint8Array, params: StreamParams, expected: PlaintextDigest) {
    this.core = new DecryptCore(contentKey, params, expected)
  }

  async *decrypt(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const piece of source) {
      for (const plain of this.core.push(piece)) yield plain
    }
    this.core.finish()
  }
}
