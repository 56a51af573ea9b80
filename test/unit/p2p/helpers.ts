/** Shared helpers of the p2p specs: seeded nodes on loopback, topology, polling. */
import type { GossipsubOpts } from '@libp2p/gossipsub'
import type { ConnectionGater, Libp2p } from '@libp2p/interface'
import { createLibp2p } from 'libp2p'
import { Identity, keypairFromSeed } from '../../../src/identity/index.js'
import {
  PeerAccessList,
  PeerExchange,
  SwarmMembership,
  issueCredential,
  libp2pOptions,
  type ExchangeInit,
  type GossipKeeperInit,
  type Libp2pOptionsInit,
  type P2PServices,
  type SwarmDescriptor
} from '../../../src/p2p/index.js'

export type TestNode = Libp2p<P2PServices>

/** A deterministic identity from a small seed number. */
export function identityOf(seed: number): Identity {
  const bytes = new Uint8Array(32)
  bytes.fill(seed & 0xff)
  bytes[0] = 0x5e
  return Identity.fromKeypair(keypairFromSeed(bytes))
}

/** Gossipsub settings for fast tests: 100 ms heartbeats. */
export const FAST_GOSSIP: Partial<GossipsubOpts> = { heartbeatInterval: 100 }

/** A started libp2p node on 127.0.0.1 with Shoal's options. */
export async function startNode(
  identity: Identity,
  opts: {
    gossip?: Partial<GossipsubOpts>
    connectionGater?: ConnectionGater
    keeper?: GossipKeeperInit
    relay?: Libp2pOptionsInit['relay']
  } = {}
): Promise<TestNode> {
  const init: Libp2pOptionsInit = {
    privateKey: identity.libp2pPrivateKey,
    gossip: { ...FAST_GOSSIP, ...opts.gossip }
  }
  if (opts.keeper !== undefined) init.gossipKeeper = opts.keeper
  if (opts.relay !== undefined) init.relay = opts.relay
  if (opts.connectionGater !== undefined) init.connectionGater = opts.connectionGater
  return createLibp2p(libp2pOptions(init))
}

/** Dials `b` from `a` on its first listen address. */
export async function connect(a: TestNode, b: TestNode): Promise<void> {
  const addr = b.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('node has no listen address')
  await a.dial(addr)
}

/** Polls `predicate` every 20 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5_000,
  what = 'condition'
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Sleeps `ms`. */
export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms))
}

/** Gossipsub internals the tests inspect (public on the class, absent from its interface). */
interface GossipSubInternals {
  getScore(peerId: string): number
  getMeshPeers(topic: string): string[]
}

export function internals(node: TestNode): GossipSubInternals {
  return node.services.pubsub as unknown as GossipSubInternals
}

/** The gossipsub peer score `node` gives `peer`. */
export function scoreOf(node: TestNode, peer: TestNode): number {
  return internals(node).getScore(peer.peerId.toString())
}

/** True when every node's mesh for `topic` holds each of its expected neighbours. */
export function meshHas(node: TestNode, topic: string, neighbours: TestNode[]): boolean {
  const mesh = new Set(internals(node).getMeshPeers(topic))
  return neighbours.every((n) => mesh.has(n.peerId.toString()))
}

/**
 * Whether `node`'s gossipsub has its own stream open to `peer`. Seeing `peer` among a topic's
 * subscribers is not enough to publish to it: that comes over `peer`'s stream, and a message
 * published before `node`'s own stream is open never reaches `peer` (seen under load).
 */
export function canSend(node: TestNode, peer: TestNode): boolean {
  const ps = node.services.pubsub as unknown as { streamsOutbound: Map<string, unknown> }
  return ps.streamsOutbound.has(peer.peerId.toString())
}

/** Stops all nodes, ignoring errors. */
export async function stopAll(nodes: Array<{ stop(): Promise<void> | void } | undefined>): Promise<void> {
  await Promise.all(nodes.map(async (n) => n?.stop()).map(async (p) => p.catch(() => {})))
}

/** A member of a test's private swarm: a node behind its access list, its membership and peer exchange. */
export interface TestMember {
  node: TestNode
  access: PeerAccessList
  membership: SwarmMembership
  exchange: PeerExchange
}

/**
 * Starts a member of `swarm` (credential from `founder`) with peer exchange (`init` over
 * on-demand defaults) and adds its parts to `started`, for the spec's `after` to stop.
 * `relay`: its circuit relay options (a member relay: `{ serve: true, unlimited: true }`).
 */
export async function startMember(
  ctx: { swarm: SwarmDescriptor; founder: Identity; started: Array<{ stop(): Promise<void> | void }> },
  seed: number,
  init: ExchangeInit = {},
  relay?: Libp2pOptionsInit['relay']
): Promise<TestMember> {
  const identity = identityOf(seed)
  const access = new PeerAccessList()
  const node = await startNode(identity, { connectionGater: access.gater, ...(relay ? { relay } : {}) })
  const credential = await issueCredential(ctx.founder, ctx.swarm, identity.did, { expiresIn: 3600 })
  const membership = new SwarmMembership(
    { node, access },
    { swarm: ctx.swarm, credential, handshakeTimeoutMs: 2_000 }
  )
  await membership.start()
  const exchange = new PeerExchange({ node, members: membership }, { intervalMs: 0, rejoinMs: 0, ...init })
  await exchange.start()
  ctx.started.push(exchange, membership, node)
  return { node, access, membership, exchange }
}
