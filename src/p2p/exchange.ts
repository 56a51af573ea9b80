/**
 * Peer exchange among the members of a swarm (`/shoal/1/peer-exchange/1.0.0`).
 *
 * A volunteer that joins with an invite knows one address: the founder's. Gossip still reaches
 * it through the founder, but weights travel over bitswap, which only asks connected peers,
 * so without this a swarm of volunteers degrades into each training alone. Whenever a member
 * is verified (a private swarm) or a peer that speaks the protocol is identified (a public
 * one), this node asks it for the members it knows: one length-prefixed JSON request, one
 * answer `{ v: 1, peers: [{ id, addrs }] }` (at most {@link MAX_EXCHANGE_PEERS} peers of
 * {@link MAX_EXCHANGE_ADDRS} addresses, 64 KiB). The answer lists only verified members and only
 * addresses worth dialing ({@link advertisable}); the asker keeps only the addresses it can
 * dial ({@link dialableFrom}), stores them in the peer store and dials the peers it is not
 * connected to, up to `maxPeers` connections. A peer with no dialable address is tried through
 * the answering peer when that one is a circuit relay. Every `intervalMs` one random member is
 * asked again, so that members who joined later are found and a partition heals.
 *
 * In a private swarm the handler answers only verified members (it waits for a running
 * handshake); anyone else gets a closed stream.
 */
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { logger, type Logger } from '../common/index.js'
import { advertisable, filterDialable, isRelayed, parseAddrs } from './addresses.js'
import {
  EXCHANGE_DIAL_BACKOFF_MS,
  EXCHANGE_INTERVAL_MS,
  EXCHANGE_MAX_KNOWN,
  EXCHANGE_MAX_PEERS,
  EXCHANGE_REDIAL_PER_TICK,
  EXCHANGE_REJOIN_MS,
  EXCHANGE_TIMEOUT_MS,
  MAX_EXCHANGE_ADDRS,
  MAX_EXCHANGE_BYTES,
  MAX_EXCHANGE_PEERS,
  PEER_EXCHANGE_PROTOCOL,
  RELAY_HOP_PROTOCOL
} from './constants.js'

const log = logger('shoal:p2p:exchange')
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The parts of a libp2p node that {@link PeerExchange} uses. */
export type ExchangeNode = Pick<
  Libp2p,
  | 'peerId'
  | 'handle'
  | 'unhandle'
  | 'getConnections'
  | 'getMultiaddrs'
  | 'dial'
  | 'dialProtocol'
  | 'peerStore'
  | 'addEventListener'
  | 'removeEventListener'
>

/** Who counts as a member: a private swarm's `SwarmMembership`; none in a public swarm. */
export interface ExchangeMembers extends Pick<EventTarget, 'addEventListener' | 'removeEventListener'> {
  isMember(peer: PeerId): boolean
  waitVerified(peer: PeerId): Promise<boolean>
  /** Emits `verified` (`CustomEvent<{ peerId }>`) when a member has proved its membership. */
}

