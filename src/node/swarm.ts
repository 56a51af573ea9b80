/**
 * The node's swarm: which swarm it belongs to (`$SHOAL_HOME/swarm.json`), the founders' key of
 * swarms it created (`keystore/swarms/<id>/`), invites, and the membership service that enforces
 * a private swarm (credential handshake, connection gater, gossip validators).
 *
 * An invite is `shoal-invite:` + base64url(JSON { v, swarm, bootstrap, credential }): everything
 * a volunteer needs to join with one command.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { ShoalError, type ErrorCategory, logger, type Logger } from '../common/index.js'
import { Keystore, didFromPeerId, peerIdFromDid, type Identity } from '../identity/index.js'
import {
  type PeerAccessList,
  GossipService,
  ItemSync,
  PeerExchange,
  PeerReach,
  SwarmMembership,
  createSwarm,
  dhtState,
  issueCredential,
  parseSwarmDescriptor,
  swarmTopics,
  verifyCredential,
  type AccessDecision,
  type DhtGuardStats,
  type ExchangeInit,
  type GossipAccess,
  type ItemSource,
  type ItemSyncInit,
  type ItemSyncStats,
  type P2PServices,
  type SwarmDescriptor,
  type SwarmTopics
} from '../p2p/index.js'
import type { ShoalHelia } from '../storage/index.js'
import { writeFileAtomic, type Repo } from './repo/index.js'

const log = logger('shoal:node:swarm')

export const INVITE_PREFIX = 'shoal-invite:'

/** How long a member removed by governance stays denied at the gater (100 years). */
const REVOKED_TTL_MS = 100 * 365 * 24 * 3600 * 1000

/** Thrown for swarm operations that cannot proceed (not in a swarm, not a founder, bad invite). */
export class SwarmError extends ShoalError<
  'NOT_IN_SWARM' | 'NOT_A_FOUNDER' | 'INVITE_INVALID' | 'ALREADY_IN_SWARM' | 'INVITE_REFUSED',
  Record<string, unknown>
> {
  static override readonly categories: Record<SwarmError['code'], ErrorCategory> = {
    NOT_IN_SWARM: 'refused',
    NOT_A_FOUNDER: 'refused',
    INVITE_INVALID: 'usage',
    ALREADY_IN_SWARM: 'refused',
    INVITE_REFUSED: 'refused'
  }
}

export interface Invite {
  v: 1
  swarm: SwarmDescriptor
  bootstrap: string[]
  credential: string
}

interface SwarmFile {
  swarm: SwarmDescriptor
  credential: string
  bootstrap: string[]
}

export function encodeInvite(invite: Invite): string {
  return INVITE_PREFIX + Buffer.from(JSON.stringify(invite)).toString('base64url')
}

export function decodeInvite(text: string): Invite {
  const bad = (reason: string): SwarmError =>
    new SwarmError('INVITE_INVALID', `not a Shoal invite: ${reason}`, { reason })
  const t = text.trim()
  if (!t.startsWith(INVITE_PREFIX)) throw bad(`it must start with ${INVITE_PREFIX}`)
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(t.slice(INVITE_PREFIX.length), 'base64url').toString('utf8'))
  } catch {
    throw bad('its payload is not base64url JSON')
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('its payload is not an object')
  const o = raw as Partial<Invite>
  if (o.v !== 1 || typeof o.credential !== 'string' || !Array.isArray(o.bootstrap))
    throw bad('missing fields')
  if (!o.bootstrap.every((a: unknown) => typeof a === 'string'))
    throw bad('bootstrap addresses must be strings')
  let swarm: SwarmDescriptor
  try {
    swarm = parseSwarmDescriptor(o.swarm)
  } catch (err) {
    throw bad((err as Error).message)
  }
  return { v: 1, swarm, bootstrap: [...o.bootstrap], credential: o.credential }
}

export interface SwarmComponents {
  /** The node\'s logger for this service (carries the node id); default: a module logger. */
  log?: Logger
  /**
   * Makes the node's logger for each component this service builds (carries the node id,
   * e.g. `(component) => logger(component, { node })`); default: their module loggers.
   */
  logger?: (component: string) => Logger
  repo: Repo
  identity: Identity
  helia: ShoalHelia<P2PServices>
  access: PeerAccessList
  passphrase?: string
  /** Peer-exchange options (`p2p.exchange` in the config). */
  exchange?: ExchangeInit
  /** The members-only DHT's refusal counters, when the node runs one (`p2p.dht`, private swarm). */
  dht?: DhtGuardStats
}

