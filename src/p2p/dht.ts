/**
 * kad-dht for a private swarm: the DHT talks to verified members only.
 *
 * kad-dht 16 serves any peer that opens its protocol and adds to its routing table any peer
 * that supports it — after identify, before Shoal's membership handshake has said who the peer
 * is — and never drops it on disconnect, so an outsider who knows the swarm's DHT protocol
 * could enter members' routing tables and store provider records with them. libp2p 3's stream
 * middleware cannot wait for the handshake yet (js-libp2p PR #3534), so {@link membersOnlyDHT}
 * builds the DHT with a view of the node's components in which:
 * - the inbound handler runs only once `admits(peer)` resolves true (else the stream is reset);
 * - the topology's `onConnect` (how a connected peer enters the routing table) is called only
 *   for admitted peers;
 * - an outbound DHT stream is opened only to an admitted peer (the connection first, then the
 *   handshake, then the stream), so no query or answer is exchanged with an outsider and no
 *   outsider reaches the routing table through a query either.
 *
 * `admits` is the membership's verdict (`PeerAccessList.admits`): it waits for a running
 * handshake and says no while the node has no membership yet.
 */
import type { PeerId, StreamHandler, Topology } from '@libp2p/interface'
import {
  kadDHT,
  type KadDHT,
  type KadDHTComponents,
  type KadDHTInit,
  type SingleKadDHT
} from '@libp2p/kad-dht'
import type { Multiaddr } from '@multiformats/multiaddr'
import { logger } from '../common/index.js'

const log = logger('shoal:p2p:dht')

/** Whether a peer may take part in the DHT: resolves true for a verified swarm member. */
export type DhtAdmission = (peer: PeerId) => Promise<boolean>

/** Counters of a members-only DHT (process-wide per instance). */
export interface DhtGuardStats {
  /** Inbound DHT streams from peers that are not verified members, reset unread. */
  refusedInbound: number
  /** Peers not admitted to the routing table on connect. */
  refusedTopology: number
  /** Outbound DHT streams not opened, the peer not being a verified member. */
  refusedOutbound: number
}

/** A kad-dht factory whose DHT talks to admitted peers only (see the module doc). */
export function membersOnlyDHT(
  init: KadDHTInit,
  admits: DhtAdmission,
  stats: DhtGuardStats = { refusedInbound: 0, refusedTopology: 0, refusedOutbound: 0 }
): (components: KadDHTComponents) => KadDHT {
  const make = kadDHT(init)
  return (components) => make(guardedComponents(components, admits, stats))
}

function guardedComponents(
  components: KadDHTComponents,
  admits: DhtAdmission,
  stats: DhtGuardStats
): KadDHTComponents {
  const { registrar, connectionManager } = components
  const guardedRegistrar = override(registrar, {
    handle: async (
      protocol: string,
      handler: StreamHandler,
      options?: Parameters<typeof registrar.handle>[2]
    ) =>
      registrar.handle(
        protocol,
        async (stream, connection) => {
          if (await admits(connection.remotePeer)) return handler(stream, connection)
          stats.refusedInbound++
          log.info(
            { peer: connection.remotePeer.toString(), protocol },
            'DHT stream refused: not a verified member'
          )
          stream.abort(new Error('not a verified swarm member'))
        },
        options
      ),
    register: async (
      protocol: string,
      topology: Topology,
      options?: Parameters<typeof registrar.register>[2]
    ) =>
      registrar.register(
        protocol,
        {
          ...topology,
          onConnect: (peer, connection) => {
            admits(peer)
              .then((ok) => {
                if (ok) topology.onConnect?.(peer, connection)
                else stats.refusedTopology++
              })
              .catch(() => {})
          }
        },
        options
      )
  })
  const guardedConnections = override(connectionManager, {
    openStream: async (
      peer: PeerId | Multiaddr | Multiaddr[],
      protocol: string | string[],
      options?: Parameters<typeof connectionManager.openStream>[2]
    ) => {
      const connection = await connectionManager.openConnection(peer, options)
      if (!(await admits(connection.remotePeer))) {
        stats.refusedOutbound++
        throw new Error(`DHT: ${connection.remotePeer.toString()} is not a verified swarm member`)
      }
      return connection.newStream(protocol, options)
    }
  })
  return new Proxy(components, {
    get(target, prop) {
      if (prop === 'registrar') return guardedRegistrar
      if (prop === 'connectionManager') return guardedConnections
      return Reflect.get(target, prop, target) as unknown
    }
  })
}

/** `target` with some members replaced; the others are the target's own, bound to it. */
function override<T extends object>(target: T, members: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(members, prop)) return (members as Record<string | symbol, unknown>)[prop]
      const value = Reflect.get(t, prop, t) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value
    }
  })
}

/** The DHT of a libp2p node built by `libp2pOptions` (its `dht` service): mode and routing-table size. */
export function dhtState(node: {
  services: object
}): { mode: 'client' | 'server'; routingTable: number } | undefined {
  const dht = (node.services as { dht?: SingleKadDHT }).dht
  if (dht === undefined) return undefined
  return { mode: dht.getMode(), routingTable: dht.routingTable.size }
}
