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
 * Delays writes (and the end of the stream) of sockets whose remote address `match`es by `ms`,
 * and with probability `loss` by one more `rtoMs` (a retransmission), never reordering a
 * socket's writes. Returns a function that undoes it; `stats` counts writes and losses.
 * @param {{ ms: number, loss?: number, rtoMs?: number, seed?: number, match?: (address: string) => boolean,
 *   stats?: { writes: number, lost: number } }} opts
 * @returns {() => void}
 */
export function installDelay(opts) {
  const ms = opts.ms
  const loss = opts.loss ?? 0
  if (!(ms >= 0) || !(loss >= 0 && loss < 1))
    throw new RangeError(`lab delay: ms ≥ 0 and 0 ≤ loss < 1 (${ms}, ${loss})`)
  const rto = opts.rtoMs ?? Math.max(200, 4 * ms)
  const random = uniform(opts.seed ?? 1)
  const stats = opts.stats ?? { writes: 0, lost: 0 }
  const match = opts.match ?? ((a) => /^(::ffff:)?198\.(18|19)\./.test(a))
  /** @type {any} */
  const proto = net.Socket.prototype
  const { write, end, destroySoon } = proto
  /** @param {net.Socket} s */
  const delayed = (s) => (ms > 0 || loss > 0) && typeof s.remoteAddress === 'string' && match(s.remoteAddress)
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
    /** @type {{ queue: Array<{ at: number, fn: () => void }>, timer: any }} */
    const q = (s.__shoalLab ??= { queue: [], timer: undefined })
    const last = q.queue.at(-1)
    q.queue.push({ at: Math.max(at, last?.at ?? 0), fn })
    if (q.timer === undefined) drain(q)
  }
  /** @param {{ queue: Array<{ at: number, fn: () => void }>, timer: any }} q */
  const drain = (q) => {
    q.timer = undefined
    while (q.queue.length > 0 && q.queue[0].at <= Date.now()) q.queue.shift()?.fn()
    if (q.queue.length > 0) q.timer = setTimeout(() => drain(q), Math.max(0, q.queue[0].at - Date.now()))
  }
  proto.write = function (/** @type {any[]} */ ...args) {
    if (!delayed(this)) return write.apply(this, args)
    later(this, true, () => {
      if (!this.destroyed) write.apply(this, args)
    })
    return true
  }
  proto.end = function (/** @type {any[]} */ ...args) {
    if (!delayed(this)) return end.apply(this, args)
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
    seed: Number(process.env.SHOAL_LAB_SEED ?? process.pid)
  })
