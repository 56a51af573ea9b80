/**
 * Runs the chunked AEAD and the plaintext SHA-256 of ContentStore streams in one worker thread.
 *
 * Why: on the main thread, encryption and hashing would add to Helia's own work there (block
 * hashing, importer, blockstore I/O) and an encrypted add would run at a fraction of a plain
 * one. In the worker they overlap with it (and the worker also hashes each sealed chunk for its
 * block CID, which the main thread would otherwise do).
 *
 * Buffers: the main thread copies each input piece into a pooled buffer that it transfers to
 * the worker and gets back (the caller's buffers are never detached), and it supplies the
 * buffers the worker writes results into; those come back by transfer and are yielded as they
 * are, without a copy. So every large buffer is allocated and dropped on the main thread. (With
 * buffers allocated in one thread and dropped in the other, RSS was seen to grow by hundreds of
 * MiB over a 256 MiB stream: neither garbage collector reclaimed them promptly.)
 *
 * Flow control: at most `windowBytes` of input are in flight per stream, so memory stays
 * bounded whatever the relative speeds. Replies keep stream order. The worker is unref'd
 * while no stream is open, so it never keeps a process alive; `terminate()` ends it.
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ShoalError, isErrorCategory, logger, type ErrorCategory } from '../common/index.js'
import type { PlaintextDigest, StreamParams } from './crypto.js'
import { IntegrityError, InvalidParametersError, NotAuthorizedError } from './errors.js'

const log = logger('shoal:storage:crypto-worker')

/** Messages to the worker. */
export type ToWorker =
  | { t: 'enc'; id: number; key: Uint8Array; params: StreamParams }
  | { t: 'dec'; id: number; key: Uint8Array; params: StreamParams; expected: PlaintextDigest }
  /** `buf` holds `len` input bytes; `outBufs` are empty buffers for the worker to write results into. */
  | { t: 'data'; id: number; buf: ArrayBuffer; len: number; outBufs: ArrayBuffer[] }
  | { t: 'end'; id: number }
  | { t: 'close'; id: number }

/** An error as it crosses the thread boundary. */
export interface WorkerError {
  name: string
  code: string | undefined
  message: string
  fields: Record<string, unknown>
  /** The category of a ShoalError. */
  category?: ErrorCategory
}

/** Messages from the worker. */
export type FromWorker =
  | { t: 'ready'; id: 0 }
  /** `inBuf` is the input buffer coming back; `outs` are results in supplied buffers. */
  | { t: 'ack'; id: number; inBuf: ArrayBuffer; inBytes: number; outs: PooledBytes[] }
  /** `unused` returns the output buffers the stream did not need. */
  | {
      t: 'done'
      id: number
      outs: PooledBytes[]
      unused: ArrayBuffer[]
      digest?: PlaintextDigest
      finalBytes?: number
    }
  | { t: 'err'; id: number; error: WorkerError }

/** `len` bytes at the start of a buffer (sealed chunks: with their SHA-256). */
export interface PooledBytes {
  buf: ArrayBuffer
  len: number
  sha256?: Uint8Array
}

type Reply = Exclude<FromWorker, { t: 'ready' }>

/** Replies of one stream, in order, with a waiter for the next. */
class Channel {
  private readonly queue: Reply[] = []
  private waiter: ((r: Reply) => void) | undefined

  put(r: Reply): void {
    if (this.waiter !== undefined) {
      const w = this.waiter
      this.waiter = undefined
      w(r)
    } else {
      this.queue.push(r)
    }
  }

  get ready(): boolean {
    return this.queue.length > 0
  }

  async next(): Promise<Reply> {
    const r = this.queue.shift()
    if (r !== undefined) return r
    return new Promise<Reply>((resolve) => {
      this.waiter = resolve
    })
  }
}

function fromWorkerError(e: WorkerError): Error {
  switch (e.code) {
    case 'INTEGRITY':
      return new IntegrityError(e.message, e.fields)
    case 'INVALID_PARAMETERS':
      return new InvalidParametersError(e.message, e.fields)
    case 'NOT_AUTHORIZED':
      return new NotAuthorizedError(e.message, e.fields)
    default:
      if (e.code !== undefined)
        return new ShoalError(e.code, e.message, e.fields, {
          category: isErrorCategory(e.category) ? e.category : undefined
        })
      return Object.assign(new Error(e.message), { name: e.name })
  }
}