/** Swarm membership and gossip for one node. */
export class NodeSwarm implements GossipAccess {
  private readonly log: Logger
  readonly gossip: GossipService
  /** Reaches the announcer of a CID before a fetch (models announced by unconnected members). */
  readonly reach: PeerReach
  private readonly c: SwarmComponents
  private exchange: PeerExchange | undefined
  /** Anti-entropy services by name (src/p2p/sync.ts), rebuilt with each swarm this node enters. */
  private readonly syncs = new Map<string, { source: ItemSource; init: ItemSyncInit; service?: ItemSync }>()
  private state: SwarmFile | undefined
  private membership: SwarmMembership | undefined
  private readonly path: string
  private readonly listeners: Array<(topics: SwarmTopics) => void> = []
  /** Members removed by the swarm's governance (DID → reason): refused at the gater and in gossip. */
  private readonly revoked = new Map<string, string>()
  private inviteGuard: ((did: string) => string | undefined) | undefined

  constructor(components: SwarmComponents) {
    this.log = components.log ?? log
    this.c = components
    this.path = join(components.repo.home, 'swarm.json')
    this.gossip = new GossipService({
      pubsub: components.helia.libp2p.services.pubsub,
      access: this,
      log: components.logger?.('shoal:p2p:gossip')
    })
    this.reach = new PeerReach(
      { node: components.helia.libp2p, log: components.logger?.('shoal:p2p:reach') },
      // With a DHT (`p2p.dht`), models are found by provider too, and provided by who holds them.
      { findProviders: dhtState(components.helia.libp2p) !== undefined }
    )
  }

  /** Called with the swarm's topics whenever this node enters a swarm (at start or on join). */
  onEnter(listener: (topics: SwarmTopics) => void): void {
    this.listeners.push(listener)
    if (this.state !== undefined) listener(swarmTopics(this.state.swarm.id))
  }

  get swarm(): SwarmDescriptor | undefined {
    return this.state?.swarm
  }

  /** Topics of the current swarm. */
  topics(): SwarmTopics {
    if (this.state === undefined) {
      throw new SwarmError(
        'NOT_IN_SWARM',
        'this node is not in a swarm: create one or join with an invite',
        {}
      )
    }
    return swarmTopics(this.state.swarm.id)
  }

  // GossipAccess: a public swarm (or none) accepts everyone; a private one asks the membership.
  credential(): string | undefined {
    return this.state?.credential
  }

  async checkMessage(
    source: PeerId,
    author: PeerId,
    credential: string | undefined
  ): Promise<AccessDecision> {
    for (const peer of [author, source]) {
      const did = this.revoked.size > 0 ? peerDid(peer) : undefined
      if (did !== undefined && this.revoked.has(did))
        return { ok: false, reason: `${did} was removed from the swarm: ${this.revoked.get(did)}` }
    }
    if (this.membership === undefined) return { ok: true }
    return this.membership.checkMessage(source, author, credential)
  }

  /** The id of the swarm saved in `repo` (before a node starts), if any, and whether it is private. */
  static async saved(repo: Repo): Promise<{ id: string; private: boolean } | undefined> {
    try {
      const { swarm } = JSON.parse(await readFile(join(repo.home, 'swarm.json'), 'utf8')) as SwarmFile
      return { id: swarm.id, private: swarm.private }
    } catch {
      return undefined
    }
  }

  async start(): Promise<void> {
    this.gossip.start()
    let text: string | undefined
    try {
      text = await readFile(this.path, 'utf8')
    } catch {
      return
    }
    const saved = JSON.parse(text) as SwarmFile
    await this.enter({ ...saved, swarm: parseSwarmDescriptor(saved.swarm) })
  }

  async stop(): Promise<void> {
    await this.stopSyncs()
    await this.exchange?.stop()
    this.exchange = undefined
    await this.membership?.stop()
    this.membership = undefined
    this.gossip.stop()
  }

