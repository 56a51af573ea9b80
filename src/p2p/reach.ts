/**
 * Reaching the peer that holds a block before fetching it. Bitswap asks only connected peers;
 * a model announced on gossip by a member this node never connected to would never arrive.
 * {@link PeerReach} remembers who announced which CID (`noteProvider`) and, before a fetch
 * (`prepareFetch`), makes sure this node is connected to that peer: by the addresses in the peer
 * store (peer exchange, identify), else through each connected circuit relay
 * (`/p2p/<relay>/p2p-circuit/p2p/<peer>`), else by the DHT's peer routing when the node has one
 * (libp2p's `dial(peerId)` asks it). With a DHT (`findProviders`), the CID's providers are
 * tried when nobody announced it or no announcer can be reached — every node that fetched a model
 * holds its blocks and says so (`provide`), so a model outlives its trainer's connection.
 * While a fetch runs (`keepReached`), an announcer whose last connection closes — a relay that
 * dropped the transfer, a direct link that died — is reached again the same way (its direct
 * addresses first, then another relay), so that bitswap's want is sent to it again.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { logger, type Logger } from '../common/index.js'
import { MAX_PROVIDER_HINTS, REACH_TIMEOUT_MS, RELAY_HOP_PROTOCOL } from './constants.js'

const log = logger('shoal:p2p:reach')

/** The parts of a libp2p node that {@link PeerReach} uses. */
export type ReachNode = Pick<
  Libp2p,
  'peerId' | 'getConnections' | 'dial' | 'peerStore' | 'addEventListener' | 'removeEventListener'
> & {
  contentRouting?: Pick<Libp2p['contentRouting'], 'findProviders' | 'provide'>
}

/** What {@link PeerReach} needs. */
export interface ReachComponents {
  node: ReachNode
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of {@link PeerReach}. */
export interface ReachInit {
  /** Time to reach one provider (ms, default 10 s). */
  timeoutMs?: number
  /**
   * Use the content routing (DHT): ask it for providers of a CID nobody announced or whose
   * announcers are unreachable, and publish provider records (`provide`) (default false).
   */
  findProviders?: boolean
}

/** Counters of {@link PeerReach}. */
export interface ReachStats {
  /** Fetches whose announcer was already connected. */
  connected: number
  /** Announcers reached by a direct dial / through a relay / not at all. */
  dialedDirect: number
  dialedRelayed: number
  unreachable: number
  /** Announcers whose last connection closed during a fetch, and were reached again. */
  reconnected: number
  /** Providers found by the content routing that this node connected to. */
  fromRouting: number
  /** Provider records published / that failed. */
  provided: number
  provideFailed: number
}

/** See the module doc. */
export class PeerReach {
  private readonly log: Logger
  private readonly node: ReachNode
  private readonly timeoutMs: number
  private readonly useProviders: boolean
  private readonly hints = new Map<string, Set<string>>()
  private readonly counters: ReachStats = {
    connected: 0,
    dialedDirect: 0,
    dialedRelayed: 0,
    unreachable: 0,
    reconnected: 0,
    fromRouting: 0,
    provided: 0,
    provideFailed: 0
  }

  constructor(components: ReachComponents, init: ReachInit = {}) {
    this.log = components.log ?? log
    this.node = components.node
    this.timeoutMs = init.timeoutMs ?? REACH_TIMEOUT_MS
    this.useProviders = init.findProviders ?? false
  }

  /** Remembers that `peer` announced `cid` (e.g. a model on the job's updates topic). */
  noteProvider(cid: string, peer: PeerId | string): void {
    const key = peer.toString()
    if (key === this.node.peerId.toString()) return
    let set = this.hints.get(cid)
    if (set === undefined) {
      if (this.hints.size >= MAX_PROVIDER_HINTS) {
        const oldest = this.hints.keys().next().value
        if (oldest !== undefined) this.hints.delete(oldest)
      }
      this.hints.set(cid, (set = new Set()))
    }
    set.add(key)
  }

  /** A copy of the counters. */
  stats(): ReachStats {
    return { ...this.counters }
  }

