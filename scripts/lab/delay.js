// @ts-check
/**
 * Test-only delay emulation for the network lab, in user space (this kernel has no `tc netem`):
 * everything a process writes to a TCP peer inside the lab's addresses (198.18.0.0/15) is
 * handed to the socket `SHOAL_LAB_DELAY_MS` milliseconds later, in order. The lab loads it into
 * its daemons with `node --import` when `NetworkLab.startDaemon` is given a delay.
 *
 * What it emulates and what not: every message a node sends reaches its peer that much later,
 * so each request/response of every protocol (noise handshake, multistream negotiation,
 * identify, membership, gossip, bitswap want → block) costs 2 × delay, as on a link with that
 * RTT. TCP's own SYNs and ACKs are not delayed, so the kernel sees a short link: TCP's window
 * is not bound by the bandwidth-delay product as on a real long link.
 *
 * Loss (`SHOAL_LAB_LOSS`, a probability per write): a TCP stream cannot lose bytes; on a real
 * link a lost segment shows as a retransmission delay (one retransmission timeout, RTO) during
 * which everything after it waits (head-of-line blocking). So each write is, with that
 * probability, held back by one more RTO (`SHOAL_LAB_RTO_MS`, default max(200 ms, 4 × delay):
 * Linux's minimum RTO is 200 ms), and no later write on the socket overtakes it. The draws are
 * seeded (`SHOAL_LAB_SEED`) per process. What it does not model: TCP's congestion window
 * shrinking after a loss, and loss of the kernel's own SYNs and ACKs.
 *
 * Backpressure, as on a real socket: the bytes held back count as buffered. A delayed `write`
 * returns false once the bytes the shim holds for the socket plus the socket's own
 * `writableLength` reach its `writableHighWaterMark`, and the socket then emits 'drain' (once)
 * when the shim has handed all of them to it and its own buffer is below the mark; if the
 * socket's own buffer reached the mark meanwhile, its own 'drain' stands for that one. So a
 * writer that waits for 'drain' keeps at most about one high-water mark plus one chunk held
 * back per socket. The mark is `window` bytes when given (never below the socket's own): a
 * delayed socket carries about one window per delay, so with Node's 64 KiB mark a 50 ms link
 * would carry ~1.3 MB/s, less than the lab's 20 Mbit/s. The lab's daemons get
 * `SHOAL_LAB_WINDOW` (default 4 MiB, Linux's largest TCP send buffer, `tcp_wmem`): what a
 * kernel keeps in flight on a long link, and a bound on what a daemon holds per socket.
 */
import net from 'node:net'

/**
 * A seeded uniform generator in [0, 1) (mulberry32).
 * @param {number} seed
 * @returns {() => number}
 */
