/**
 * Names, limits and defaults of the p2p layer: gossip topic names, per-topic size limits,
 * gossipsub tuning and peer-score parameters, and the membership handshake protocol.
 */

/** Version segment of every Shoal topic and protocol name. */
export const PROTOCOL_VERSION = '1'

/** Prefix of every Shoal gossip topic: `/shoal/1/<swarm>/…`. */
export const TOPIC_PREFIX = `/shoal/${PROTOCOL_VERSION}`

/** Job announcements of a swarm. */
export function jobsTopic(swarm: string): string {
  return `${TOPIC_PREFIX}/${checkSegment(swarm, 'swarm')}/jobs`
}

/** Model-update announcements (`{ job, round, weightsCid, receipt }`) of one job. */
export function jobUpdatesTopic(swarm: string, jobId: string): string {
  return `${TOPIC_PREFIX}/${checkSegment(swarm, 'swarm')}/job/${checkSegment(jobId, 'jobId')}/updates`
}

/** Signed training receipts of a swarm. */
export function receiptsTopic(swarm: string): string {
  return `${TOPIC_PREFIX}/${checkSegment(swarm, 'swarm')}/receipts`
}

/** Consent documents (grants and revocations) of a swarm. */
export function consentTopic(swarm: string): string {
  return `${TOPIC_PREFIX}/${checkSegment(swarm, 'swarm')}/consent`
}

/** A topic-name segment: 1–128 characters of `[A-Za-z0-9._:-]` (no `/`). */
const SEGMENT = /^[A-Za-z0-9._:-]{1,128}$/

function checkSegment(value: string, what: string): string {
  if (!SEGMENT.test(value)) {
    throw new RangeError(`${what} must match ${SEGMENT.source}, got ${JSON.stringify(value)}`)
  }
  return value
}

/** Hard upper bound of any gossip message (go-libp2p's default maximum message size). */
export const MAX_GOSSIP_MESSAGE_BYTES = 1_048_576

/** Default size limit of a topic that does not set its own. */
export const DEFAULT_TOPIC_MAX_BYTES = 16_384

/** Per-topic size limits (messages carry CIDs and small signed documents, never payloads). */
export const TOPIC_MAX_BYTES = {
  jobs: 16_384,
  updates: 16_384,
  receipts: 32_768,
  consent: 32_768
} as const

/** Default listen address: loopback, OS-assigned port. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']

/** Gossipsub heartbeat (ms); gossipsub's own default. Tests use ~100 ms. */
export const DEFAULT_HEARTBEAT_MS = 1_000

/**
 * Peer-score parameters of every Shoal topic (see the gossipsub v1.1 spec, "Peer Scoring").
 * Shoal topics carry little traffic, so the mesh-delivery penalties (P3, P3b) are off: they
 * would punish honest peers on quiet topics. A rejected message (P4) costs its sender
 * `invalidMessageDeliveriesWeight × n²` (n = its decayed count of invalid messages), so one
 * reject puts the sender below 0, three put it under the graylist threshold (−80).
 */
export const TOPIC_SCORE_PARAMS = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 300,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 10,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 100,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5_000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.99
} as const

/**
 * IP addresses exempt from gossipsub's IP-colocation penalty. Loopback, so that a local swarm
 * of many processes on one machine does not score itself down.
 */
export const IP_COLOCATION_WHITELIST = ['127.0.0.1', '::1']

/** The membership handshake protocol of private swarms. */
export const MEMBERSHIP_PROTOCOL = `/shoal/${PROTOCOL_VERSION}/membership/1.0.0`

/** Longest credential frame accepted in the handshake (a JWT of a few hundred bytes). */
export const MAX_CREDENTIAL_BYTES = 4_096

/** Time a peer has to complete the membership handshake after a connection opens (ms). */
export const HANDSHAKE_TIMEOUT_MS = 5_000

/** How long a refused peer stays in the deny-set (ms). */
export const DENY_TTL_MS = 10 * 60_000

/**
 * How long a peer whose handshake failed for a network reason (a reset stream, no answer in
 * time) stays denied: long enough to stop a tight loop of attempts, short enough that a member
 * on a flaky link or across a healing partition is not shut out for {@link DENY_TTL_MS}.
 */
export const DENY_TRANSIENT_TTL_MS = 15_000

/** How often verified peers are checked for expired credentials (ms). */
export const MEMBERSHIP_SWEEP_MS = 10_000

/** Default lifetime of a membership credential (s): 30 days. */
export const CREDENTIAL_TTL_SECONDS = 30 * 24 * 3600

/** Most credentials of message authors remembered by the gossip membership check. */
export const MAX_KNOWN_AUTHORS = 4_096

/** Domain separator of swarm-id derivation. */
export const SWARM_ID_DOMAIN = 'shoal/swarm-id/v1'

/** Bytes of the SHA-256 digest kept in a swarm id (base32, 16 bytes → 26 characters). */
export const SWARM_ID_BYTES = 16

/**
 * Read buffer of each yamux stream (the library's default is 4 MiB). Bitswap sends several
 * wanted blocks in one message: four 1 MiB blocks plus framing is just over 4 MiB, and a
 * receiver whose main thread is briefly slow to read then hits `StreamBufferError`, the stream
 * is reset and the blocks are lost (seen as permanent stalls in 5 of 65 fetches of 256 MiB in
 * scripts/bench-fetch.ts; none in 44 with 32 MiB).
 */
export const STREAM_READ_BUFFER_BYTES = 32 * 1024 * 1024

