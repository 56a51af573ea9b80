/**
 * libp2p 3 options for a Shoal node: TCP (and QUIC when a listen address is QUIC), noise,
 * yamux, identify, ping, optional bootstrap and mDNS discovery, and gossipsub with signed messages (StrictSign).
 *
 * The same object works with `createLibp2p(opts)` and as Helia's `libp2p` options (with
 * `config: 'replace'` / `withLibp2pLight`, adding bitswap on top).
 */
import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHTInit } from '@libp2p/kad-dht'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub, GossipSubComponents, GossipsubOpts } from '@libp2p/gossipsub'
import type {
  AvgMinMax,
  AvgMinMaxConfig,
  Gauge,
  GaugeConfig,
  Histogram,
  HistogramConfig,
  MetricsRegister
} from '@libp2p/gossipsub/metrics'
import { identify, identifyPush } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import { membersOnlyDHT, type DhtAdmission, type DhtGuardStats } from './dht.js'
import { gossipKeeper, type GossipKeeper, type GossipKeeperInit } from './keeper.js'
import { liveness, type Liveness } from './liveness.js'
import { netInfo, type NetInfo } from './netinfo.js'
import { isQuic, quicTransport } from './quic.js'
import {
  DEFAULT_HEARTBEAT_MS,
  RELAY_MAX_RESERVATIONS,
  DEFAULT_LISTEN,
  IP_COLOCATION_WHITELIST,
  PING_INTERVAL_MS,
  PING_HANDLER_TIMEOUT_MS,
  STREAM_READ_BUFFER_BYTES
} from './constants.js'

/** The libp2p services of a Shoal node. */
export interface P2PServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  netinfo: NetInfo
  gossipKeeper: GossipKeeper
  liveness: Liveness
}

/** Options of {@link libp2pOptions}. */
export interface Libp2pOptionsInit {
  /** The node key (`identity.libp2pPrivateKey`): fixes the PeerId and so the DID. */
  privateKey: PrivateKey
  /**
   * Listen multiaddrs (default `['/ip4/127.0.0.1/tcp/0']`). A `/udp/<port>/quic-v1` address
   * adds the QUIC transport (src/p2p/quic.ts), as does `quic: true`.
   */
  listen?: string[]
  /**
   * The QUIC transport even without a QUIC listen address (to dial QUIC peers). Default: on
   * when some listen address is QUIC. Its dials leave from a UDP socket of their own, not the
   * listener's, so it does not make DCUtR hole punching work (docs/p2p.md).
   */
  quic?: boolean
  /** Addresses to announce instead of the listen addresses (e.g. a public IP behind NAT). */
  announce?: string[]
  /** Bootstrap multiaddrs (each with `/p2p/<peerId>`); none by default. */
  bootstrap?: string[]
  /** Local-network discovery by multicast DNS (default off). */
  mdns?: boolean
  /** Connection gater, e.g. a private swarm's `PeerAccessList.gater`. */
  connectionGater?: ConnectionGater
  /** Gossipsub overrides (tests shorten `heartbeatInterval`). `globalSignaturePolicy` stays StrictSign unless set. */
  gossip?: Partial<GossipsubOpts>
  /** The gossip keeper's timing (src/p2p/keeper.ts; tests shorten it). */
  gossipKeeper?: GossipKeeperInit
  /** How often each connection is pinged (ms, default `PING_INTERVAL_MS`; tests shorten it). */
  pingIntervalMs?: number
  /**
   * Circuit relay v2. Every node has the relay *transport* (it can dial and be dialed through a
   * relay) and, unless `reserve: false`, listens on `/p2p-circuit` (takes a reservation on relays
   * it is connected to). `serve` runs the relay *server* (publicly reachable nodes that opt in).
   * `unlimited` lifts the per-connection limits (2 min, 128 KiB by default) so that models can
   * travel over the relay: only safe behind a gater that admits members only
   * (`denyInboundRelayReservation`, `denyOutboundRelayedConnection`).
   */
  relay?: { serve?: boolean; reserve?: boolean; unlimited?: boolean; maxReservations?: number }
  /** DCUtR hole punching and AutoNAT v2 (default on). */
  natTraversal?: boolean
  /** UPnP / NAT-PMP port mapping on the home router (default off). */
  upnp?: boolean
  /**
   * kad-dht under this protocol (a private swarm: `/shoal/1/<swarm>/kad/1.0.0`); none when
   * undefined. Peer records keep every address (dials are filtered by the connection gater)
   * unless `dhtPublicOnly`, which drops private ones. With `dhtAdmits` (a private swarm) the DHT
   * talks to admitted peers only (src/p2p/dht.ts), counting refusals in `dhtStats`.
   */
  dhtProtocol?: string
  dhtPublicOnly?: boolean
  dhtAdmits?: DhtAdmission
  dhtStats?: DhtGuardStats
}

/** The reason gossipsub gives for rejecting a message before any topic validator runs. */
export type GossipsubPrevalidationError =
  | 'invalid_signature'
  | 'invalid_seqno'
  | 'invalid_peerid'
  | 'signature_present'
  | 'seqno_present'
  | 'from_present'
  | 'transform_failed'