function uniform(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * What the shim keeps per socket: the queue of deferred calls and the timer that runs them, the
 * bytes of the queued writes, whether a `write` returned false and its 'drain' is owed, and
 * whether `end` was called.
 * @typedef {{ queue: Array<{ at: number, fn: () => void }>, timer: any, held: number,
 *   needDrain: boolean, ending: boolean }} Lab
 */

/**
 * Bytes of a write's chunk: a string in its encoding (the socket's default if none is given),
 * a Buffer or Uint8Array by its length.
 * @param {any} s
 * @param {any[]} args `write`'s arguments: chunk, encoding?, callback?
 * @returns {number}
 */
function byteLength(s, [chunk, encoding]) {
  if (typeof chunk !== 'string') return typeof chunk?.byteLength === 'number' ? chunk.byteLength : 0
  /** @type {BufferEncoding} */
  const enc = typeof encoding === 'string' ? encoding : (s._writableState?.defaultEncoding ?? 'utf8')
  return Buffer.byteLength(chunk, enc)
}

/**
 * Emits the 'drain' the shim owes, unless the socket has ended or been destroyed since (Node
 * emits none then either).
 * @param {net.Socket} s
 */
function emitDrain(s) {
  if (!s.destroyed && !s.writableEnded) s.emit('drain')
}

/**
 * Delays writes (and the end of the stream) of sockets whose remote address `match`es by `ms`,
 * and with probability `loss` by one more `rtoMs` (a retransmission), never reordering a
 * socket's writes; the bytes held back count towards the socket's high-water mark (`write`
 * returns false, then 'drain'). Returns a function that undoes it; `stats` counts writes and
 * losses, and keeps the most bytes held back for one socket at once (`maxHeld`).
 * @param {{ ms: number, loss?: number, rtoMs?: number, seed?: number, match?: (address: string) => boolean,
 *   window?: number, stats?: { writes: number, lost: number, maxHeld?: number } }} opts
 * @returns {() => void}
 */
export function installDelay(opts) {
  const ms = opts.ms
  const loss = opts.loss ?? 0
  if (!(ms >= 0) || !(loss >= 0 && loss < 1))
    throw new RangeError(`lab delay: ms ≥ 0 and 0 ≤ loss < 1 (${ms}, ${loss})`)
  const rto = opts.rtoMs ?? Math.max(200, 4 * ms)
  const windowBytes = opts.window ?? 0
  const random = uniform(opts.seed ?? 1)
  const stats = opts.stats ?? { writes: 0, lost: 0 }
  const match = opts.match ?? ((a) => /^(::ffff:)?198\.(18|19)\./.test(a))
  /** @type {any} */
  const proto = net.Socket.prototype
  const { write, end, destroySoon } = proto
  /** @param {net.Socket} s */
  const delayed = (s) => (ms > 0 || loss > 0) && typeof s.remoteAddress === 'string' && match(s.remoteAddress)
  /**
   * @param {any} s
   * @returns {Lab}
   */
  const lab = (s) =>
    (s.__shoalLab ??= { queue: [], timer: undefined, held: 0, needDrain: false, ending: false })
  /**
   * Runs `fn` when this write is due: `ms` (plus an RTO when lost) from now, and not before the
   * socket's earlier writes. Each socket has its own queue, drained in order by one timer:
   * timers of different lengths may fire out of order (libuv's clock is cached).
   * @param {any} s
   * @param {boolean} data
   * @param {() => void} fn
   */
  const later = (s, data, fn) => {
    let at = Date.now() + ms
    if (data) {
      stats.writes++
      if (loss > 0 && random() < loss) {
        stats.lost++
        at += rto
      }
    }
    const q = lab(s)
    const last = q.queue.at(-1)
    q.queue.push({ at: Math.max(at, last?.at ?? 0), fn })
    if (q.timer === undefined) drain(q)
  }
  /** @param {Lab} q */
  const drain = (q) => {
    q.timer = undefined
    while (q.queue.length > 0 && q.queue[0].at <= Date.now()) q.queue.shift()?.fn()
    if (q.queue.length > 0) q.timer = setTimeout(() => drain(q), Math.max(0, q.queue[0].at - Date.now()))
  }
  proto.write = function (/** @type {any[]} */ ...args) {
    if (!delayed(this)) return write.apply(this, args)
    const q = lab(this)
    const bytes = byteLength(this, args)
    q.held += bytes
    stats.maxHeld = Math.max(stats.maxHeld ?? 0, q.held)
    const ok = q.held + this.writableLength < Math.max(this.writableHighWaterMark, windowBytes)
    // Unless the socket already owes a 'drain' of its own, which will stand for this one.
    if (!ok && !this.writableNeedDrain) q.needDrain = true
    later(this, true, () => {
      q.held -= bytes
      // On a socket destroyed meanwhile this calls back with ERR_STREAM_DESTROYED, as Node does.
      write.apply(this, args)
      if (!q.needDrain) return
      // The socket's own buffer reached its mark: its own 'drain' will come and stands for ours
      // (Node emits one 'drain' however many writes returned false). Destroyed: none will.
      if (this.writableNeedDrain || this.destroyed) q.needDrain = false
      else if (q.held === 0 && !q.ending) {
        q.needDrain = false
        process.nextTick(emitDrain, this)
      }
    })
    return ok
  }
  proto.end = function (/** @type {any[]} */ ...args) {
    if (!delayed(this)) return end.apply(this, args)
    lab(this).ending = true
    later(this, false, () => {
      if (!this.destroyed) end.apply(this, args)
    })
    return this
  }
  proto.destroySoon = function () {
    if (!delayed(this)) return destroySoon.call(this)
    later(this, false, () => destroySoon.call(this))
  }
  return () => {
    proto.write = write
    proto.end = end
    proto.destroySoon = destroySoon
  }
}

const fromEnv = Number(process.env.SHOAL_LAB_DELAY_MS ?? 0)
const lossFromEnv = Number(process.env.SHOAL_LAB_LOSS ?? 0)
if (fromEnv > 0 || lossFromEnv > 0)
  installDelay({
    ms: fromEnv,
    loss: lossFromEnv,
    ...(process.env.SHOAL_LAB_RTO_MS !== undefined ? { rtoMs: Number(process.env.SHOAL_LAB_RTO_MS) } : {}),
    seed: Number(process.env.SHOAL_LAB_SEED ?? process.pid),
    window: Number(process.env.SHOAL_LAB_WINDOW ?? 4 * 2 ** 20)
  })