  private async enter(state: SwarmFile): Promise<void> {
    // Checks the credential names this node and was issued by a founder.
    await verifyCredential(state.credential, state.swarm, { subject: this.c.identity.did })
    await this.stopSyncs()
    await this.exchange?.stop()
    await this.membership?.stop()
    this.membership = undefined
    this.state = state
    if (state.swarm.private) {
      this.membership = new SwarmMembership(
        { node: this.c.helia.libp2p, access: this.c.access, log: this.c.logger?.('shoal:p2p:membership') },
        { swarm: state.swarm, credential: state.credential }
      )
      await this.membership.start()
    }
    // In a private swarm credentials keep Sybils out, not IP addresses: members sharing one NAT
    // must not be scored down by gossipsub's IP-colocation penalty (src/p2p/keeper.ts).
    this.c.helia.libp2p.services.gossipKeeper?.colocationPenalty(!state.swarm.private)
    // Members find each other beyond the invite's bootstrap (src/p2p/exchange.ts).
    this.exchange = new PeerExchange(
      {
        node: this.c.helia.libp2p,
        ...(this.membership ? { members: this.membership } : {}),
        log: this.c.logger?.('shoal:p2p:exchange')
      },
      // The invite's bootstrap addresses are where it starts again after losing every member.
      { ...this.c.exchange, seeds: state.bootstrap }
    )
    await this.exchange.start()
    for (const name of this.syncs.keys()) await this.startSync(name)
    for (const addr of state.bootstrap) {
      this.c.helia.libp2p.dial(multiaddr(addr)).catch((err: unknown) => {
        this.log.warn({ addr, err: (err as Error).message }, 'bootstrap dial failed')
      })
    }
    this.log.info({ swarm: state.swarm.id, private: state.swarm.private }, 'in swarm')
    const topics = swarmTopics(state.swarm.id)
    for (const l of this.listeners) l(topics)
  }

  /**
   * Keeps `source` in step with the swarm's members over `init.protocol` (anti-entropy,
   * src/p2p/sync.ts) while this node is in a swarm, from now on and in every swarm it enters.
   * Call {@link removeSync} before `source` stops.
   */
  async addSync(name: string, source: ItemSource, init: ItemSyncInit): Promise<void> {
    await this.removeSync(name)
    this.syncs.set(name, { source, init })
    if (this.state !== undefined) await this.startSync(name)
  }

  /** Stops and forgets the sync `name` (waits for what it has in flight). */
  async removeSync(name: string): Promise<void> {
    await this.syncs.get(name)?.service?.stop()
    this.syncs.delete(name)
  }

  /** The running sync `name`, for callers that want one now (`syncNow`, `syncWith`). */
  itemSync(name: string): ItemSync | undefined {
    return this.syncs.get(name)?.service
  }

  private async startSync(name: string): Promise<void> {
    const entry = this.syncs.get(name)
    if (entry === undefined) return
    await entry.service?.stop()
    entry.service = new ItemSync(
      {
        node: this.c.helia.libp2p,
        source: entry.source,
        ...(this.membership ? { members: this.membership } : {}),
        log: this.c.logger?.('shoal:p2p:sync')
      },
      entry.init
    )
    await entry.service.start()
  }

  private async stopSyncs(): Promise<void> {
    for (const entry of this.syncs.values()) {
      await entry.service?.stop()
      delete entry.service
    }
  }

  private syncStats(): Record<string, ItemSyncStats> | null {
    const out: Record<string, ItemSyncStats> = {}
    for (const [name, entry] of this.syncs) if (entry.service !== undefined) out[name] = entry.service.stats()
    return Object.keys(out).length > 0 ? out : null
  }

  private async save(state: SwarmFile): Promise<void> {
    await writeFileAtomic(this.path, JSON.stringify(state, null, 2) + '\n', 0o600)
  }

  private founderDir(id: string): string {
    return join(this.c.repo.keystoreDir, 'swarms', id)
  }

  /** Create a swarm with a new founders' key, and join it. */
  async create(init: { name: string; private: boolean }): Promise<SwarmDescriptor> {
    const { swarm, founder } = createSwarm(init)
    await Keystore.init(this.founderDir(swarm.id), {
      passphrase: this.c.passphrase,
      keypair: founderKeypair(founder)
    })
    const credential = await issueCredential(founder, swarm, this.c.identity.did)
    const state = { swarm, credential, bootstrap: [] }
    await this.enter(state)
    await this.save(state)
    return swarm
  }

  /** Issue an invite for `did` (founders only). */
  async invite(did: string, opts: { expiresIn?: number } = {}): Promise<string> {
    const swarm = this.topicsSwarm()
    const refused = this.inviteGuard?.(did)
    if (refused !== undefined) throw new SwarmError('INVITE_REFUSED', refused, { swarm: swarm.id, did })
    let founder: Identity
    try {
      founder = await Keystore.load(this.founderDir(swarm.id), { passphrase: this.c.passphrase })
    } catch {
      throw new SwarmError('NOT_A_FOUNDER', `this node holds no founders' key of swarm ${swarm.id}`, {
        swarm: swarm.id
      })
    }
    const credential = await issueCredential(founder, swarm, did, opts)
    // Listen addresses too: a public one is not advertised until AutoNAT has verified it.
    const bootstrap = this.c.helia.libp2p.services.netinfo.advertised()
    return encodeInvite({ v: 1, swarm, bootstrap, credential })
  }

