/** `peers_*`, `swarm_*` and `pubsub_*` RPC methods. */
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { DidKeyString, ShoalError, type ErrorCategory } from '../../common/index.js'
import type { P2PServices } from '../../p2p/index.js'
import type { ShoalHelia } from '../../storage/index.js'
import { method, type RpcMethod } from '../rpc/index.js'
import { peerDid, type NodeSwarm } from '../swarm.js'

/** Thrown when a peer address cannot be parsed or dialled. */
export class PeerDialError extends ShoalError<
  'BAD_MULTIADDR' | 'DIAL_FAILED',
  { addr: string; reason: string }
> {
  static override readonly categories: Record<PeerDialError['code'], ErrorCategory> = {
    BAD_MULTIADDR: 'usage',
    DIAL_FAILED: 'unavailable'
  }
}

const Descriptor = z.object({
  id: z.string(),
  name: z.string(),
  private: z.boolean(),
  founders: z.array(z.string())
})

export function p2pMethods(helia: ShoalHelia<P2PServices>, swarm: NodeSwarm): RpcMethod[] {
  const libp2p = helia.libp2p
  return [
    method({
      name: 'peers_list',
      summary: 'Connected peers with their DIDs, addresses and swarm membership',
      params: z.object({}),
      result: z.array(
        z.object({
          peerId: z.string(),
          did: z.string().nullable(),
          addr: z.string(),
          member: z.boolean().nullable(),
          direction: z.enum(['inbound', 'outbound']),
          relayed: z.boolean().describe('through a circuit relay'),
          limited: z.boolean().describe('relay limits apply (data/duration)'),
          upgraded: z
            .boolean()
            .describe('direct, opened while a relayed one was open (hole punch or later dial)'),
          openedAt: z.number().describe('when the connection opened (ms since the epoch)')
        })
      ),
      handler: async () =>
        libp2p.getConnections().map((c) => ({
          peerId: c.remotePeer.toString(),
          did: peerDid(c.remotePeer) ?? null,
          addr: c.remoteAddr.toString(),
          member: swarm.isMember(c.remotePeer) ?? null,
          direction: c.direction,
          ...libp2p.services.netinfo.connection(c),
          openedAt: c.timeline.open
        }))
    }),
    method({
      name: 'peers_connect',
      summary: 'Dial a peer by multiaddr (with /p2p/<peer id>)',
      params: z.object({ addr: z.string().min(1).describe('e.g. /ip4/127.0.0.1/tcp/4420/p2p/12D3Koo…') }),
      result: z.object({ peerId: z.string(), did: z.string().nullable() }),
      handler: async ({ addr }, { signal }) => {
        let ma
        try {
          ma = multiaddr(addr)
        } catch (err) {
          throw new PeerDialError('BAD_MULTIADDR', `not a multiaddr: ${addr}`, {
            addr,
            reason: (err as Error).message
          })
        }
        try {
          const conn = await libp2p.dial(ma, {
            signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)])
          })
          return { peerId: conn.remotePeer.toString(), did: peerDid(conn.remotePeer) ?? null }
        } catch (err) {
          throw new PeerDialError('DIAL_FAILED', `could not connect to ${addr}: ${(err as Error).message}`, {
            addr,
            reason: (err as Error).name
          })
        }
      }
    }),
    method({
      name: 'swarm_create',
      summary: "Create a swarm (a new founders' key) and join it",
      params: z.object({
        name: z.string().min(1).max(256),
        private: z.boolean().optional().describe('default true')
      }),
      result: Descriptor,
      handler: async (p) => swarm.create({ name: p.name, private: p.private ?? true })
    }),
    method({
      name: 'swarm_invite',
      summary: 'Issue a membership credential for a DID, as an invite string (founders only)',
      params: z.object({
        did: DidKeyString,
        expiresInSeconds: z.number().int().positive().optional()
      }),
      result: z.object({ invite: z.string() }),
      handler: async ({ did, expiresInSeconds }) => ({
        invite: await swarm.invite(did, { expiresIn: expiresInSeconds })
      })
    }),
    method({
      name: 'swarm_join',
      summary: 'Join a swarm with an invite (swarm, bootstrap addresses, credential)',
      params: z.object({ invite: z.string().min(1) }),
      result: Descriptor,
      handler: async ({ invite }) => swarm.join(invite)
    }),
    method({
      name: 'swarm_info',
      summary: 'The swarm this node is in, and its verified and refused peers',
      params: z.object({}),
      result: z.record(z.string(), z.unknown()),
      handler: async () => swarm.info()
    }),
    method({
      name: 'pubsub_stats',
      summary:
        'Per topic: messages published, delivered, and rejected by reason; subscribed peers and mesh peers now',
      params: z.object({}),
      result: z.record(z.string(), z.unknown()),
      handler: async () => swarm.gossip.stats({ peers: true }) as Record<string, unknown>
    })
  ]
}
