/**
 * Which advertised addresses are worth dialing. A peer's identify record and its peer-exchange
 * record list every address it listens on, including loopback, link-local and private LAN
 * addresses that mean something only on its own host or LAN. Dialing those across the
 * internet wastes time, or reaches a different host with the same private address (noise then
 * fails on the PeerId, but only after a connection attempt).
 *
 * The rule ({@link addressScope}, {@link dialableFrom}):
 * - unspecified (`0.0.0.0`, `::`) and link-local (`169.254/16`, `fe80::/10`): never dialed;
 * - loopback (`127/8`, `::1`): only by a node that itself listens on loopback only (a local
 *   swarm of processes on one machine);
 * - private (RFC 1918, CGNAT `100.64/10`, ULA `fc00::/7`): only when `allowPrivate` is set and
 *   one of this node's own addresses is in the same /16 (IPv4) or /48 (IPv6) — a shared LAN;
 * - everything else is "public" (this includes 198.18.0.0/15, the benchmarking range the
 *   network lab uses as its internet — libp2p's own `isPrivate` counts it as private, see
 *   docs/p2p.md);
 * - relayed addresses (`…/p2p/<relay>/p2p-circuit/…`) are judged by the relay's part;
 * - DNS addresses are kept.
 */
import type { ConnectionGater } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** Where an IP address can be reached from. */
export type AddressScope = 'unspecified' | 'loopback' | 'link-local' | 'private' | 'public' | 'dns'

/** The host part of a multiaddr: its first ip4/ip6/dns component (before any `/p2p-circuit`). */
export function hostOf(ma: Multiaddr): { kind: 'ip4' | 'ip6' | 'dns'; value: string } | undefined {
  for (const c of ma.getComponents()) {
    if (c.name === 'ip4' || c.name === 'ip6') return { kind: c.name, value: c.value ?? '' }
    if (c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6' || c.name === 'dnsaddr')
      return { kind: 'dns', value: c.value ?? '' }
    if (c.name === 'p2p-circuit') return undefined
  }
  return undefined
}

/** Whether the address goes through a circuit relay. */
export function isRelayed(ma: Multiaddr): boolean {
  return ma.getComponents().some((c) => c.name === 'p2p-circuit')
}

function ip4Bytes(ip: string): number[] | undefined {
  const parts = ip.split('.').map(Number)
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255)
    ? parts
    : undefined
}

/** The scope of an IPv4 or IPv6 address (text form). */
export function ipScope(ip: string): AddressScope {
  const v4 = ip4Bytes(ip.startsWith('::ffff:') ? ip.slice(7) : ip)
  if (v4 !== undefined) {
    const [a, b] = v4 as [number, number, number, number]
    if (a === 0) return 'unspecified'
    if (a === 127) return 'loopback'
    if (a === 169 && b === 254) return 'link-local'
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private'
    if (a === 100 && b >= 64 && b <= 127) return 'private'
    return 'public'
  }
  const low = ip.toLowerCase()
  if (low === '::' || low === '0:0:0:0:0:0:0:0') return 'unspecified'
  if (low === '::1') return 'loopback'
  if (/^fe[89ab]/.test(low)) return 'link-local'
  if (/^f[cd]/.test(low)) return 'private'
  return 'public'
}

/** The scope of a multiaddr's host (a relayed address: the relay's). */
export function addressScope(ma: Multiaddr): AddressScope | undefined {
  const host = hostOf(ma)
  if (host === undefined) return undefined
  return host.kind === 'dns' ? 'dns' : ipScope(host.value)
}

function sameNetwork(a: string, b: string): boolean {
  const x = ip4Bytes(a)
  const y = ip4Bytes(b)
  if (x !== undefined && y !== undefined) return x[0] === y[0] && x[1] === y[1]
  if (x !== undefined || y !== undefined) return false
  const prefix = (ip: string): string => ip.toLowerCase().split(':').slice(0, 3).join(':')
  return prefix(a) === prefix(b)
}

/** Options of {@link dialableFrom}. */
export interface DialPolicy {
  /** This node's own addresses (listen and announced). */
  own: Multiaddr[]
  /** Dial private (LAN) addresses that share a /16 with an own address (default true). */
  allowPrivate?: boolean
}

/**
 * Whether a peer's advertised address is worth dialing from a node with the given own
 * addresses (the rule in the module doc).
 */
export function dialableFrom(ma: Multiaddr, policy: DialPolicy): boolean {
  const host = hostOf(ma)
  if (host === undefined) return !isRelayed(ma) // a bare /p2p/… is resolved by the peer store
  if (host.kind === 'dns') return true
  const scope = ipScope(host.value)
  if (scope === 'unspecified' || scope === 'link-local') return false
  const ownHosts = policy.own.flatMap((o) => {
    const h = hostOf(o)
    return h === undefined || h.kind === 'dns' ? [] : [h.value]
  })
  if (scope === 'loopback') {
    return ownHosts.length > 0 && ownHosts.every((h) => ipScope(h) === 'loopback')
  }
  if (scope === 'private') {
    if (policy.allowPrivate === false) return false
    return ownHosts.some((h) => ipScope(h) === 'private' && sameNetwork(h, host.value))
  }
  return true
}

/** The addresses of `addrs` that {@link dialableFrom} keeps. */
export function filterDialable(addrs: Multiaddr[], policy: DialPolicy): Multiaddr[] {
  return addrs.filter((a) => dialableFrom(a, policy))
}

/**
 * Addresses worth telling other members about: no unspecified or link-local address, and no
 * loopback address unless the node has nothing else (a local swarm on one machine).
 */
export function advertisable(addrs: Multiaddr[]): Multiaddr[] {
  const kept = addrs.filter((a) => {
    const s = addressScope(a)
    return s !== 'unspecified' && s !== 'link-local'
  })
  const nonLoopback = kept.filter((a) => addressScope(a) !== 'loopback')
  return nonLoopback.length > 0 ? nonLoopback : kept
}

/**
 * A connection gater that refuses to dial addresses {@link dialableFrom} rejects, layered over
 * `inner` (e.g. a private swarm's `PeerAccessList.gater`). `own` is read at each dial.
 */
export function addressGater(
  inner: ConnectionGater,
  own: () => Multiaddr[],
  opts: { allowPrivate?: boolean } = {}
): ConnectionGater {
  return {
    ...inner,
    denyDialMultiaddr: async (ma) => {
      if ((await inner.denyDialMultiaddr?.(ma)) === true) return true
      const mine = own()
      if (mine.length === 0) return false // not listening yet: nothing to compare with
      return !dialableFrom(ma, { own: mine, ...opts })
    }
  }
}

/** Parses multiaddr strings, dropping the ones that do not parse. */
export function parseAddrs(addrs: readonly string[]): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const a of addrs) {
    try {
      out.push(multiaddr(a))
    } catch {
      // not a multiaddr: ignored (the sender is told nothing; it is its own loss)
    }
  }
  return out
}
