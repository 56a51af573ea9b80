/**
 * Worker-thread side of {@link CryptoWorker}: runs EncryptCore/DecryptCore (AEAD and SHA-256)
 * for any number of interleaved streams, so that the main thread only copies bytes and runs
 * Helia. Messages are handled in order; every `data` message gets exactly one `ack` (or `err`).
 *
 * The worker allocates no buffer that crosses threads: input buffers go back in each `ack`,
 * and results are written into output buffers that the main thread supplies (in `data`
 * messages) and gets back filled, so each buffer is allocated and finally dropped by the main
 * thread, whose garbage collector accounts for it.
 */
import { createHash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { DecryptCore, EncryptCore } from './crypto.js'
import type { ErrorCategory } from '../common/index.js'
import type { FromWorker, PooledBytes, ToWorker, WorkerError } from './crypto-worker-client.js'

const port = parentPort
if (port === null) throw new Error('crypto-worker must run in a worker thread')

interface Stream {
  core: EncryptCore | DecryptCore
  /** Output buffers supplied by the main thread, not yet used. */
  pool: ArrayBuffer[]
  /** Size of an output buffer: the largest result of one chunk. */
  outSize: number
  /** Buffers the current push wrote results into, in order. */
  used: ArrayBuffer[]
}

const streams = new Map<number, Stream>()

function open(
  id: number,
  make: (alloc: (size: number) => Uint8Array) => EncryptCore | DecryptCore,
  outSize: number
): void {
  const s: Stream = { core: undefined as unknown as EncryptCore, pool: [], outSize, used: [] }
  s.core = make((size) => {
    // The main thread keeps the pool stocked; allocating here is only a fallback.
    const ab = s.pool.pop() ?? new ArrayBuffer(Math.max(size, s.outSize))
    s.used.push(ab)
    return new Uint8Array(ab, 0, size)
  })
  streams.set(id, s)
}

/**
 * The results of one push as `{ buf, len }`. Sealed chunks also carry their SHA-256, which
 * becomes their block CID: hashing them here spares the main thread the hashing Helia's
 * importer would do.
 */
function results(s: Stream, views: Uint8Array[]): PooledBytes[] {
  const sealing = s.core instanceof EncryptCore
  const out = views.map((v, i): PooledBytes => {
    const buf = s.used[i]!
    // The main thread allocates these without zeroing; the tail of a short (final) chunk's
    // buffer is reachable through `view.buffer`, so clear it rather than leak old memory.
    if (v.byteLength < buf.byteLength) new Uint8Array(buf, v.byteLength).fill(0)
    const o: PooledBytes = { buf, len: v.byteLength }
    if (sealing) o.sha256 = new Uint8Array(createHash('sha256').update(v).digest())
    return o
  })
  s.used = []
  return out
}

function toWorkerError(err: unknown): WorkerError {
  const e = err as {
    name?: string
    code?: string
    message?: string
    fields?: Record<string, unknown>
    category?: ErrorCategory
  }
  return {
    name: e.name ?? 'Error',
    code: typeof e.code === 'string' ? e.code : undefined,
    message: e.message ?? String(err),
    fields: e.fields ?? {},
    ...(e.category !== undefined ? { category: e.category } : {})
  }
}

port.on('message', (m: ToWorker) => {
  try {
    switch (m.t) {
      case 'enc':
        open(m.id, (alloc) => new EncryptCore(m.key, m.params, alloc), m.params.chunkSize + 16)
        return
      case 'dec':
        open(m.id, (alloc) => new DecryptCore(m.key, m.params, m.expected, alloc), m.params.chunkSize)
        return
      case 'data': {
        const s = streams.get(m.id)
        if (s === undefined) return
        s.pool.push(...m.outBufs)
        const outs = results(s, s.core.push(new Uint8Array(m.buf, 0, m.len)))
        const msg: FromWorker = { t: 'ack', id: m.id, inBuf: m.buf, inBytes: m.len, outs }
        port.postMessage(msg, [m.buf, ...outs.map((o) => o.buf)])
        return
      }
      case 'end': {
        const s = streams.get(m.id)
        if (s === undefined) return
        streams.delete(m.id)
        let outs: PooledBytes[] = []
        let extra: Pick<Extract<FromWorker, { t: 'done' }>, 'digest' | 'finalBytes'> = {}
        if (s.core instanceof EncryptCore) {
          const { sealed, finalBytes, digest } = s.core.finish()
          outs = results(s, [sealed])
          extra = { digest, finalBytes }
        } else {
          s.core.finish()
        }
        const msg: FromWorker = { t: 'done', id: m.id, outs, unused: s.pool, ...extra }
        port.postMessage(msg, [...outs.map((o) => o.buf), ...s.pool])
        return
      }
      case 'close':
        streams.delete(m.id)
        return
    }
  } catch (err) {
    streams.delete(m.id)
    port.postMessage({ t: 'err', id: m.id, error: toWorkerError(err) } satisfies FromWorker)
  }
})

port.postMessage({ t: 'ready', id: 0 } satisfies FromWorker)