/** Peer exchange among swarm members (src/p2p/exchange.ts). */
export const PEER_EXCHANGE_PROTOCOL = `/shoal/${PROTOCOL_VERSION}/peer-exchange/1.0.0`

/** Most peers in one peer-exchange answer. */
export const MAX_EXCHANGE_PEERS = 64

/** Most addresses per peer in one peer-exchange answer. */
export const MAX_EXCHANGE_ADDRS = 16

/** Largest peer-exchange answer (bytes). */
export const MAX_EXCHANGE_BYTES = 65_536

/** Stop dialing discovered members at this many open connections. */
export const EXCHANGE_MAX_PEERS = 32

/** How often one random member is asked for its peers again (ms). */
export const EXCHANGE_INTERVAL_MS = 60_000

/** Time for one exchange or one dial of a discovered member (ms). */
export const EXCHANGE_TIMEOUT_MS = 10_000

/** A member that could not be dialed is not tried again for this long (ms). */
export const EXCHANGE_DIAL_BACKOFF_MS = 30_000

/** How soon a node with no member connected dials its known members and seeds again (ms; doubles up to EXCHANGE_INTERVAL_MS). */
export const EXCHANGE_REJOIN_MS = 5_000

/** Members remembered as places to rejoin from. */
export const EXCHANGE_MAX_KNOWN = 64

/** Lost members redialed at most per rejoin tick (in parallel). */
export const EXCHANGE_REDIAL_PER_TICK = 4

/** The circuit relay v2 HOP protocol (a peer that lists it is a relay). */
export const RELAY_HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/** Time to reach the announcer of a model before its fetch (ms). */
export const REACH_TIMEOUT_MS = 10_000

/** Most CID → announcer hints remembered for fetches. */
export const MAX_PROVIDER_HINTS = 4_096

/** Reservations a member relay holds at once (libp2p's default is 15). */
export const RELAY_MAX_RESERVATIONS = 128

/** Anti-entropy of receipts among swarm members (src/p2p/sync.ts; the node names it). */
export const RECEIPT_SYNC_PROTOCOL = `/shoal/${PROTOCOL_VERSION}/receipt-sync/1.0.0`

/** Most groups in one sync request's digests (an asker with more sends a random subset). */
export const MAX_SYNC_GROUPS = 4_096

/** Longest group key (e.g. an issuer's did:key) in a sync frame (visible ASCII). */
export const MAX_SYNC_GROUP_CHARS = 256

/** Longest item id (e.g. a receipt's hash) in a sync frame (visible ASCII). */
export const MAX_SYNC_ID_CHARS = 128

/** Most item ids in one sync answer, over all groups (a longer list is sampled at random). */
export const MAX_SYNC_IDS = 8_192

/** Most items asked for (and sent) in one sync pass. */
export const MAX_SYNC_WANT = 256

/** Longest single item in a sync answer (characters; a receipt JWT is a few KiB). */
export const MAX_SYNC_ITEM_CHARS = 65_536

/** Largest sync request (the asker's digests) (bytes). */
export const MAX_SYNC_DIGESTS_BYTES = 1_048_576

/** Largest sync id list (bytes). */
export const MAX_SYNC_IDS_BYTES = 1_048_576

/** Largest sync want list (bytes). */
export const MAX_SYNC_WANT_BYTES = 65_536

/** Largest sync items frame (bytes); the responder sends fewer items rather than more bytes. */
export const MAX_SYNC_ITEMS_BYTES = 2 * 1_048_576

/** How often one random connected member is synced with (ms). */
export const SYNC_INTERVAL_MS = 30_000

/** Time for one sync pass (one exchange on one stream) (ms). */
export const SYNC_TIMEOUT_MS = 10_000

/** Most passes of one sync with one peer (each brings up to {@link MAX_SYNC_WANT} items). */
export const SYNC_MAX_PASSES = 16

/** How often the gossip keeper checks that gossipsub has a stream to every connected peer (ms). */
export const GOSSIP_KEEPER_INTERVAL_MS = 5_000

/** How long after a connection closes the gossip keeper checks its peer (ms). */
export const GOSSIP_KEEPER_CLOSE_DELAY_MS = 1_000

/** The ping protocol (libp2p's, `@libp2p/ping`). */
export const PING_PROTOCOL = '/ipfs/ping/1.0.0'

/** How often the connection monitor (`liveness.ts`) pings each connection (ms; libp2p's default). */
export const PING_INTERVAL_MS = 10_000

/**
 * How long a ping may go unanswered before the connection counts as dead and is aborted (ms;
 * libp2p's own monitor adapts from a 5 s floor). A swarm moves models in bursts, often through
 * one member relay: a ping queued behind megabytes of models on a 20 Mbit/s link, or answered by
 * a daemon busy on a loaded machine, took over 5 s, and libp2p aborted the connection — and every
 * transfer on it (bench:wan N = 16: 291 connections aborted in a job's first minute). A dead
 * connection is still closed, within `PING_INTERVAL_MS` + this.
 */
export const PING_TIMEOUT_MS = 20_000

/** How long the ping *handler* answers an inbound ping stream (ms): longer than a pinger waits. */
export const PING_HANDLER_TIMEOUT_MS = 30_000

/**
 * Failed pings in a row — reset or closed by the peer, not unanswered — that abort a connection
 * (liveness.ts): one such failure proves the peer was there.
 */
export const LIVENESS_MAX_FAILURES = 3