/** What {@link PeerExchange} needs. */
export interface ExchangeComponents {
  node: ExchangeNode
  /** The membership of a private swarm; absent in a public one (every peer may exchange). */
  members?: ExchangeMembers
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of {@link PeerExchange}; defaults in constants.ts. */
export interface ExchangeInit {
  /** Stop dialing discovered peers at this many open connections (default 32). */
  maxPeers?: number
  /** How often one random member is asked again (ms, default 60 s; 0 = never). */
  intervalMs?: number
  /** Time for one exchange (ms, default 10 s). */
  timeoutMs?: number
  /** Dial private (LAN) addresses of a shared /16 (default true). */
  allowPrivate?: boolean
  /**
   * Where to start again when no member is connected (e.g. an invite's bootstrap addresses):
   * see {@link PeerExchange.rejoin}.
   */
  seeds?: string[]
  /** How soon a node with no member connected tries to rejoin (ms, default 5 s; doubles up to `intervalMs`; 0 = never). */
  rejoinMs?: number
}

/** One peer in an exchange answer. */
export interface ExchangedPeer {
  id: string
  addrs: string[]
}

/** Counters of {@link PeerExchange}. */
export interface ExchangeStats {
  /** Exchanges this node started that got an answer. */
  exchanges: number
  /** Answers this node gave. */
  served: number
  /** Requests refused (not a member). */
  refused: number
  /** Peers learned that this node was not connected to. */
  learned: number
  /** Dials of learned peers that connected / failed. */
  dialed: number
  dialFailures: number
  /** Rejoin attempts (no member connected) and those that connected to one. */
  rejoins: number
  rejoined: number
  /** Lost members (known, no longer connected) reconnected by redialing them. */
  redialed: number
}

/** Thrown (and caught, logged) when an exchange answer is not what the protocol says. */
class ExchangeFrameError extends Error {
  static readonly code = 'EXCHANGE_MALFORMED'
  readonly code = ExchangeFrameError.code
}

/** Parses an exchange answer; throws {@link ExchangeFrameError}. */
export function parseExchangeAnswer(bytes: Uint8Array): ExchangedPeer[] {
  let v: unknown
  try {
    v = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new ExchangeFrameError('answer is not UTF-8 JSON')
  }
  const o = v as { v?: unknown; peers?: unknown }
  if (typeof o !== 'object' || o === null || o.v !== 1 || !Array.isArray(o.peers))
    throw new ExchangeFrameError('answer is not a v1 peer list')
  const out: ExchangedPeer[] = []
  for (const p of o.peers.slice(0, MAX_EXCHANGE_PEERS)) {
    const e = p as { id?: unknown; addrs?: unknown }
    if (typeof e?.id !== 'string' || e.id.length > 128 || !Array.isArray(e.addrs)) continue
    out.push({
      id: e.id,
      addrs: e.addrs
        .filter((a): a is string => typeof a === 'string' && a.length <= 512)
        .slice(0, MAX_EXCHANGE_ADDRS)
    })
  }
  return out
}

/** Peer exchange among members: see the module doc. Events: `discovered` (`CustomEvent<PeerId>`). */
export class PeerExchange extends EventTarget {
  private readonly log: Logger
  private readonly node: ExchangeNode
  private readonly members: ExchangeMembers | undefined
  private readonly maxPeers: number
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly allowPrivate: boolean
  private readonly backoff = new Map<string, number>()
  private readonly counters: ExchangeStats = {
    exchanges: 0,
    served: 0,
    refused: 0,
    learned: 0,
    dialed: 0,
    dialFailures: 0,
    rejoins: 0,
    rejoined: 0,
    redialed: 0
  }
  private readonly seeds: Multiaddr[]
  private readonly rejoinMs: number
  /** Members this node has been connected to, newest last (their addresses are in the peer store). */
  private readonly known = new Map<string, PeerId>()
  /** Lost members: when to redial each next, and the backoff it is on. */
  private readonly lost = new Map<string, { until: number; delay: number }>()
  private rejoinTimer: ReturnType<typeof setTimeout> | undefined
  private rejoinDelay = 0
  private timer: ReturnType<typeof setInterval> | undefined
  private controller = new AbortController()
  private started = false

  constructor(components: ExchangeComponents, init: ExchangeInit = {}) {
    super()
    this.log = components.log ?? log
    this.node = components.node
    this.members = components.members
    this.maxPeers = init.maxPeers ?? EXCHANGE_MAX_PEERS
    this.intervalMs = init.intervalMs ?? EXCHANGE_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? EXCHANGE_TIMEOUT_MS
    this.allowPrivate = init.allowPrivate ?? true
    this.seeds = parseAddrs(init.seeds ?? [])
    this.rejoinMs = init.rejoinMs ?? EXCHANGE_REJOIN_MS
    this.onVerified = this.onVerified.bind(this)
    this.onIdentify = this.onIdentify.bind(this)
    this.onSelfUpdate = this.onSelfUpdate.bind(this)
    this.handleStream = this.handleStream.bind(this)
  }