/**
 * How to start the worker. Run from TypeScript source, its `.js` URL exists only as `.ts`,
 * which a worker can load only with tsx's loader. Workers inherit `--import tsx` when the
 * process was started with it (`node --import tsx`, mocha, the benchmarks), but not a loader
 * registered at run time (`bin/shoal.js` calls tsx's `register()`): then the worker is given
 * tsx's loader by its resolved URL, so it works whatever the current directory.
 */
export function workerOptions(
  moduleUrl: string = import.meta.url,
  execArgv: readonly string[] = process.execArgv
): { execArgv: string[] } | undefined {
  if (!moduleUrl.endsWith('.ts')) return undefined
  const inherited = execArgv.some(
    (a, i) =>
      /^--(import|loader|experimental-loader)=.*tsx/.test(a) ||
      (/^--(import|loader|experimental-loader)$/.test(a) && /tsx/.test(execArgv[i + 1] ?? ''))
  )
  if (inherited) return undefined
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  return { execArgv: [...execArgv, '--import', tsx] }
}

/** Options of {@link CryptoWorker}. */
export interface CryptoWorkerInit {
  /** Input bytes in flight per stream before the sender waits (default 4 MiB). */
  windowBytes?: number
}

/** A lazily started worker thread that encrypts and decrypts streams (see the module comment). */
export class CryptoWorker {
  private worker: Worker | undefined
  private starting: Promise<Worker> | undefined
  private readonly channels = new Map<number, Channel>()
  private nextId = 1
  private readonly windowBytes: number

  constructor(init: CryptoWorkerInit = {}) {
    this.windowBytes = init.windowBytes ?? 4 * 1_048_576
  }

  /** Start the worker (if not running) and wait until its code has loaded. */
  async start(): Promise<void> {
    await this.ensure()
  }

