/**
 * Keeps gossipsub talking to every peer it is connected to (`services.gossipKeeper`).
 *
 * Gossipsub opens its outbound stream to a peer when libp2p reports the peer (identify on a
 * new connection, or an inbound gossipsub stream), and forgets the peer when a stream's read
 * side fails. When a peer has two connections, e.g. a stale one that a move to another
 * network black-holed and the new one it redialed, the order of events can leave gossipsub
 * with no stream at all while a healthy connection stays open: the new connection was reported
 * while the stale stream still looked open (so no stream was opened on it), then the stale
 * connection failed and gossipsub dropped the peer. libp2p does not report an open
 * connection again, so nothing reopens it: the two nodes stay connected and verified members
 * of each other, and hear nothing from each other (seen in the network lab: a moved volunteer
 * aggregated no model in 12 rounds). Upstream fixed the stale-stream half
 * (libp2p/js-libp2p#3531) and left this half as a follow-up.
 *
 * The keeper reconciles: shortly after any connection closes, and every `intervalMs`, each
 * open, unlimited connection to a peer that speaks gossipsub whose peer gossipsub does not know,
 * or knows without an outbound stream, is handed to gossipsub as libp2p's registrar would
 * hand a new one. The peer's side then opens its own stream back (gossipsub answers an inbound
 * stream with an outbound one). Each repair is counted and logged.
 *
 * It also keeps gossipsub's IP-colocation penalty (score term P6: more than 10 peers from one IP
 * cost each of them (n − 10)² × −5, so 16 cost −180, under the graylist threshold) from hitting
 * peers behind a relay. Gossipsub takes a peer's IP from its connection's remote address, and
 * for a relayed connection that is the *relay's* address: every volunteer behind a NAT that a
 * founder relays shows the founder's IP. In the network lab, 16 volunteers behind NATs were all
 * connected through the founder's relay and none heard another's announcement (bench:wan,
 * N = 16: 0 peer models aggregated), while 4 did (3 peers on one IP stay under the cliff). So
 * the IP of every relay a connection goes through is added to gossipsub's P6 whitelist (its live
 * score parameters) when the connection opens: that IP says nothing about the peers behind it.
 * `colocationPenalty(false)` turns P6 off altogether (a private swarm: membership credentials,
 * not IP addresses, keep Sybils out, and a community's members may well share one NAT).
 */
import type {
  ComponentLogger,
  Connection,
  Libp2pEvents,
  Logger,
  PeerId,
  PeerStore,
  Startable,
  TypedEventTarget
} from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { hostOf, isRelayed } from './addresses.js'
import { GOSSIP_KEEPER_CLOSE_DELAY_MS, GOSSIP_KEEPER_INTERVAL_MS } from './constants.js'

/** The parts of gossipsub the keeper reads and calls (public on the class at run time). */
export interface KeptPubsub {
  readonly peers: ReadonlyMap<string, PeerId>
  readonly streamsOutbound: ReadonlyMap<string, unknown>
  readonly protocols: readonly string[]
  /** Gossipsub's live score parameters (a public field of the implementation). */
  readonly score?: {
    params: { IPColocationFactorWhitelist: Set<string>; IPColocationFactorWeight: number }
  }
  isStarted(): boolean
}

/** Components of {@link GossipKeeper} (libp2p hands them over; `pubsub` is the gossipsub service). */
export interface GossipKeeperComponents {
  events: TypedEventTarget<Libp2pEvents>
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  pubsub?: unknown
}

export interface GossipKeeperInit {
  /** How often every connection is checked (ms). */
  intervalMs?: number
  /** How long after a connection closes its peer is checked (ms): gossipsub reacts first. */
  closeDelayMs?: number
}

/** What the keeper has done (`swarm_info.gossipKeeper`). */
export interface GossipKeeperStats {
  /** Peers handed back to gossipsub. */
  repairs: number
  /** Checks run. */
  sweeps: number
  /** Relay IPs exempted from the IP-colocation penalty. */
  relayIps: string[]
  /** Whether the IP-colocation penalty applies at all. */
  colocationPenalty: boolean
}

type ConnectHook = (peerId: PeerId, connection: Connection) => void

function hook(pubsub: unknown): ConnectHook | undefined {
  const fn = (pubsub as { onPeerConnected?: unknown } | undefined)?.onPeerConnected
  return typeof fn === 'function' ? (fn as ConnectHook).bind(pubsub) : undefined
}

function isKeptPubsub(p: unknown): p is KeptPubsub {
  const o = p as Partial<Record<keyof KeptPubsub, unknown>> | undefined
  return (
    o?.peers instanceof Map &&
    o.streamsOutbound instanceof Map &&
    Array.isArray(o.protocols) &&
    typeof o.isStarted === 'function'
  )
}

/** See the module doc. */
export class GossipKeeper implements Startable {
  private readonly components: GossipKeeperComponents
  private readonly intervalMs: number
  private readonly closeDelayMs: number
  private readonly log: Logger
  private readonly counters = { repairs: 0, sweeps: 0 }
  private readonly relayIps = new Set<string>()
  /** P6's weight as configured, restored by `colocationPenalty(true)`. */
  private colocationWeight: number | undefined
  private timer: NodeJS.Timeout | undefined
  /** The sweep due after a connection closed (one, however many closed meanwhile). */
  private afterClose: NodeJS.Timeout | undefined
  /** Sweeps run one after another. */
  private queue: Promise<unknown> = Promise.resolve()
  private started = false