  /** Join a swarm from an invite (replaces the current swarm). */
  async join(inviteText: string): Promise<SwarmDescriptor> {
    const invite = decodeInvite(inviteText)
    try {
      await verifyCredential(invite.credential, invite.swarm, { subject: this.c.identity.did })
    } catch (err) {
      throw new SwarmError(
        'INVITE_INVALID',
        `the invite's credential is not valid for this node: ${(err as Error).message}`,
        {
          reason: (err as ShoalError).code ?? 'invalid'
        }
      )
    }
    const state = { swarm: invite.swarm, credential: invite.credential, bootstrap: invite.bootstrap }
    await this.enter(state)
    await this.save(state)
    return invite.swarm
  }

  /** The DHT's routing-table size and, in a private swarm, what it refused; null without a DHT. */
  private dhtInfo(): Record<string, unknown> | null {
    const state = dhtState(this.c.helia.libp2p)
    return state === undefined ? null : { ...state, ...(this.c.dht ?? {}) }
  }

  info(): Record<string, unknown> {
    return {
      swarm: this.state?.swarm ?? null,
      enforced: this.membership !== undefined,
      exchange: this.exchange?.stats() ?? null,
      sync: this.syncStats(),
      reach: this.reach.stats(),
      gossipKeeper: this.c.helia.libp2p.services.gossipKeeper?.stats() ?? null,
      liveness: this.c.helia.libp2p.services.liveness?.stats() ?? null,
      dht: this.dhtInfo(),
      members: this.c.access.allowed().map((p) => ({ peerId: p.peerId, did: p.did })),
      refused: this.c.access.denied().map((p) => ({ peerId: p.peerId, reason: p.reason }))
    }
  }

  /**
   * Refuses the member `did` from now on (removed by the swarm's governance): its connections
   * are closed, the gater refuses it, and gossip it signs or forwards is rejected. Its
   * credential stays valid until its `exp` for nodes that do not know of the removal.
   */
  revoke(did: string, reason: string): void {
    this.revoked.set(did, reason)
    let peer: PeerId
    try {
      peer = peerIdFromDid(did)
    } catch {
      return
    }
    this.c.access.deny(peer, `removed: ${reason}`, REVOKED_TTL_MS)
    this.c.helia.libp2p.hangUp(peer).catch((err: unknown) => {
      this.log.debug({ did, err: (err as Error).message }, 'hang up of a removed member failed')
    })
    this.log.info({ did, reason }, 'member removed from the swarm: refused from now on')
  }

  /**
   * Who this node's founders' key may invite: `guard(did)` says why not (a governed swarm admits
   * by its members' votes, docs/governance.md), or undefined to allow.
   */
  setInviteGuard(guard: ((did: string) => string | undefined) | undefined): void {
    this.inviteGuard = guard
  }

  /** Whether `did` was removed by the swarm's governance. */
  isRevoked(did: string): boolean {
    return this.revoked.has(did)
  }

  /** The founders' key of the current swarm when this node holds it (it created the swarm). */
  async founderIdentity(): Promise<Identity | undefined> {
    const swarm = this.state?.swarm
    if (swarm === undefined) return undefined
    try {
      return await Keystore.load(this.founderDir(swarm.id), { passphrase: this.c.passphrase })
    } catch {
      return undefined
    }
  }

  /** Remembers that the member with `did` announced `cid`, so that fetching it dials that member. */
  noteAnnouncer(cid: string, did: string): void {
    try {
      this.reach.noteProvider(cid, peerIdFromDid(did))
    } catch {
      // not a did:key: nobody to dial
    }
  }

  isMember(peerId: PeerId): boolean | undefined {
    return this.membership?.isMember(peerId)
  }

  private topicsSwarm(): SwarmDescriptor {
    if (this.state === undefined) {
      throw new SwarmError(
        'NOT_IN_SWARM',
        'this node is not in a swarm: create one or join with an invite',
        {}
      )
    }
    return this.state.swarm
  }
}

function founderKeypair(founder: Identity): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const raw = founder.libp2pPrivateKey.raw
  return { secretKey: raw.subarray(0, 32), publicKey: founder.publicKey }
}

export function peerDid(peerId: PeerId): string | undefined {
  try {
    return didFromPeerId(peerId)
  } catch {
    return undefined
  }
}
