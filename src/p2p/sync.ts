/**
 * Anti-entropy of signed items among the members of a swarm (`ItemSync`; receipts use
 * `/shoal/1/receipt-sync/1.0.0`, named by the node).
 *
 * Gossip does not deliver old messages again: a node that was partitioned away, offline, or
 * joined late never gets what was published meanwhile. `ItemSync` brings two members' item
 * sets to their union. Items are strings (e.g. receipt JWTs) with an id (e.g. the receipt's
 * hash), grouped by a key (e.g. the issuer's DID); the service only moves them, the
 * {@link ItemSource} stores them and decides what is valid (`accept` may refuse items).
 *
 * One pass is one exchange on one stream, length-prefixed JSON frames:
 *
 * ```
 * asker → { v: 1, digests: { [group]: { n, h } } }   its own groups (h = sha-256 over sorted ids)
 *       ← { ids: { [group]: string[] } }             responder's ids of the groups that differ (≥ 1 each)
 * asker → { want: string[] }                         the ids it lacks (≤ 256)
 *       ← { items: string[] }                        those items (≤ 256, ≤ 2 MiB)
 * ```
 *
 * The asker hands the items to `source.accept(items, peer)` and runs another pass while one
 * brings new items and more are missing, at most {@link SYNC_MAX_PASSES}. Every frame has a
 * byte cap and a zod schema; a frame that breaks them is refused ({@link SyncFrameError},
 * counted by reason in `stats().malformed`) and the stream reset, and the service keeps
 * serving. A sync runs with each member once it is verified (a private swarm) or once a peer
 * that speaks the protocol is identified (a public one), with one random connected member every
 * `intervalMs`, and when a caller asks (`syncWith`, `syncNow`). In a private swarm the handler
 * answers verified members only (it waits for a running handshake); anyone else gets a reset
 * stream and is counted as `refused`.
 */
import { createHash } from 'node:crypto'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { z } from 'zod'
import { logger, type Logger } from '../common/index.js'
import {
  MAX_SYNC_DIGESTS_BYTES,
  MAX_SYNC_GROUP_CHARS,
  MAX_SYNC_GROUPS,
  MAX_SYNC_ID_CHARS,
  MAX_SYNC_IDS,
  MAX_SYNC_IDS_BYTES,
  MAX_SYNC_ITEM_CHARS,
  MAX_SYNC_ITEMS_BYTES,
  MAX_SYNC_WANT,
  MAX_SYNC_WANT_BYTES,
  SYNC_INTERVAL_MS,
  SYNC_MAX_PASSES,
  SYNC_TIMEOUT_MS
} from './constants.js'
import type { ExchangeMembers } from './exchange.js'

const log = logger('shoal:p2p:sync')
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The parts of a libp2p node that {@link ItemSync} uses. */
export type SyncNode = Pick<
  Libp2p,
  | 'peerId'
  | 'handle'
  | 'unhandle'
  | 'getConnections'
  | 'dialProtocol'
  | 'peerStore'
  | 'addEventListener'
  | 'removeEventListener'
>

/** Who may sync: a private swarm's `SwarmMembership` (the same interface as peer exchange's). */
export type SyncMembers = ExchangeMembers

/** A group's digest: how many items it has and the hex SHA-256 of its sorted ids ({@link groupDigest}). */
export interface GroupDigest {
  n: number
  h: string
}

/** The set of items {@link ItemSync} keeps in step with the members' sets. */
export interface ItemSource {
  /** A digest ({@link groupDigest}) of each group this node holds. */
  digests(): Promise<Map<string, GroupDigest>>
  /** The ids this node holds in `group` (none for an unknown group). */
  ids(group: string): Promise<string[]>
  /** The items of those `ids` that this node holds (any order; unknown ids are skipped). */
  get(ids: readonly string[]): Promise<string[]>
  /** Checks and stores items received from `from`; resolves with how many were new and kept. */
  accept(items: string[], from: PeerId): Promise<number>
  /** The id of an item; when given, an answer with items nobody asked for is refused. */
  idOf?(item: string): string
}