const PREVALIDATION_ERRORS = new Set<string>([
  'invalid_signature',
  'invalid_seqno',
  'invalid_peerid',
  'signature_present',
  'seqno_present',
  'from_present',
  'transform_failed'
])

/** Listener of {@link GossipRejectionTap}: a message on `topic` failed gossipsub's own checks. */
export type PrevalidationRejectListener = (topic: string, error: GossipsubPrevalidationError) => void

const INVALID_TOTAL = 'gossipsub_msg_received_invalid_total'
const INVALID_BY_TOPIC = 'gossipsub_msg_received_invalid_by_topic_total'

interface AnyMetric {
  inc(...args: unknown[]): void
  set(...args: unknown[]): void
  addCollect(...args: unknown[]): void
  observe(...args: unknown[]): void
  reset(): void
  startTimer(): () => void
}

function noopMetric(): AnyMetric {
  return {
    inc() {},
    set() {},
    addCollect() {},
    observe() {},
    reset() {},
    startTimer() {
      return () => {}
    }
  }
}

/**
 * A gossipsub `MetricsRegister` that reports the messages gossipsub rejects *before* topic
 * validators run (missing or wrong signature, bad seqno or `from`): those never reach a
 * validator, so this is the only public place where they can be seen. Every other metric
 * is forwarded to `inner` when one is given, or dropped.
 *
 * It relies on gossipsub calling `msgReceivedInvalid.inc({ error })` and then
 * `msgReceivedInvalidByTopic.inc({ topic })` for each invalid message (17.x `onMsgRecvInvalid`);
 * test/unit/p2p covers that.
 */
export class GossipRejectionTap implements MetricsRegister {
  private readonly listeners = new Set<PrevalidationRejectListener>()
  private pendingError: string | undefined

  constructor(private readonly inner?: MetricsRegister) {}