  constructor(components: GossipKeeperComponents, init: GossipKeeperInit = {}) {
    this.components = components
    this.intervalMs = init.intervalMs ?? GOSSIP_KEEPER_INTERVAL_MS
    this.closeDelayMs = init.closeDelayMs ?? GOSSIP_KEEPER_CLOSE_DELAY_MS
    this.log = components.logger.forComponent('shoal:p2p:gossip-keeper')
    this.onClose = this.onClose.bind(this)
    this.onOpen = this.onOpen.bind(this)
  }

  start(): void {
    this.started = true
    this.components.events.addEventListener('connection:close', this.onClose)
    this.components.events.addEventListener('connection:open', this.onOpen)
    this.timer = setInterval(() => void this.sweep(), this.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    this.started = false
    this.components.events.removeEventListener('connection:close', this.onClose)
    this.components.events.removeEventListener('connection:open', this.onOpen)
    clearInterval(this.timer)
    clearTimeout(this.afterClose)
    this.afterClose = undefined
  }

  stats(): GossipKeeperStats {
    const params = this.scoreParams()
    return {
      ...this.counters,
      relayIps: [...this.relayIps],
      colocationPenalty: params !== undefined && params.IPColocationFactorWeight !== 0
    }
  }

  /**
   * Turns gossipsub's IP-colocation penalty off (`false`: a private swarm, where membership
   * keeps Sybils out) or back to its configured weight (`true`).
   */
  colocationPenalty(on: boolean): void {
    const params = this.scoreParams()
    if (params === undefined) return
    if (!on) {
      if (params.IPColocationFactorWeight !== 0) this.colocationWeight = params.IPColocationFactorWeight
      params.IPColocationFactorWeight = 0
    } else if (this.colocationWeight !== undefined) {
      params.IPColocationFactorWeight = this.colocationWeight
    }
  }

  private scoreParams(): NonNullable<KeptPubsub['score']>['params'] | undefined {
    const pubsub = this.components.pubsub
    return isKeptPubsub(pubsub) ? pubsub.score?.params : undefined
  }

  /** A relayed connection: the relay's IP (what gossipsub takes for the peer's) is exempt from P6. */
  private onOpen(evt: CustomEvent<Connection>): void {
    const addr = evt.detail.remoteAddr
    if (!isRelayed(addr)) return
    const host = hostOf(addr)
    const params = this.scoreParams()
    if (host === undefined || host.kind === 'dns' || params === undefined) return
    if (params.IPColocationFactorWhitelist.has(host.value)) return
    params.IPColocationFactorWhitelist.add(host.value)
    this.relayIps.add(host.value)
    this.log('relay %s exempted from the IP-colocation penalty', host.value)
  }

  /**
   * Checks every open connection (after any check still running: one at a time).
   * Resolves to the number of peers handed back to gossipsub.
   */
  async sweep(): Promise<number> {
    const run = this.queue.then(async () => this.check())
    this.queue = run.catch(() => {})
    return run
  }

  private onClose(): void {
    if (!this.started || this.afterClose !== undefined) return
    this.afterClose = setTimeout(() => {
      this.afterClose = undefined
      void this.sweep()
    }, this.closeDelayMs)
    this.afterClose.unref()
  }

  private async check(): Promise<number> {
    const pubsub = this.components.pubsub
    const connect = hook(pubsub)
    if (!this.started || !isKeptPubsub(pubsub) || connect === undefined || !pubsub.isStarted()) return 0
    this.counters.sweeps++
    let repaired = 0
    // The newest open, unlimited connection of each peer: an older one may be the stale
    // connection whose failure made gossipsub drop the peer in the first place.
    const newest = new Map<string, Connection>()
    for (const conn of this.components.connectionManager.getConnections()) {
      if (conn.status !== 'open' || conn.limits !== undefined) continue
      const id = conn.remotePeer.toString()
      const known = newest.get(id)
      if (known === undefined || conn.timeline.open > known.timeline.open) newest.set(id, conn)
    }
    for (const [id, conn] of newest) {
      if (pubsub.peers.has(id) && pubsub.streamsOutbound.has(id)) continue
      if (!(await this.speaksGossip(conn.remotePeer, pubsub.protocols))) continue
      if (!this.started || conn.status !== 'open') continue
      this.log(
        'gossipsub had %s for connected peer %p; handing it back',
        pubsub.peers.has(id) ? 'no stream' : 'no entry',
        conn.remotePeer
      )
      connect(conn.remotePeer, conn)
      this.counters.repairs++
      repaired++
    }
    return repaired
  }

  private async speaksGossip(peer: PeerId, protocols: readonly string[]): Promise<boolean> {
    try {
      const known = await this.components.peerStore.get(peer)
      return known.protocols.some((p) => protocols.includes(p))
    } catch {
      return false // not identified yet: libp2p will report it when it is
    }
  }
}

/** The libp2p service factory (`services: { gossipKeeper: gossipKeeper() }`, after `pubsub`). */
export function gossipKeeper(
  init: GossipKeeperInit = {}
): (components: GossipKeeperComponents) => GossipKeeper {
  return (components) => new GossipKeeper(components, init)
}
