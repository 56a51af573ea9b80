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
 * is not bound by the bandwidth-delay product as on a real long link. No loss: a TCP stream
 * cannot lose bytes; loss shows on real links as retransmission delay, which this does not add.
 */
import net from 'node:net'

/**
 * Delays writes (and the end of the stream) of sockets whose remote address `match`es by `ms`.
 * Returns a function that undoes it.
 * @param {{ ms: number, match?: (address: string) => boolean }} opts
 * @returns {() => void}
 */
export function installDelay(opts) {
  const ms = opts.ms
  const match = opts.match ?? ((a) => /^(::ffff:)?198\.(18|19)\./.test(a))
  /** @type {any} */
  const proto = net.Socket.prototype
  const { write, end, destroySoon } = proto
  /** @param {net.Socket} s */
  const delayed = (s) => ms > 0 && typeof s.remoteAddress === 'string' && match(s.remoteAddress)
  proto.write = function (/** @type {any[]} */ ...args) {
    if (!delayed(this)) return write.apply(this, args)
    setTimeout(() => {
      if (!this.destroyed) write.apply(this, args)
    }, ms)
    return true
  }
  proto.end = function (/** @type {any[]} */ ...args) {
    if (!delayed(this)) return end.apply(this, args)
    setTimeout(() => {
      if (!this.destroyed) end.apply(this, args)
    }, ms)
    return this
  }
  proto.destroySoon = function () {
    if (!delayed(this)) return destroySoon.call(this)
    setTimeout(() => destroySoon.call(this), ms)
  }
  return () => {
    proto.write = write
    proto.end = end
    proto.destroySoon = destroySoon
  }
}

const fromEnv = Number(process.env.SHOAL_LAB_DELAY_MS ?? 0)
if (fromEnv > 0) installDelay({ ms: fromEnv })
