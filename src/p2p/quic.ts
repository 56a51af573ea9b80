/**
 * The QUIC transport (`@chainsafe/libp2p-quic`, QUIC v1 over UDP through a native module from
 * prebuilt binaries), loaded once, when this module is first imported. A platform without a
 * prebuilt binary still runs every TCP node: only a node configured to listen on (or dial)
 * QUIC fails, with {@link QuicUnavailableError}.
 *
 * What QUIC does and does not give Shoal (measured in the network lab, docs/p2p.md "Hole
 * punching, measured"): a founder on a public IPv6 address is verified `public` by AutoNAT v2
 * over QUIC; DCUtR hole punching still fails, because this transport dials from a UDP socket of
 * its own (one per address family), not from the listener's, so the address a peer observes is
 * not one the node can be reached at.
 */
import type { quic as QuicFactory, QuicComponents } from '@chainsafe/libp2p-quic'
import type { Transport } from '@libp2p/interface'
import { ShoalError } from '../common/index.js'

let loaded: { quic: typeof QuicFactory } | { error: Error }
try {
  loaded = { quic: (await import('@chainsafe/libp2p-quic')).quic }
} catch (err) {
  loaded = { error: err as Error }
}

/** Thrown when a node is configured for QUIC on a platform whose native QUIC module did not load (`QUIC_UNAVAILABLE`). */
export class QuicUnavailableError extends ShoalError<'QUIC_UNAVAILABLE', { reason: string }> {
  static override readonly category = 'unavailable'
}

/** Whether a multiaddr is a QUIC v1 one (`…/udp/<port>/quic-v1`). */
export function isQuic(addr: string): boolean {
  return /\/udp\/\d+\/quic-v1(\/|$)/.test(addr)
}

/** Whether the QUIC transport can be used on this platform. */
export function quicAvailable(): boolean {
  return 'quic' in loaded
}

/** The QUIC transport factory for libp2p's `transports`; throws {@link QuicUnavailableError} where it cannot load. */
export function quicTransport(): (components: QuicComponents) => Transport {
  if ('error' in loaded) {
    throw new QuicUnavailableError(
      'QUIC_UNAVAILABLE',
      `QUIC is not available on this platform (${process.platform}-${process.arch}): ${loaded.error.message}`,
      { reason: loaded.error.message }
    )
  }
  return loaded.quic()
}