/** What {@link ItemSync} needs. */
export interface SyncComponents {
  node: SyncNode
  source: ItemSource
  /** The membership of a private swarm; absent in a public one (every peer may sync). */
  members?: SyncMembers
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of {@link ItemSync}; defaults in constants.ts. */
export interface ItemSyncInit {
  /** The protocol id, e.g. `/shoal/1/receipt-sync/1.0.0` (one per kind of item). */
  protocol: string
  /** How often one random connected member is synced with (ms, default 30 s; 0 = never). */
  intervalMs?: number
  /** Time for one pass (ms, default 10 s). */
  timeoutMs?: number
  /** Most passes of one sync (default 16). */
  maxPasses?: number
  /** Most ids asked for in one pass (default and at most 256). */
  maxWant?: number
}

/** Counters of {@link ItemSync}. */
export interface ItemSyncStats {
  /** Passes this node started that completed. */
  syncs: number
  /** Passes this node started that failed (unreachable, refused, timed out, a bad answer). */
  failed: number
  /** Passes this node answered in full. */
  served: number
  /** Requests refused: the asker is not a verified member. */
  refused: number
  /** Items received from peers, and of them those the source kept as new. */
  received: number
  accepted: number
  /** Items sent to peers. */
  sent: number
  /** Frames refused (either direction), by reason ({@link SyncFrameReason}). */
  malformed: Record<string, number>
}

/** The outcome of {@link ItemSync.syncWith}. */
export interface SyncResult {
  peer: string
  /** False when a pass failed (see the log and the counters). */
  ok: boolean
  passes: number
  received: number
  accepted: number
}

/** Why a frame was refused. */
export type SyncFrameReason = 'oversized' | 'not-json' | 'schema' | 'unrequested'

/** Thrown (and caught, counted, logged) when a sync frame is not what the protocol says. */
export class SyncFrameError extends Error {
  static readonly code = 'SYNC_MALFORMED'
  readonly code = SyncFrameError.code

  constructor(
    readonly reason: SyncFrameReason,
    message: string
  ) {
    super(message)
    this.name = 'SyncFrameError'
  }
}

/** The digest of a group: its number of distinct ids and the hex SHA-256 of them sorted, `\n`-joined. */
export function groupDigest(ids: Iterable<string>): GroupDigest {
  const sorted = [...new Set(ids)].sort()
  return { n: sorted.length, h: createHash('sha256').update(sorted.join('\n')).digest('hex') }
}

// Group keys and ids are visible ASCII (no separators, no newline: digests join ids with `\n`).
const GroupKey = z.string().regex(new RegExp(`^[\\x21-\\x7e]{1,${MAX_SYNC_GROUP_CHARS}}$`), 'not a group key')
const ItemId = z.string().regex(new RegExp(`^[\\x21-\\x7e]{1,${MAX_SYNC_ID_CHARS}}$`), 'not an item id')

const DigestsFrame = z.object({
  v: z.literal(1),
  digests: z
    .record(
      GroupKey,
      z.object({
        n: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        h: z.string().regex(/^[0-9a-f]{64}$/, 'not a hex SHA-256')
      })
    )
    .refine((d) => Object.keys(d).length <= MAX_SYNC_GROUPS, `more than ${MAX_SYNC_GROUPS} groups`)
})
// A group is listed with at least one id (`differing` never lists an empty one): the asker looks
// up each listed group in its store, so empty groups would let ~7 bytes of frame cost it one
// lookup each (150,000 in one frame; found by test/unit/fuzz/sync.spec.ts).
const IdsFrame = z.object({
  ids: z
    .record(GroupKey, z.array(ItemId).min(1).max(MAX_SYNC_IDS))
    .refine(
      (ids) => Object.values(ids).reduce((n, l) => n + l.length, 0) <= MAX_SYNC_IDS,
      `more than ${MAX_SYNC_IDS} ids`
    )
})
const WantFrame = z.object({ want: z.array(ItemId).max(MAX_SYNC_WANT) })
const ItemsFrame = z.object({
  items: z.array(z.string().min(1).max(MAX_SYNC_ITEM_CHARS)).max(MAX_SYNC_WANT)
})

/** Reads one frame of at most `maxBytes` and checks it against `schema`; throws {@link SyncFrameError}. */
async function readFrame<T>(
  lp: LengthPrefixedStream,
  schema: z.ZodType<T>,
  maxBytes: number,
  what: string,
  signal: AbortSignal
): Promise<T> {
  let bytes: Uint8Array
  try {
    bytes = (await lp.read({ signal })).subarray()
  } catch (err) {
    const name = (err as Error).name
    if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError')
      throw new SyncFrameError('oversized', `${what} frame over the stream's limit`)
    throw err
  }
  return parseFrame(bytes, schema, maxBytes, what)
}

/** Parses one frame; throws {@link SyncFrameError}. */
function parseFrame<T>(bytes: Uint8Array, schema: z.ZodType<T>, maxBytes: number, what: string): T {
  if (bytes.byteLength > maxBytes)
    throw new SyncFrameError('oversized', `${what} frame of ${bytes.byteLength} bytes > ${maxBytes}`)
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new SyncFrameError('not-json', `${what} frame is not UTF-8 JSON`)
  }
  const r = schema.safeParse(value)
  if (!r.success) {
    const issue = r.error.issues[0]
    throw new SyncFrameError(
      'schema',
      `${what} frame: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`
    )
  }
  return r.data
}