  /**
   * Connects to the announcers of `cid` this node is not connected to (in parallel), so that
   * bitswap's want reaches them. Never throws; resolves when each has connected or failed.
   */
  async prepareFetch(cid: string, signal?: AbortSignal): Promise<void> {
    const providers = [...(this.hints.get(cid) ?? [])]
    const reached = await Promise.all(providers.map(async (p) => this.connect(peerIdFromString(p), signal)))
    if (reached.some((ok) => ok)) return
    if (this.useProviders && this.node.contentRouting !== undefined) await this.fromRouting(cid, signal)
  }

  /**
   * Publishes a provider record for `cid` (this node holds its blocks) when the node uses a
   * content routing; in the background, never throws.
   */
  provide(cid: string): void {
    const routing = this.node.contentRouting
    if (!this.useProviders || routing === undefined) return
    routing
      .provide(CID.parse(cid), { signal: AbortSignal.timeout(this.timeoutMs * 3) })
      .then(() => this.counters.provided++)
      .catch((err: unknown) => {
        this.counters.provideFailed++
        this.log.debug({ cid, err: (err as Error).message }, 'could not publish a provider record')
      })
  }

  /**
   * While the fetch of `cid` runs (until the returned function is called or `signal` aborts):
   * when the last connection to one of its announcers closes, reach that announcer again
   * ({@link connect}). Returns the function that ends it.
   */
  keepReached(cid: string, signal?: AbortSignal): () => void {
    const providers = this.hints.get(cid)
    if (providers === undefined || providers.size === 0) return () => {}
    let done = false
    const onClose = (evt: CustomEvent<Connection>): void => {
      const peer = evt.detail.remotePeer
      if (done || signal?.aborted === true || !providers.has(peer.toString())) return
      if (this.node.getConnections(peer).length > 0) return
      this.log.info(
        { peer: peer.toString(), cid },
        'lost the connection to a provider mid-fetch; reaching it again'
      )
      void this.connect(peer, signal).then((ok) => {
        if (ok) this.counters.reconnected++
      })
    }
    this.node.addEventListener('connection:close', onClose)
    return () => {
      done = true
      this.node.removeEventListener('connection:close', onClose)
    }
  }

  /** Connected to `peer`, or dials it (peer store, then relays). Resolves with whether it is connected. */
  async connect(peer: PeerId, signal?: AbortSignal): Promise<boolean> {
    if (this.node.getConnections(peer).length > 0) {
      this.counters.connected++
      return true
    }
    const within = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), ...(signal ? [signal] : [])])
    try {
      await this.node.dial(peer, { signal: within })
      this.counters.dialedDirect++
      return true
    } catch (err) {
      this.log.debug(
        { peer: peer.toString(), err: (err as Error).message },
        'direct dial of a provider failed'
      )
    }
    for (const relay of await this.relays()) {
      if (within.aborted) break
      try {
        await this.node.dial(multiaddr(`/p2p/${relay.toString()}/p2p-circuit/p2p/${peer.toString()}`), {
          signal: within
        })
        this.counters.dialedRelayed++
        return true
      } catch (err) {
        this.log.debug(
          { peer: peer.toString(), relay: relay.toString(), err: (err as Error).message },
          'relayed dial of a provider failed'
        )
      }
    }
    this.counters.unreachable++
    this.log.info(
      { peer: peer.toString() },
      'the announcer of a model is unreachable (no direct or relayed path)'
    )
    return false
  }

  private async relays(): Promise<PeerId[]> {
    const out: PeerId[] = []
    const seen = new Set<string>()
    for (const c of this.node.getConnections()) {
      const key = c.remotePeer.toString()
      if (seen.has(key)) continue
      seen.add(key)
      try {
        if ((await this.node.peerStore.get(c.remotePeer)).protocols.includes(RELAY_HOP_PROTOCOL))
          out.push(c.remotePeer)
      } catch {
        // unknown peer: not a relay we know of
      }
    }
    return out
  }

  private async fromRouting(cid: string, signal?: AbortSignal): Promise<void> {
    const within = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), ...(signal ? [signal] : [])])
    try {
      let n = 0
      for await (const p of this.node.contentRouting!.findProviders(CID.parse(cid), { signal: within })) {
        if (p.id.equals(this.node.peerId)) continue
        if (await this.connect(p.id, within)) {
          this.counters.fromRouting++
          return
        }
        if (++n >= 3) return
      }
    } catch (err) {
      this.log.debug({ cid, err: (err as Error).message }, 'no provider found by content routing')
    }
  }
}
