/**
 * What a node knows about how it can be reached, and how each of its connections runs: a
 * small libp2p service (`services.netinfo`) over the address manager, which the public
 * `Libp2p` interface does not expose.
 *
 * - reachability: `public` when some non-relayed address that libp2p counts as public was
 *   verified (AutoNAT v2 dial-backs of a listen or observed address, or a UPnP mapping
 *   confirmed); `private` when it holds a relay reservation and nothing is verified; `unknown`
 *   otherwise. libp2p marks every private listen address "verified" without testing it, so
 *   those do not count. AutoNAT v2 only tests addresses that libp2p counts as public
 *   (`isPrivate` from @libp2p/utils), so a node on a LAN, on loopback, or in the network lab's
 *   198.18.0.0/15 stays `unknown` or `private`; in the lab's IPv6 internet (3fff::/64) a
 *   founder becomes `public` (docs/p2p.md).
 * - each connection: direct or relayed (`/p2p-circuit`), limited (relay limits apply) or not,
 *   and `upgraded` when it is a direct connection opened while a relayed one to the same peer
 *   was open (DCUtR hole punching, or a direct dial that succeeded later).
 */
import type { Connection, PeerId, TypedEventTarget, Libp2pEvents } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import { isPrivate } from '@libp2p/utils'
import { isRelayed } from './addresses.js'

/** Components of {@link NetInfo} (libp2p hands them over). */
export interface NetInfoComponents {
  peerId: PeerId
  addressManager: AddressManager
  events: TypedEventTarget<Libp2pEvents>
}

/** An address of this node with what libp2p knows of it. */
export interface NodeAddressInfo {
  addr: string
  /** transport (listening), observed (peers saw it), ip-mapping (UPnP), announce, dns-mapping. */
  type: string
  verified: boolean
}

/** The reachability report of `shoal id` / `node_info`. */
export interface ReachabilityInfo {
  reachability: 'public' | 'private' | 'unknown'
  listen: string[]
  observed: string[]
  relay: string[]
  addresses: NodeAddressInfo[]
}

/** One connection as `shoal peers` / `peers_list` shows it. */
export interface ConnectionInfo {
  relayed: boolean
  limited: boolean
  upgraded: boolean
}

/** See the module doc. */
export class NetInfo {
  private readonly components: NetInfoComponents
  /** Peers that had a relayed connection open (id → count of them). */
  private readonly relayedOpen = new Map<string, number>()
  private readonly upgraded = new WeakSet<Connection>()
  private readonly upgradedPeers = new Set<string>()

  constructor(components: NetInfoComponents) {
    this.components = components
    this.onOpen = this.onOpen.bind(this)
    this.onClose = this.onClose.bind(this)
  }

  start(): void {
    this.components.events.addEventListener('connection:open', this.onOpen)
    this.components.events.addEventListener('connection:close', this.onClose)
  }

  stop(): void {
    this.components.events.removeEventListener('connection:open', this.onOpen)
    this.components.events.removeEventListener('connection:close', this.onClose)
  }

  /** This node's addresses and reachability. */
  reachability(): ReachabilityInfo {
    const am = this.components.addressManager
    const addresses = am.getAddressesWithMetadata().map((a) => ({
      addr: a.multiaddr.toString(),
      type: a.type,
      verified: a.verified
    }))
    const relay = am
      .getAddresses()
      .filter((a) => isRelayed(a))
      .map(String)
    const publicVerified = am
      .getAddressesWithMetadata()
      .some((a) => a.verified && !isRelayed(a.multiaddr) && !isPrivate(a.multiaddr))
    return {
      reachability: publicVerified ? 'public' : relay.length > 0 ? 'private' : 'unknown',
      listen: am.getListenAddrs().map(String),
      observed: am.getObservedAddrs().map(String),
      relay,
      addresses
    }
  }

  /**
   * The addresses to hand to others (invites, `shoal id`), each ending in `/p2p/<this peer>`:
   * what libp2p advertises (verified and relay addresses) and the addresses this node listens
   * on, verified or not. libp2p advertises a public listen address only once AutoNAT v2 has
   * verified it, which needs peers already connected: a fresh founder on a public IP would
   * otherwise hand out invites that name no address at all. Unverified observed addresses are
   * left out (an observed port behind a NAT is rarely dialable).
   */
  advertised(): string[] {
    const am = this.components.addressManager
    const peer = this.components.peerId.toString()
    const out = new Set<string>()
    const add = (addr: string): void => {
      out.add(addr.includes('/p2p/') ? addr : `${addr}/p2p/${peer}`)
    }
    for (const a of am.getAddresses()) add(a.toString())
    for (const a of am.getAddressesWithMetadata()) if (a.type === 'transport') add(a.multiaddr.toString())
    return [...out]
  }

  /** How one connection runs. */
  connection(c: Connection): ConnectionInfo {
    return {
      relayed: isRelayed(c.remoteAddr),
      limited: c.limits !== undefined,
      upgraded: this.upgraded.has(c)
    }
  }

  /** Peers with a direct connection that replaced or joined a relayed one. */
  upgradedPeerCount(): number {
    return this.upgradedPeers.size
  }

  private onOpen(evt: CustomEvent<Connection>): void {
    const c = evt.detail
    const key = c.remotePeer.toString()
    if (isRelayed(c.remoteAddr)) {
      this.relayedOpen.set(key, (this.relayedOpen.get(key) ?? 0) + 1)
    } else if ((this.relayedOpen.get(key) ?? 0) > 0) {
      this.upgraded.add(c)
      this.upgradedPeers.add(key)
    }
  }

  private onClose(evt: CustomEvent<Connection>): void {
    const c = evt.detail
    if (!isRelayed(c.remoteAddr)) return
    const key = c.remotePeer.toString()
    const n = (this.relayedOpen.get(key) ?? 1) - 1
    if (n <= 0) this.relayedOpen.delete(key)
    else this.relayedOpen.set(key, n)
  }
}

/** The libp2p service factory (`services: { netinfo: netInfo() }`). */
export function netInfo(): (components: NetInfoComponents) => NetInfo {
  return (components) => new NetInfo(components)
}
