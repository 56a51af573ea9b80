/**
 * The p2p layer: libp2p 3 options (TCP, noise, yamux, identify, ping, bootstrap/mDNS,
 * gossipsub with StrictSign), typed and validated gossip on Shoal's topics, and private
 * swarms (founder-signed membership credentials, a handshake on every connection, a
 * connection gater and gossip validators that refuse non-members). See docs/p2p.md.
 *
 * @example
 * ```ts
 * import { createLibp2p } from 'libp2p'
 * import { Identity, generateKeypair } from '../identity/index.js'
 * import {
 *   createSwarm, issueCredential, libp2pOptions, PeerAccessList, SwarmMembership, GossipService, swarmTopics
 * } from '../p2p/index.js'
 *
 * const { swarm, founder } = createSwarm({ name: 'mnist', private: true })
 * const me = Identity.fromKeypair(generateKeypair())
 * const credential = await issueCredential(founder, swarm, me.did)
 *
 * const access = new PeerAccessList()
 * const node = await createLibp2p(libp2pOptions({ privateKey: me.libp2pPrivateKey, connectionGater: access.gater }))
 * const membership = new SwarmMembership({ node, access }, { swarm, credential })
 * await membership.start()
 *
 * const topics = swarmTopics(swarm.id)
 * const gossip = new GossipService({ pubsub: node.services.pubsub, access: membership }, { topics: [topics.jobs] })
 * gossip.start()
 * gossip.subscribe(topics.jobs, (job, { did }) => { void job; void did })
 * await gossip.publish(topics.jobs, { type: 'announce', jobId: 'mnist-1' })
 * ```
 */
export {
  libp2pOptions,
  gossipOptions,
  fastMessageId,
  gossipRejectionTap,
  GossipRejectionTap,
  type P2PServices,
  type RawGossipMessage,
  type Libp2pOptionsInit,
  type GossipsubPrevalidationError,
  type PrevalidationRejectListener
} from './libp2p.js'
export {
  GossipService,
  type GossipComponents,
  type GossipInit,
  type GossipAccess,
  type AccessDecision,
  type GossipHandler,
  type GossipMeta,
  type GossipRejectReason,
  type TopicStats
} from './gossip.js'
export {
  GossipKeeper,
  gossipKeeper,
  type GossipKeeperComponents,
  type GossipKeeperInit,
  type GossipKeeperStats
} from './keeper.js'
export {
  Liveness,
  liveness,
  type LivenessComponents,
  type LivenessInit,
  type LivenessStats
} from './liveness.js'
export {
  topicSpec,
  swarmTopics,
  EnvelopeSchema,
  DidSchema,
  CidSchema,
  JwtSchema,
  JobIdSchema,
  JobMessageSchema,
  UpdateMessageSchema,
  ReceiptMessageSchema,
  ConsentMessageSchema,
  type TopicSpec,
  type SwarmTopics,
  type Envelope,
  type JobMessage,
  type UpdateMessage,
  type ReceiptMessage,
  type ConsentMessage
} from './messages.js'
export {
  createSwarm,
  swarmIdFromFounders,
  parseSwarmDescriptor,
  issueCredential,
  verifyCredential,
  type SwarmDescriptor,
  type VerifiedCredential,
  type VerifyCredentialOptions
} from './swarm.js'
export {
  PeerAccessList,
  SwarmMembership,
  type MembershipNode,
  type MembershipComponents,
  type MembershipInit,
  type MembershipEventDetail,
  type AllowedPeer,
  type DeniedPeer
} from './membership.js'
export {
  MembershipError,
  GossipError,
  type MembershipErrorCode,
  type MembershipReason,
  type GossipErrorCode
} from './errors.js'
export {
  jobsTopic,
  jobUpdatesTopic,
  receiptsTopic,
  consentTopic,
  MEMBERSHIP_PROTOCOL,
  PEER_EXCHANGE_PROTOCOL,
  RECEIPT_SYNC_PROTOCOL,
  MAX_GOSSIP_MESSAGE_BYTES,
  TOPIC_MAX_BYTES
} from './constants.js'
export {
  PeerExchange,
  parseExchangeAnswer,
  type ExchangeNode,
  type ExchangeMembers,
  type ExchangeComponents,
  type ExchangeInit,
  type ExchangedPeer,
  type ExchangeStats
} from './exchange.js'
export {
  ItemSync,
  SyncFrameError,
  groupDigest,
  type SyncNode,
  type SyncMembers,
  type GroupDigest,
  type ItemSource,
  type SyncComponents,
  type ItemSyncInit,
  type ItemSyncStats,
  type SyncResult,
  type SyncFrameReason
} from './sync.js'
export { PeerReach, type ReachComponents, type ReachNode, type ReachInit, type ReachStats } from './reach.js'
export {
  addressScope,
  ipScope,
  hostOf,
  isRelayed,
  dialableFrom,
  filterDialable,
  advertisable,
  addressGater,
  parseAddrs,
  type AddressScope,
  type DialPolicy
} from './addresses.js'
export * as p2pConstants from './constants.js'
export { membersOnlyDHT, dhtState, type DhtAdmission, type DhtGuardStats } from './dht.js'