  /** Registers the protocol and starts exchanging with members (those connected now too). Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.controller = new AbortController()
    await this.node.handle(PEER_EXCHANGE_PROTOCOL, this.handleStream, {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
      runOnLimitedConnection: true
    })
    if (this.members !== undefined) this.members.addEventListener('verified', this.onVerified)
    else this.node.addEventListener('peer:identify', this.onIdentify)
    this.node.addEventListener('self:peer:update', this.onSelfUpdate)
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => this.refresh(), this.intervalMs)
      this.timer.unref?.()
    }
    for (const c of this.node.getConnections()) {
      if (this.members === undefined || this.members.isMember(c.remotePeer)) this.exchangeSoon(c.remotePeer)
    }
    this.scheduleRejoin(this.rejoinMs)
  }

  /** Stops exchanging and unregisters the protocol. Idempotent. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.controller.abort()
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    if (this.rejoinTimer !== undefined) clearTimeout(this.rejoinTimer)
    this.rejoinTimer = undefined
    this.members?.removeEventListener('verified', this.onVerified)
    this.node.removeEventListener('peer:identify', this.onIdentify)
    this.node.removeEventListener('self:peer:update', this.onSelfUpdate)
    await this.node.unhandle(PEER_EXCHANGE_PROTOCOL).catch(() => {})
  }

  /** A copy of the counters. */
  stats(): ExchangeStats {
    return { ...this.counters }
  }

  /** The answer this node gives to `asker`: its verified members and their dialable addresses. */
  async knownPeers(asker?: PeerId): Promise<ExchangedPeer[]> {
    const seen = new Set<string>()
    const out: ExchangedPeer[] = []
    for (const c of this.node.getConnections()) {
      const peer = c.remotePeer
      const key = peer.toString()
      if (seen.has(key) || (asker !== undefined && peer.equals(asker))) continue
      seen.add(key)
      if (this.members !== undefined && !this.members.isMember(peer)) continue
      let addrs: Multiaddr[] = []
      try {
        addrs = (await this.node.peerStore.get(peer)).addresses.map((a) => a.multiaddr)
      } catch {
        addrs = []
      }
      // What the peer listens on (identify), else where its connection came from.
      if (addrs.length === 0 && !isRelayed(c.remoteAddr)) addrs = [c.remoteAddr]
      out.push({
        id: key,
        addrs: advertisable(addrs)
          .slice(0, MAX_EXCHANGE_ADDRS)
          .map((a) => a.toString())
      })
      if (out.length >= MAX_EXCHANGE_PEERS) break
    }
    return out
  }