const frame = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))

/** A copy of `list` in random order (Fisher–Yates). */
function shuffled<T>(list: readonly T[]): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** Anti-entropy of an {@link ItemSource} with the swarm's members: see the module doc. */
export class ItemSync {
  private readonly log: Logger
  private readonly node: SyncNode
  private readonly source: ItemSource
  private readonly members: SyncMembers | undefined
  private readonly protocol: string
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly maxPasses: number
  private readonly maxWant: number
  private readonly counters: ItemSyncStats = {
    syncs: 0,
    failed: 0,
    served: 0,
    refused: 0,
    received: 0,
    accepted: 0,
    sent: 0,
    malformed: {}
  }
  /** The sync running with each peer: a second request for the same peer joins it. */
  private readonly running = new Map<string, Promise<SyncResult>>()
  /** Everything in flight (syncs and answers), awaited by `stop()`. */
  private readonly tasks = new Set<Promise<unknown>>()
  private timer: ReturnType<typeof setInterval> | undefined
  private controller = new AbortController()
  private started = false

  constructor(components: SyncComponents, init: ItemSyncInit) {
    this.log = components.log ?? log
    this.node = components.node
    this.source = components.source
    this.members = components.members
    this.protocol = init.protocol
    this.intervalMs = init.intervalMs ?? SYNC_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? SYNC_TIMEOUT_MS
    this.maxPasses = Math.max(1, init.maxPasses ?? SYNC_MAX_PASSES)
    this.maxWant = Math.min(MAX_SYNC_WANT, Math.max(1, init.maxWant ?? MAX_SYNC_WANT))
    this.onVerified = this.onVerified.bind(this)
    this.onIdentify = this.onIdentify.bind(this)
    this.handleStream = this.handleStream.bind(this)
  }

  /** Registers the protocol and syncs with the members connected now. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.controller = new AbortController()
    await this.node.handle(this.protocol, this.handleStream, {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
      runOnLimitedConnection: true
    })
    if (this.members !== undefined) this.members.addEventListener('verified', this.onVerified)
    else this.node.addEventListener('peer:identify', this.onIdentify)
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => void this.syncRandom(), this.intervalMs)
      this.timer.unref?.()
    }
    for (const peer of await this.candidates()) this.syncSoon(peer)
  }

  /** Stops syncing, unregisters the protocol and waits for what was in flight. Idempotent. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.controller.abort()
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.members?.removeEventListener('verified', this.onVerified)
    this.node.removeEventListener('peer:identify', this.onIdentify)
    await this.node.unhandle(this.protocol).catch(() => {})
    await Promise.allSettled([...this.tasks])
  }

  /** A copy of the counters. */
  stats(): ItemSyncStats {
    return { ...this.counters, malformed: { ...this.counters.malformed } }
  }

  /**
   * Brings the items `peer` holds and this node lacks: passes while they bring new items and
   * more are missing. Joins a sync already running with `peer`. Never throws.
   */
  async syncWith(peer: PeerId): Promise<SyncResult> {
    const key = peer.toString()
    const running = this.running.get(key)
    if (running !== undefined) return running
    const p = this.track(this.passes(peer)).finally(() => this.running.delete(key))
    this.running.set(key, p)
    return p
  }

  /** Syncs with every connected member at once. Never throws. */
  async syncNow(): Promise<SyncResult[]> {
    return Promise.all((await this.candidates()).map(async (p) => this.syncWith(p)))
  }