  private async ensure(): Promise<Worker> {
    if (this.worker !== undefined) return this.worker
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const w = new Worker(new URL('./crypto-worker.js', import.meta.url), workerOptions())
      w.unref()
      const onStartError = (err: unknown): void => {
        this.starting = undefined
        reject(err instanceof Error ? err : new Error(String(err)))
      }
      w.once('error', onStartError)
      w.once('message', (m: FromWorker) => {
        w.off('error', onStartError)
        if (m.t !== 'ready') {
          onStartError(new Error('crypto worker did not start'))
          return
        }
        w.on('message', (r: FromWorker) => {
          if (r.t !== 'ready') this.channels.get(r.id)?.put(r)
        })
        w.on('error', (err) => this.fail(w, err))
        w.on('exit', (code) => this.fail(w, new Error(`crypto worker exited with code ${code}`)))
        this.worker = w
        this.starting = undefined
        log.debug('crypto worker started')
        resolve(w)
      })
    })
    return this.starting
  }

  /** The worker died: every open stream fails, and the next call starts a new worker. */
  private fail(w: Worker, err: Error): void {
    if (this.worker !== w) return
    this.worker = undefined
    for (const [id, ch] of this.channels) {
      ch.put({ t: 'err', id, error: { name: err.name, code: undefined, message: err.message, fields: {} } })
    }
  }

  /** End the worker (open streams fail). Idempotent. */
  async terminate(): Promise<void> {
    const w = this.worker ?? (await this.starting?.catch(() => undefined))
    this.worker = undefined
    if (w !== undefined) await w.terminate()
  }

  /**
   * Sealed chunks of `source` (as EncryptCore yields them). `onChunk` is told the plaintext
   * bytes of each chunk as it is sealed; `onDigest` receives the plaintext length and hash;
   * `sealedDigests`, when given, maps each yielded chunk to its SHA-256 (its block's hash).
   */
  async *encrypt(
    key: Uint8Array,
    params: StreamParams,
    source: AsyncIterable<Uint8Array>,
    hooks: {
      onChunk?(plainBytes: number): void
      onDigest(d: PlaintextDigest): void
      sealedDigests?: WeakMap<Uint8Array, Uint8Array>
    }
  ): AsyncGenerator<Uint8Array> {
    const id = this.nextId++
    yield* this.run(
      { t: 'enc', id, key, params },
      source,
      (r) => {
        if (r.t === 'ack') {
          for (let i = 0; i < r.outs.length; i++) hooks.onChunk?.(params.chunkSize)
        } else if (r.t === 'done') {
          hooks.onChunk?.(r.finalBytes ?? 0)
          hooks.onDigest(r.digest!)
        }
      },
      hooks.sealedDigests
    )
  }

  /** Plaintext of a sealed stream (as DecryptCore yields it: authenticated chunks only). */
  async *decrypt(
    key: Uint8Array,
    params: StreamParams,
    expected: PlaintextDigest,
    source: AsyncIterable<Uint8Array>
  ): AsyncGenerator<Uint8Array> {
    const id = this.nextId++
    yield* this.run({ t: 'dec', id, key, params, expected }, source, () => {}, undefined)
  }

  private async *run(
    open: Extract<ToWorker, { t: 'enc' | 'dec' }>,
    source: AsyncIterable<Uint8Array>,
    onReply: (r: Reply) => void,
    digests: WeakMap<Uint8Array, Uint8Array> | undefined
  ): AsyncGenerator<Uint8Array> {
    const w = await this.ensure()
    const id = open.id
    const ch = new Channel()
    this.channels.set(id, ch)
    if (this.channels.size === 1) w.ref()
    // Input pieces of up to one sealed chunk, so that aligned ciphertext leaves travel whole.
    const pieceBytes = open.params.chunkSize + 16
    const outSize = open.t === 'enc' ? open.params.chunkSize + 16 : open.params.chunkSize
    // Output buffers held by the worker: enough for every chunk the window can complete.
    const stock = Math.ceil(this.windowBytes / open.params.chunkSize) + 2
    let supplied = 0
    const inPool: ArrayBuffer[] = []
    let finished = false
    let inflight = 0

    /** Results as views of their buffers (now ours), and the input buffer back to the pool. */
    const take = (r: Reply): Uint8Array[] => {
      if (r.t === 'err') {
        finished = true
        throw fromWorkerError(r.error)
      }
      if (r.t === 'ack') {
        inflight -= r.inBytes
        inPool.push(r.inBuf)
      }
      supplied -= r.outs.length
      onReply(r)
      return r.outs.map(({ buf, len, sha256 }) => {
        const bytes = new Uint8Array(buf, 0, len)
        if (digests !== undefined && sha256 !== undefined) digests.set(bytes, sha256)
        return bytes
      })
    }

    try {
      w.postMessage(open)
      for await (const piece of source) {
        for (let o = 0; o < piece.byteLength; o += pieceBytes) {
          const part = piece.subarray(o, o + pieceBytes)
          const buf = inPool.pop() ?? uninitialized(pieceBytes)
          new Uint8Array(buf).set(part)
          const outBufs: ArrayBuffer[] = []
          // Not zero-filled: the worker writes every byte of a result and clears the rest.
          for (; supplied < stock; supplied++) outBufs.push(uninitialized(outSize))
          const msg: ToWorker = { t: 'data', id, buf, len: part.byteLength, outBufs }
          w.postMessage(msg, [buf, ...outBufs])
          inflight += part.byteLength
          while (inflight > this.windowBytes || ch.ready) {
            for (const out of take(await ch.next())) yield out
          }
        }
      }
      w.postMessage({ t: 'end', id } satisfies ToWorker)
      for (;;) {
        const r = await ch.next()
        for (const out of take(r)) yield out
        if (r.t === 'done') {
          finished = true
          return
        }
      }
    } finally {
      if (!finished && this.worker === w) w.postMessage({ t: 'close', id } satisfies ToWorker)
      this.channels.delete(id)
      if (this.channels.size === 0) w.unref()
    }
  }
}

/** A new ArrayBuffer of `size` bytes, not zero-filled. */
function uninitialized(size: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer
}