  /**
   * Asks `peer` for the members it knows, then dials those this node is not connected to.
   * Never throws (failures are logged); resolves with the peers learned.
   */
  async exchange(peer: PeerId): Promise<PeerId[]> {
    if (!this.started) return []
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)])
    let answer: ExchangedPeer[]
    let relayCapable = false
    try {
      const stream = await this.node.dialProtocol(peer, PEER_EXCHANGE_PROTOCOL, {
        signal,
        runOnLimitedConnection: true
      })
      const lp = lpStream(stream, { maxDataLength: MAX_EXCHANGE_BYTES })
      await lp.write(encoder.encode(JSON.stringify({ v: 1 })), { signal })
      answer = parseExchangeAnswer((await lp.read({ signal })).subarray())
      await stream.close({ signal }).catch(() => stream.abort(new Error('closing')))
      this.counters.exchanges++
      relayCapable = await this.supports(peer, RELAY_HOP_PROTOCOL)
    } catch (err) {
      this.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'peer exchange failed')
      return []
    }
    return this.learn(answer, peer, relayCapable)
  }

  private async learn(answer: ExchangedPeer[], via: PeerId, relayCapable: boolean): Promise<PeerId[]> {
    const learned: PeerId[] = []
    const own = this.node.getMultiaddrs()
    for (const entry of answer) {
      let id: PeerId
      try {
        id = peerIdFromString(entry.id)
      } catch {
        continue
      }
      if (id.equals(this.node.peerId)) continue
      const addrs = filterDialable(parseAddrs(entry.addrs), { own, allowPrivate: this.allowPrivate })
      if (relayCapable) addrs.push(multiaddr(`/p2p/${via.toString()}/p2p-circuit`))
      const withPeer = addrs.map((a) =>
        a.getComponents().some((c) => c.name === 'p2p' && c.value === entry.id)
          ? a
          : a.encapsulate(`/p2p/${entry.id}`)
      )
      if (withPeer.length > 0) {
        await this.node.peerStore.merge(id, { multiaddrs: withPeer }).catch(() => {})
      }
      if (this.node.getConnections(id).length > 0) continue
      this.counters.learned++
      learned.push(id)
      this.dispatchEvent(new CustomEvent<PeerId>('discovered', { detail: id }))
      void this.dialLearned(id, withPeer)
    }
    return learned
  }

  private async dialLearned(id: PeerId, addrs: Multiaddr[]): Promise<void> {
    const key = id.toString()
    const until = this.backoff.get(key)
    if (until !== undefined && until > Date.now()) return
    if (this.node.getConnections().length >= this.maxPeers || addrs.length === 0) return
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)])
    try {
      // Direct addresses first; the relayed one last.
      const ordered = [...addrs.filter((a) => !isRelayed(a)), ...addrs.filter((a) => isRelayed(a))]
      let last: unknown
      for (const a of ordered) {
        try {
          await this.node.dial(a, { signal })
          this.counters.dialed++
          this.backoff.delete(key)
          this.log.debug({ peer: key, addr: a.toString() }, 'connected to a member found by peer exchange')
          return
        } catch (err) {
          last = err
          if (signal.aborted) break
        }
      }
      throw last
    } catch (err) {
      this.counters.dialFailures++
      this.backoff.set(key, Date.now() + EXCHANGE_DIAL_BACKOFF_MS)
      this.log.info(
        { peer: key, addrs: addrs.map(String), err: (err as Error)?.message },
        'could not reach a member found by peer exchange'
      )
    }
  }

  private async supports(peer: PeerId, protocol: string): Promise<boolean> {
    try {
      return (await this.node.peerStore.get(peer)).protocols.includes(protocol)
    } catch {
      return false
    }
  }

  private exchangeSoon(peer: PeerId): void {
    this.remember(peer)
    void this.exchange(peer)
  }

  /** A member this node was connected to: one of the places to start again from. */
  private remember(peer: PeerId): void {
    const key = peer.toString()
    this.known.delete(key)
    this.known.set(key, peer)
    if (this.known.size > EXCHANGE_MAX_KNOWN) this.known.delete(this.known.keys().next().value!)
  }

  /** Is any member (any peer, in a public swarm) connected? */
  private memberConnected(): boolean {
    return this.node
      .getConnections()
      .some((c) => this.members === undefined || this.members.isMember(c.remotePeer))
  }

  private scheduleRejoin(ms: number): void {
    if (!this.started || this.rejoinMs <= 0) return
    if (this.rejoinTimer !== undefined) clearTimeout(this.rejoinTimer)
    this.rejoinTimer = setTimeout(() => void this.rejoinTick(), ms)
    this.rejoinTimer.unref?.()
  }

  private async rejoinTick(): Promise<void> {
    this.rejoinTimer = undefined
    if (!this.started) return
    if (this.memberConnected()) {
      this.rejoinDelay = 0
      await this.redialLost()
      this.scheduleRejoin(this.rejoinMs)
      return
    }
    const ok = await this.rejoin()
    this.rejoinDelay = ok
      ? 0
      : Math.min(Math.max(this.rejoinDelay * 2, this.rejoinMs), Math.max(this.intervalMs, this.rejoinMs))
    this.scheduleRejoin(ok ? this.rejoinMs : this.rejoinDelay)
  }

  /**
   * Members this node knew and is no longer connected to (a partition, a restart, a dropped
   * link) are redialed, a few per tick, each with a backoff of its own (doubling from
   * `rejoinMs` up to `intervalMs`). Exchange alone cannot heal a partition: members answer with
   * the members they are connected to, and after a cut nobody on one side is connected to the
   * other. Never throws.
   */
  private async redialLost(): Promise<void> {
    const now = Date.now()
    const due: Array<[string, PeerId]> = []
    for (const [key, peer] of [...this.known].reverse()) {
      if (this.node.getConnections(peer).length > 0) {
        this.lost.delete(key)
        continue
      }
      const b = this.lost.get(key)
      if (b !== undefined && b.until > now) continue
      due.push([key, peer])
      if (due.length >= EXCHANGE_REDIAL_PER_TICK) break
    }
    if (due.length === 0 || this.node.getConnections().length >= this.maxPeers) return
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)])
    await Promise.all(
      due.map(async ([key, peer]) => {
        try {
          await this.node.dial(peer, { signal })
          this.lost.delete(key)
          this.counters.redialed++
          this.log.info({ peer: key }, 'reconnected to a member this node had lost')
        } catch {
          const delay = Math.min(
            Math.max((this.lost.get(key)?.delay ?? 0) * 2, this.rejoinMs),
            Math.max(this.intervalMs, this.rejoinMs)
          )
          this.lost.set(key, { until: Date.now() + delay, delay })
        }
      })
    )
  }

  /**
   * With no member connected — every connection dropped: a network change, a partition, the
   * machine asleep — nothing else would ever dial again (exchange asks connected members only).
   * Dials the members this node knew (newest first, by their peer-store addresses) and the
   * seeds, until one connects; returns whether one did. Runs every `rejoinMs` while no member is
   * connected, backing off to `intervalMs`. Never throws.
   */
  async rejoin(): Promise<boolean> {
    if (!this.started) return false
    this.counters.rejoins++
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)])
    const targets: Array<PeerId | Multiaddr> = [...[...this.known.values()].reverse(), ...this.seeds]
    for (const target of targets) {
      if (signal.aborted) break
      try {
        await this.node.dial(target, { signal })
        this.counters.rejoined++
        this.log.info({ via: target.toString() }, 'rejoined the swarm after losing every member connection')
        return true
      } catch (err) {
        this.log.debug({ target: target.toString(), err: (err as Error).message }, 'rejoin dial failed')
      }
    }
    this.log.info({ tried: targets.length }, 'no member connected and none reachable yet')
    return false
  }

  private onVerified(evt: Event): void {
    this.exchangeSoon((evt as CustomEvent<{ peerId: PeerId }>).detail.peerId)
  }

  private onIdentify(evt: CustomEvent<{ peerId: PeerId; protocols: string[] }>): void {
    if (evt.detail.protocols.includes(PEER_EXCHANGE_PROTOCOL)) this.exchangeSoon(evt.detail.peerId)
  }

  /**
   * This node's addresses changed (e.g. a relay reservation made it reachable): earlier dial
   * failures may no longer hold, and members may now reach it, so ask again.
   */
  private onSelfUpdate(): void {
    this.backoff.clear()
    this.refresh()
  }

  private refresh(): void {
    const peers = this.node
      .getConnections()
      .map((c) => c.remotePeer)
      .filter((p) => this.members === undefined || this.members.isMember(p))
    const pick = peers[Math.floor(Math.random() * peers.length)]
    if (pick !== undefined) this.exchangeSoon(pick)
  }

  private async handleStream(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const signal = AbortSignal.timeout(this.timeoutMs)
    try {
      if (this.members !== undefined && !(await this.members.waitVerified(peer))) {
        this.counters.refused++
        this.log.info({ peer: peer.toString() }, 'peer exchange refused: not a verified member')
        stream.abort(new Error('not a member'))
        return
      }
      const lp = lpStream(stream, { maxDataLength: 1024 })
      await lp.read({ signal })
      const peers = await this.knownPeers(peer)
      await lp.write(encoder.encode(JSON.stringify({ v: 1, peers })), { signal })
      this.counters.served++
      await stream.close({ signal }).catch(() => stream.abort(new Error('closing')))
    } catch (err) {
      this.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'peer exchange answer failed')
      stream.abort(err as Error)
    }
  }
}