  private async passes(peer: PeerId): Promise<SyncResult> {
    const result: SyncResult = { peer: peer.toString(), ok: true, passes: 0, received: 0, accepted: 0 }
    while (this.started && result.passes < this.maxPasses) {
      const pass = await this.pass(peer)
      result.passes++
      if (pass === undefined) {
        result.ok = false
        break
      }
      result.received += pass.received
      result.accepted += pass.accepted
      if (pass.accepted === 0 || !pass.more) break
    }
    if (result.accepted > 0) this.log.debug({ ...result }, 'items synced')
    return result
  }

  /** One exchange; undefined when it failed (counted, logged). */
  private async pass(
    peer: PeerId
  ): Promise<{ received: number; accepted: number; more: boolean } | undefined> {
    if (!this.started) return undefined
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)])
    let stream: Stream | undefined
    try {
      stream = await this.node.dialProtocol(peer, this.protocol, { signal, runOnLimitedConnection: true })
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_ITEMS_BYTES })
      await lp.write(frame({ v: 1, digests: await this.ownDigests() }), { signal })
      const { ids } = await readFrame(lp, IdsFrame, MAX_SYNC_IDS_BYTES, 'ids', signal)
      const lacking = new Set<string>()
      let listed = 0
      for (const [group, list] of Object.entries(ids)) {
        listed += list.length
        const have = new Set(await this.source.ids(group))
        for (const id of list) if (!have.has(id)) lacking.add(id)
      }
      const want = [...lacking].slice(0, this.maxWant)
      await lp.write(frame({ want }), { signal })
      const { items } = await readFrame(lp, ItemsFrame, MAX_SYNC_ITEMS_BYTES, 'items', signal)
      const idOf = this.source.idOf?.bind(this.source)
      if (idOf !== undefined) {
        const asked = new Set(want)
        if (items.some((item) => !asked.has(idOf(item))))
          throw new SyncFrameError('unrequested', 'items frame has an item nobody asked for')
      }
      await stream.close({ signal }).catch(() => stream?.abort(new Error('closing')))
      this.counters.syncs++
      this.counters.received += items.length
      const accepted = items.length > 0 ? await this.source.accept(items, peer) : 0
      this.counters.accepted += accepted
      // More to fetch: this pass could not ask for everything missing, or the list was capped.
      const more = lacking.size > want.length || listed >= MAX_SYNC_IDS || items.length < want.length
      return { received: items.length, accepted, more }
    } catch (err) {
      this.counters.failed++
      this.refuse(err, peer, 'answer')
      stream?.abort(err as Error)
      return undefined
    }
  }

  /** This node's digests, at most {@link MAX_SYNC_GROUPS} groups and the request's byte cap (a random subset beyond). */
  private async ownDigests(): Promise<Record<string, GroupDigest>> {
    const all = [...(await this.source.digests())].filter(([g]) => GroupKey.safeParse(g).success)
    const out: Record<string, GroupDigest> = {}
    let bytes = 64
    let count = 0
    for (const [group, d] of all.length > MAX_SYNC_GROUPS ? shuffled(all) : all) {
      const size = JSON.stringify(group).length + JSON.stringify(d).length + 2
      if (count >= MAX_SYNC_GROUPS || bytes + size > MAX_SYNC_DIGESTS_BYTES) break
      out[group] = d
      bytes += size
      count++
    }
    return out
  }

  /** The ids of the groups whose digest differs from the asker's, capped (randomly sampled beyond). */
  private async differing(theirs: Record<string, GroupDigest>): Promise<Record<string, string[]>> {
    const mine = await this.source.digests()
    const groups = [...mine].filter(([g, d]) => {
      const t = Object.hasOwn(theirs, g) ? theirs[g] : undefined
      return t === undefined || t.h !== d.h || t.n !== d.n
    })
    const out: Record<string, string[]> = {}
    let count = 0
    let bytes = 64
    for (const [group] of shuffled(groups)) {
      if (count >= MAX_SYNC_IDS || !GroupKey.safeParse(group).success) continue
      const head = JSON.stringify(group).length + 4
      if (bytes + head > MAX_SYNC_IDS_BYTES) break
      const ids = (await this.source.ids(group)).filter((id) => ItemId.safeParse(id).success)
      // A group that does not fit whole is sampled, so that later passes see other ids of it.
      const list: string[] = []
      let size = head
      for (const id of ids.length > MAX_SYNC_IDS - count ? shuffled(ids) : ids) {
        if (count + list.length >= MAX_SYNC_IDS || bytes + size + id.length + 3 > MAX_SYNC_IDS_BYTES) break
        list.push(id)
        size += id.length + 3
      }
      if (list.length === 0) continue
      out[group] = list
      count += list.length
      bytes += size
    }
    return out
  }

  /** The items of `want` this node holds, within the item and frame caps. */
  private async itemsFor(want: string[]): Promise<string[]> {
    if (want.length === 0) return []
    const out: string[] = []
    let bytes = 64
    for (const item of await this.source.get([...new Set(want)])) {
      if (item.length === 0 || item.length > MAX_SYNC_ITEM_CHARS) continue
      const size = encoder.encode(JSON.stringify(item)).byteLength + 1
      if (out.length >= MAX_SYNC_WANT || bytes + size > MAX_SYNC_ITEMS_BYTES) break
      out.push(item)
      bytes += size
    }
    return out
  }

  private async handleStream(stream: Stream, connection: Connection): Promise<void> {
    await this.track(this.answer(stream, connection.remotePeer))
  }

  private async answer(stream: Stream, peer: PeerId): Promise<void> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)])
    try {
      if (this.members !== undefined && !(await this.members.waitVerified(peer))) {
        this.counters.refused++
        this.log.info(
          { peer: peer.toString(), protocol: this.protocol },
          'sync refused: not a verified member'
        )
        stream.abort(new Error('not a member'))
        return
      }
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_DIGESTS_BYTES })
      const { digests } = await readFrame(lp, DigestsFrame, MAX_SYNC_DIGESTS_BYTES, 'digests', signal)
      await lp.write(frame({ ids: await this.differing(digests) }), { signal })
      const { want } = await readFrame(lp, WantFrame, MAX_SYNC_WANT_BYTES, 'want', signal)
      const items = await this.itemsFor(want)
      await lp.write(frame({ items }), { signal })
      this.counters.served++
      this.counters.sent += items.length
      await stream.close({ signal }).catch(() => stream.abort(new Error('closing')))
    } catch (err) {
      this.refuse(err, peer, 'request')
      stream.abort(err as Error)
    }
  }

  /** Counts a refused frame by reason and logs it; other failures are logged at debug. */
  private refuse(err: unknown, peer: PeerId, what: 'request' | 'answer'): void {
    if (err instanceof SyncFrameError) {
      this.counters.malformed[err.reason] = (this.counters.malformed[err.reason] ?? 0) + 1
      this.log.info(
        { peer: peer.toString(), protocol: this.protocol, reason: err.reason, err: err.message },
        `sync ${what} refused`
      )
      return
    }
    this.log.debug(
      { peer: peer.toString(), protocol: this.protocol, err: (err as Error).message },
      'sync failed'
    )
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.tasks.add(p)
    void p.finally(() => this.tasks.delete(p)).catch(() => {})
    return p
  }

  /** Connected peers this node may sync with: verified members, or (public) peers that speak the protocol. */
  private async candidates(): Promise<PeerId[]> {
    const seen = new Map<string, PeerId>()
    for (const c of this.node.getConnections()) seen.set(c.remotePeer.toString(), c.remotePeer)
    const out: PeerId[] = []
    for (const peer of seen.values()) {
      if (this.members !== undefined ? this.members.isMember(peer) : await this.speaks(peer)) out.push(peer)
    }
    return out
  }

  private async speaks(peer: PeerId): Promise<boolean> {
    try {
      return (await this.node.peerStore.get(peer)).protocols.includes(this.protocol)
    } catch {
      return false
    }
  }

  private async syncRandom(): Promise<void> {
    const peers = await this.candidates()
    const pick = peers[Math.floor(Math.random() * peers.length)]
    if (pick !== undefined) this.syncSoon(pick)
  }

  private syncSoon(peer: PeerId): void {
    if (this.started) void this.syncWith(peer)
  }

  private onVerified(evt: Event): void {
    this.syncSoon((evt as CustomEvent<{ peerId: PeerId }>).detail.peerId)
  }

  private onIdentify(evt: CustomEvent<{ peerId: PeerId; protocols: string[] }>): void {
    if (evt.detail.protocols.includes(this.protocol)) this.syncSoon(evt.detail.peerId)
  }
}