  /** Adds a listener; returns the function that removes it. */
  onPrevalidationReject(listener: PrevalidationRejectListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  gauge<Labels extends Record<string, string | number> = Record<string, never>>(
    config: GaugeConfig<Labels>
  ): Gauge<Labels> {
    const inner = (this.inner?.gauge(config) as unknown as AnyMetric | undefined) ?? noopMetric()
    if (config.name === INVALID_TOTAL) {
      return this.wrapInc(inner, (labels) => {
        this.pendingError = typeof labels?.error === 'string' ? labels.error : undefined
      }) as unknown as Gauge<Labels>
    }
    if (config.name === INVALID_BY_TOPIC) {
      return this.wrapInc(inner, (labels) => {
        const error = this.pendingError
        this.pendingError = undefined
        const topic = labels?.topic
        if (error === undefined || !PREVALIDATION_ERRORS.has(error) || typeof topic !== 'string') return
        for (const listener of this.listeners) {
          try {
            listener(topic, error as GossipsubPrevalidationError)
          } catch {
            // a listener must never break gossipsub's receive path
          }
        }
      }) as unknown as Gauge<Labels>
    }
    return inner as unknown as Gauge<Labels>
  }

  histogram<Labels extends Record<string, string | number> = Record<string, never>>(
    config: HistogramConfig<Labels>
  ): Histogram<Labels> {
    return (this.inner?.histogram(config) ?? noopMetric()) as unknown as Histogram<Labels>
  }

  avgMinMax<Labels extends Record<string, string | number> = Record<string, never>>(
    config: AvgMinMaxConfig<Labels>
  ): AvgMinMax<Labels> {
    return (this.inner?.avgMinMax(config) ?? noopMetric()) as unknown as AvgMinMax<Labels>
  }

  private wrapInc(inner: AnyMetric, onInc: (labels: Record<string, unknown> | undefined) => void): AnyMetric {
    return {
      ...noopMetric(),
      set: (...args: unknown[]) => inner.set(...args),
      addCollect: (...args: unknown[]) => inner.addCollect(...args),
      inc: (...args: unknown[]) => {
        const labels = args[0]
        onInc(typeof labels === 'object' && labels !== null ? (labels as Record<string, unknown>) : undefined)
        inner.inc(...args)
      }
    }
  }
}

const TAPS = new WeakMap<object, GossipRejectionTap>()

/** The rejection tap installed by {@link libp2pOptions} on this pubsub instance, if any. */
export function gossipRejectionTap(pubsub: object): GossipRejectionTap | undefined {
  return TAPS.get(pubsub)
}

/** The fields of a received gossipsub message that {@link fastMessageId} reads. */
export interface RawGossipMessage {
  topic: string
  from?: Uint8Array
  seqno?: Uint8Array
  data?: Uint8Array
}

/**
 * Gossipsub's "fast message id" of a received message: SHA-256 over its topic, `from`, `seqno`
 * and data (each length-prefixed). Gossipsub checks it before the signature, so the copies of
 * a message that other mesh peers forward are dropped without verifying the signature again.
 * Only messages whose signature verified enter that cache, so a forged copy cannot shadow the
 * real one.
 */
export function fastMessageId(msg: RawGossipMessage): string {
  const h = createHash('sha256')
  const len = Buffer.alloc(4)
  for (const part of [Buffer.from(msg.topic), msg.from, msg.seqno, msg.data]) {
    len.writeUInt32BE(part?.length ?? 0xffffffff)
    h.update(len)
    if (part !== undefined) h.update(part)
  }
  return h.digest('base64')
}

/** Shoal's gossipsub settings, with `overrides` applied on top. */
export function gossipOptions(overrides: Partial<GossipsubOpts> = {}): Partial<GossipsubOpts> {
  const { scoreParams, ...rest } = overrides
  return {
    globalSignaturePolicy: 'StrictSign',
    allowPublishToZeroTopicPeers: true,
    heartbeatInterval: DEFAULT_HEARTBEAT_MS,
    fastMsgIdFn: fastMessageId,
    ...rest,
    scoreParams: {
      IPColocationFactorWhitelist: new Set(IP_COLOCATION_WHITELIST),
      ...scoreParams
    }
  }
}

/**
 * libp2p options for a Shoal node. Gossipsub is created with a {@link GossipRejectionTap}
 * so that `GossipService` can count the messages gossipsub itself rejects.
 *
 * @example
 * ```ts
 * const node = await createLibp2p(libp2pOptions({ privateKey: identity.libp2pPrivateKey }))
 * ```
 */
export function libp2pOptions(init: Libp2pOptionsInit): Libp2pOptions<P2PServices> {
  const gossip = gossipOptions(init.gossip)
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if (init.bootstrap !== undefined && init.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({ list: init.bootstrap }))
  }
  if (init.mdns === true) {
    peerDiscovery.push(mdns())
  }
  const relay = init.relay ?? {}
  const listen = [...(init.listen ?? DEFAULT_LISTEN)]
  if (relay.reserve !== false && !listen.includes('/p2p-circuit')) listen.push('/p2p-circuit')
  const extra: Record<string, unknown> = {}
  if (relay.serve === true) {
    extra.relay = circuitRelayServer({
      reservations: {
        maxReservations: relay.maxReservations ?? RELAY_MAX_RESERVATIONS,
        applyDefaultLimit: relay.unlimited !== true
      }
    })
  }
  if (init.natTraversal !== false) {
    extra.dcutr = dcutr()
    extra.autoNAT = autoNATv2()
  }
  if (init.upnp === true) extra.upnp = uPnPNAT()
  if (init.dhtProtocol !== undefined) {
    const dht: KadDHTInit = {
      protocol: init.dhtProtocol,
      // Members serve each other whatever AutoNAT says (it calls LAN and lab addresses private).
      clientMode: false,
      // kad-dht's default mapper drops private addresses: no routing table would fill on a LAN.
      peerInfoMapper: init.dhtPublicOnly === true ? removePrivateAddressesMapper : passthroughMapper
    }
    extra.dht =
      init.dhtAdmits === undefined ? kadDHT(dht) : membersOnlyDHT(dht, init.dhtAdmits, init.dhtStats)
  }
  const pingInterval = init.pingIntervalMs ?? PING_INTERVAL_MS
  // Our monitor has one ping out per connection; a peer's may overlap up to its handler's timeout.
  const pingStreams = Math.ceil(PING_HANDLER_TIMEOUT_MS / pingInterval) + 1
  const opts: Libp2pOptions<P2PServices> = {
    privateKey: init.privateKey,
    addresses: {
      listen,
      ...(init.announce !== undefined && init.announce.length > 0 ? { announce: init.announce } : {})
    },
    transports: [
      tcp(),
      ...(init.quic === true || listen.some(isQuic) ? [quicTransport()] : []),
      circuitRelayTransport()
    ],
    // Shoal's own monitor (`liveness`) aborts dead connections, not busy ones: liveness.ts.
    connectionMonitor: { enabled: false },
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: STREAM_READ_BUFFER_BYTES } })],
    peerDiscovery,
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      // Answers pings (ours come from `liveness`, one at a time per connection) for longer than a
      // pinger waits. A peer's pings may overlap: beyond libp2p's stream limits (1 out, 2 in) a
      // new one would be refused, and a peer with libp2p's own monitor aborts the connection for it.
      ping: ping({
        timeout: PING_HANDLER_TIMEOUT_MS,
        maxInboundStreams: pingStreams,
        maxOutboundStreams: pingStreams
      }),
      netinfo: netInfo(),
      ...extra,
      pubsub: (components: GossipSubComponents): GossipSub => {
        // one tap per gossipsub instance, so that options reused for several nodes stay apart
        const tap = new GossipRejectionTap(gossip.metricsRegister ?? undefined)
        const pubsub = gossipsub({
          ...gossip,
          metricsRegister: tap,
          metricsTopicStrToLabel: gossip.metricsTopicStrToLabel ?? new Map()
        })(components)
        TAPS.set(pubsub, tap)
        return pubsub
      },
      gossipKeeper: gossipKeeper(init.gossipKeeper),
      liveness: liveness({ intervalMs: pingInterval })
    }
  }
  if (init.connectionGater !== undefined) opts.connectionGater = init.connectionGater
  return opts
}
