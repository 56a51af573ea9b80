/**
 * Membership enforcement of a private swarm.
 *
 * - {@link PeerAccessList}: the allow-set (peers that proved membership on a live connection)
 *   and the deny-set (refused peers, for a while), with the connection gater that refuses
 *   denied peers before any stream is opened. It exists before libp2p does, so that its
 *   gater can go into the libp2p options.
 * - {@link SwarmMembership}: on every new connection both sides exchange their credential
 *   over `/shoal/1/membership/1.0.0` (one length-prefixed JSON frame each way, with a
 *   timeout); the credential's `sub` must be the remote peer's DID (the connection's noise
 *   handshake proves the peer holds that key). A peer that fails, or says nothing in time,
 *   is disconnected and denied. It also implements the gossip membership check.
 */
import type { Connection, ConnectionGater, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { varint } from 'multiformats'
import { logger, type Logger } from '../common/index.js'
import { didFromPeerId } from '../identity/index.js'
import {
  DENY_TTL_MS,
  HANDSHAKE_TIMEOUT_MS,
  MAX_CREDENTIAL_BYTES,
  MAX_KNOWN_AUTHORS,
  MEMBERSHIP_PROTOCOL,
  MEMBERSHIP_SWEEP_MS,
  DENY_TRANSIENT_TTL_MS
} from './constants.js'
import { MembershipError } from './errors.js'
import type { MembershipReason } from './errors.js'
import type { AccessDecision, GossipAccess } from './gossip.js'
import { swarmIdFromFounders, verifyCredential } from './swarm.js'
import type { SwarmDescriptor } from './swarm.js'

const log = logger('shoal:p2p:membership')

/** A peer in the allow-set. */
export interface AllowedPeer {
  peerId: string
  did: string
  /** Credential expiry, ms since the epoch. */
  expiresAt: number
}

/** A peer in the deny-set. */
export interface DeniedPeer {
  peerId: string
  reason: string
  /** End of the denial, ms since the epoch. */
  until: number
}

/** Allow- and deny-sets of peers, and a connection gater over the deny-set. */
export class PeerAccessList {
  private readonly allowedPeers = new Map<string, AllowedPeer>()
  private readonly deniedPeers = new Map<string, DeniedPeer>()
  private readonly now: () => number
  private verifier: ((peer: PeerId) => Promise<boolean>) | undefined

  /**
   * Pass to `libp2pOptions({ connectionGater })`: refuses dials to and connections from denied
   * peers, and — when this node is a circuit relay — reservations and relayed connections of
   * anyone who is not a verified member of the private swarm ({@link setVerifier}); with no
   * verifier (no private swarm) it relays for nobody, since a member relay has its limits lifted.
   */
  readonly gater: ConnectionGater

  constructor(init: { now?: () => number } = {}) {
    this.now = init.now ?? Date.now
    const refuse = (peerId: PeerId, direction: string): boolean => {
      const denial = this.denial(peerId)
      if (denial === undefined) return false
      log.info(
        { peer: denial.peerId, reason: denial.reason, direction },
        'connection gater refused a denied peer'
      )
      return true
    }
    this.gater = {
      denyDialPeer: (peerId) => refuse(peerId, 'dial'),
      denyInboundEncryptedConnection: (peerId) => refuse(peerId, 'inbound'),
      denyOutboundEncryptedConnection: (peerId) => refuse(peerId, 'outbound'),
      denyInboundRelayReservation: async (peerId) => this.relayDenied(peerId, 'reservation'),
      denyOutboundRelayedConnection: async (source, destination) =>
        (await this.relayDenied(source, 'relay source')) ||
        (await this.relayDenied(destination, 'relay destination'))
    }
  }

  /** Who may use this node as a relay: `verify(peer)` resolves true for a verified member. */
  setVerifier(verify: ((peer: PeerId) => Promise<boolean>) | undefined): void {
    this.verifier = verify
  }

  /**
   * Whether `peerId` is a verified member of the private swarm (waiting for a running
   * handshake); false for a denied peer and while no membership runs ({@link setVerifier}).
   */
  async admits(peerId: PeerId): Promise<boolean> {
    return this.denial(peerId) === undefined && this.verifier !== undefined && (await this.verifier(peerId))
  }

  private async relayDenied(peerId: PeerId, what: string): Promise<boolean> {
    const ok = await this.admits(peerId)
    if (!ok) log.info({ peer: peerId.toString(), what }, 'relay refused: not a verified swarm member')
    return !ok
  }

  /** Adds a verified peer until `expiresAt` (ms); lifts any denial. */
  allow(peerId: PeerId, entry: { did: string; expiresAt: number }): void {
    const key = peerId.toString()
    this.deniedPeers.delete(key)
    this.allowedPeers.set(key, { peerId: key, did: entry.did, expiresAt: entry.expiresAt })
  }

  /** Removes a peer from the allow-set (e.g. when its last connection closes). */
  forget(peerId: PeerId | string): void {
    this.allowedPeers.delete(peerId.toString())
  }

  /** Moves a peer to the deny-set for `ttlMs`. */
  deny(peerId: PeerId, reason: string, ttlMs: number = DENY_TTL_MS): void {
    const key = peerId.toString()
    this.allowedPeers.delete(key)
    this.deniedPeers.set(key, { peerId: key, reason, until: this.now() + ttlMs })
  }

  /** Whether a peer is in the allow-set with an unexpired credential. */
  isAllowed(peerId: PeerId): boolean {
    const entry = this.allowedPeers.get(peerId.toString())
    return entry !== undefined && entry.expiresAt > this.now()
  }

  /** The allow-set entry of a peer, if any. */
  allowance(peerId: PeerId): AllowedPeer | undefined {
    return this.allowedPeers.get(peerId.toString())
  }

  /** The current denial of a peer, if any (expired denials are dropped). */
  denial(peerId: PeerId): DeniedPeer | undefined {
    const key = peerId.toString()
    const entry = this.deniedPeers.get(key)
    if (entry === undefined) return undefined
    if (entry.until <= this.now()) {
      this.deniedPeers.delete(key)
      return undefined
    }
    return entry
  }

  /** Every allowed peer (a copy). */
  allowed(): AllowedPeer[] {
    return [...this.allowedPeers.values()].map((e) => ({ ...e }))
  }

  /** Every current denial (a copy). */
  denied(): DeniedPeer[] {
    const now = this.now()
    return [...this.deniedPeers.values()].filter((e) => e.until > now).map((e) => ({ ...e }))
  }
}

/** The parts of a libp2p node that {@link SwarmMembership} uses. */
export type MembershipNode = Pick<
  Libp2p,
  'peerId' | 'handle' | 'unhandle' | 'getConnections' | 'hangUp' | 'addEventListener' | 'removeEventListener'
>

/** What {@link SwarmMembership} needs. */
export interface MembershipComponents {
  node: MembershipNode
  access: PeerAccessList
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of {@link SwarmMembership}. */
export interface MembershipInit {
  swarm: SwarmDescriptor
  /** This node's credential (a JWT from {@link issueCredential} naming this node's DID). */
  credential: string
  /** Time for the remote side to complete the handshake (default 5 s). */
  handshakeTimeoutMs?: number
  /** How long a refused peer stays denied (default 10 min). */
  denyTtlMs?: number
  /** How often allowed peers are checked for expired credentials (default 10 s). */
  sweepIntervalMs?: number
  /** Clock in ms (tests). */
  now?: () => number
}

/** One handshake frame: a credential, or the reason the other side refused ours. */
interface Frame {
  v: 1
  credential?: string
  refused?: { code: string; reason: string }
}

interface Pending {
  promise: Promise<boolean>
  settle(ok: boolean): void
  timer?: ReturnType<typeof setTimeout>
}

/** Thrown inside the handshake; carries the reason used for the denial. */
class HandshakeError extends Error {
  constructor(
    readonly reason: MembershipReason | 'refused_by_peer',
    message: string,
    readonly code: string = 'NOT_A_MEMBER'
  ) {
    super(message)
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function encodeFrame(frame: Frame): Uint8Array {
  const body = encoder.encode(JSON.stringify(frame))
  const prefix = varint.encodeTo(body.length, new Uint8Array(varint.encodingLength(body.length)))
  const out = new Uint8Array(prefix.length + body.length)
  out.set(prefix)
  out.set(body, prefix.length)
  return out
}

/** Reads one varint-length-prefixed frame (≤ `max` bytes) from a libp2p stream. */
async function readFrame(stream: Stream, max: number, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    let buf = new Uint8Array(0)
    const cleanup = (): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onEnd)
      stream.removeEventListener('remoteCloseWrite', onEnd)
      signal.removeEventListener('abort', onAbort)
    }
    const fail = (err: Error): void => {
      cleanup()
      reject(err)
    }
    const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      const next = new Uint8Array(buf.length + chunk.length)
      next.set(buf)
      next.set(chunk, buf.length)
      buf = next
      let length: number
      let offset: number
      try {
        ;[length, offset] = varint.decode(buf)
      } catch {
        if (buf.length > 9) fail(new HandshakeError('malformed', 'bad frame length prefix'))
        return // prefix incomplete
      }
      if (length > max)
        return fail(new HandshakeError('malformed', `frame of ${length} bytes exceeds ${max}`))
      if (buf.length < offset + length) return
      cleanup()
      resolve(buf.subarray(offset, offset + length))
    }
    const onEnd = (): void =>
      fail(new HandshakeError('handshake_failed', 'stream closed before a frame arrived'))
    const onAbort = (): void => fail(new HandshakeError('handshake_timeout', 'no frame in time'))
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort)
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onEnd)
    stream.addEventListener('remoteCloseWrite', onEnd)
  })
}

function parseFrame(bytes: Uint8Array): Frame {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new HandshakeError('malformed', 'frame is not UTF-8 JSON')
  }
  if (typeof value !== 'object' || value === null || (value as { v?: unknown }).v !== 1) {
    throw new HandshakeError('malformed', 'frame is not a v1 membership frame')
  }
  const f = value as Record<string, unknown>
  const frame: Frame = { v: 1 }
  if (typeof f.credential === 'string') frame.credential = f.credential
  if (typeof f.refused === 'object' && f.refused !== null) {
    const r = f.refused as Record<string, unknown>
    frame.refused = { code: String(r.code ?? ''), reason: String(r.reason ?? '') }
  }
  return frame
}

/** Detail of the `verified` and `refused` events of {@link SwarmMembership}. */
export interface MembershipEventDetail {
  peerId: PeerId
  /** The peer's did:key (undefined for a non-Ed25519 peer). */
  did: string | undefined
  /** Why it was refused (`refused` only). */
  reason?: string
  detail?: string
}

/**
 * Enforces membership of a private swarm on a libp2p node: handshake on each connection,
 * allow/deny bookkeeping, periodic expiry checks, and the gossip membership check.
 * Emits `verified` and `refused` events (`CustomEvent<MembershipEventDetail>`).
 */
export class SwarmMembership extends EventTarget implements GossipAccess {
  private readonly log: Logger
  private readonly node: MembershipNode
  private readonly access: PeerAccessList
  private readonly swarm: SwarmDescriptor
  private ownCredential: string
  private readonly handshakeTimeoutMs: number
  private readonly denyTtlMs: number
  private readonly sweepIntervalMs: number
  private readonly now: () => number
  private readonly pending = new Map<string, Pending>()
  private readonly knownAuthors = new Map<string, number>()
  private sweepTimer: ReturnType<typeof setInterval> | undefined
  private started = false

  /**
   * @throws {RangeError} when the descriptor's id is not the one its founders give.
   */
  constructor(components: MembershipComponents, init: MembershipInit) {
    super()
    if (swarmIdFromFounders(init.swarm.founders) !== init.swarm.id) {
      throw new RangeError(`swarm id ${init.swarm.id} does not match its founders`)
    }
    this.log = components.log ?? log
    this.node = components.node
    this.access = components.access
    this.swarm = init.swarm
    this.ownCredential = init.credential
    this.handshakeTimeoutMs = init.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS
    this.denyTtlMs = init.denyTtlMs ?? DENY_TTL_MS
    this.sweepIntervalMs = init.sweepIntervalMs ?? MEMBERSHIP_SWEEP_MS
    this.now = init.now ?? Date.now
    this.onConnectionOpen = this.onConnectionOpen.bind(this)
    this.onConnectionClose = this.onConnectionClose.bind(this)
    this.handleStream = this.handleStream.bind(this)
  }

  /**
   * Checks this node's own credential, registers the protocol, and starts verifying every
   * connection (including those already open). Idempotent.
   *
   * @throws {MembershipError} when this node's credential does not make it a member.
   */
  async start(): Promise<void> {
    if (this.started) return
    await this.checkOwnCredential(this.ownCredential)
    this.started = true
    await this.node.handle(MEMBERSHIP_PROTOCOL, this.handleStream, {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
      runOnLimitedConnection: true
    })
    this.access.setVerifier(async (peer) => this.waitVerified(peer))
    this.node.addEventListener('connection:open', this.onConnectionOpen)
    this.node.addEventListener('connection:close', this.onConnectionClose)
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepIntervalMs)
    this.sweepTimer.unref?.()
    for (const connection of this.node.getConnections()) this.onConnection(connection)
    this.log.info({ swarm: this.swarm.id }, 'swarm membership enforced')
  }

  /** Stops verifying connections. Idempotent. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.access.setVerifier(undefined)
    this.node.removeEventListener('connection:open', this.onConnectionOpen)
    this.node.removeEventListener('connection:close', this.onConnectionClose)
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
    for (const p of this.pending.values()) p.settle(false)
    this.pending.clear()
    await this.node.unhandle(MEMBERSHIP_PROTOCOL).catch(() => {})
  }

  /**
   * Replaces this node's credential (e.g. a renewed one); used for later handshakes and messages.
   *
   * @throws {MembershipError} when it does not make this node a member.
   */
  async setCredential(jwt: string): Promise<void> {
    await this.checkOwnCredential(jwt)
    this.ownCredential = jwt
  }

  /** The credential attached to published gossip. */
  credential(): string {
    return this.ownCredential
  }

  /** Whether `peerId` has proved membership on a live connection. */
  isMember(peerId: PeerId): boolean {
    return this.access.isAllowed(peerId)
  }

  /**
   * Resolves once the handshake with `peerId` has settled: true when it is a member.
   * Resolves at once (with the current state) when no handshake is running.
   */
  async waitVerified(peerId: PeerId): Promise<boolean> {
    const p = this.pending.get(peerId.toString())
    if (p !== undefined) await p.promise
    return this.access.isAllowed(peerId)
  }

  /**
   * The gossip membership check: `source` (the forwarder) must be verified, waiting for its
   * handshake if one is running; `author` must be verified too, or have attached a valid
   * credential naming it (checked once, then remembered until its `exp`).
   */
  async checkMessage(
    source: PeerId,
    author: PeerId,
    credential: string | undefined
  ): Promise<AccessDecision> {
    if (!(await this.waitVerified(source))) {
      return { ok: false, reason: 'the forwarding peer is not a verified member' }
    }
    if (author.equals(source) || author.equals(this.node.peerId) || this.access.isAllowed(author))
      return { ok: true }
    const key = author.toString()
    const known = this.knownAuthors.get(key)
    if (known !== undefined && known > this.now()) return { ok: true }
    if (credential === undefined) return { ok: false, reason: 'the author attached no credential' }
    try {
      const verified = await verifyCredential(credential, this.swarm, {
        subject: didFromPeerId(author),
        now: Math.floor(this.now() / 1000)
      })
      if (this.knownAuthors.size >= MAX_KNOWN_AUTHORS) {
        const oldest = this.knownAuthors.keys().next().value
        if (oldest !== undefined) this.knownAuthors.delete(oldest)
      }
      this.knownAuthors.set(key, verified.expiresAt * 1000)
      return { ok: true }
    } catch (err) {
      const reason = err instanceof MembershipError ? `${err.code}/${err.fields.reason}` : String(err)
      return { ok: false, reason: `the author's credential was refused: ${reason}` }
    }
  }

  private async checkOwnCredential(jwt: string): Promise<void> {
    await verifyCredential(jwt, this.swarm, {
      subject: didFromPeerId(this.node.peerId),
      now: Math.floor(this.now() / 1000)
    })
  }

  private onConnectionOpen(evt: CustomEvent<Connection>): void {
    this.onConnection(evt.detail)
  }

  private onConnection(connection: Connection): void {
    const peer = connection.remotePeer
    if (this.access.isAllowed(peer)) return
    if (this.access.denial(peer) !== undefined) {
      this.refuse(peer, 'denied', 'peer is in the deny-set')
      return
    }
    const pending = this.ensurePending(peer)
    if (connection.direction === 'outbound') {
      this.dialHandshake(connection).catch((err: unknown) => {
        const reason = err instanceof HandshakeError ? err.reason : 'handshake_failed'
        this.refuse(peer, reason, (err as Error).message)
      })
    } else {
      pending.timer ??= setTimeout(() => {
        if (!this.access.isAllowed(peer)) {
          this.refuse(peer, 'handshake_timeout', `no credential within ${this.handshakeTimeoutMs} ms`)
        }
      }, this.handshakeTimeoutMs)
      pending.timer.unref?.()
    }
  }

  private onConnectionClose(evt: CustomEvent<Connection>): void {
    const peer = evt.detail.remotePeer
    if (this.node.getConnections(peer).length > 0) return
    this.access.forget(peer)
    const p = this.pending.get(peer.toString())
    if (p !== undefined) p.settle(false)
  }

  private ensurePending(peer: PeerId): Pending {
    const key = peer.toString()
    let p = this.pending.get(key)
    if (p === undefined) {
      let resolve: (ok: boolean) => void = () => {}
      const promise = new Promise<boolean>((r) => {
        resolve = r
      })
      const entry: Pending = {
        promise,
        settle: (ok: boolean) => {
          if (entry.timer !== undefined) clearTimeout(entry.timer)
          if (this.pending.get(key) === entry) this.pending.delete(key)
          resolve(ok)
        }
      }
      p = entry
      this.pending.set(key, p)
    }
    return p
  }

  /** Outbound side: send our credential, read theirs (or their refusal). */
  private async dialHandshake(connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const signal = AbortSignal.timeout(this.handshakeTimeoutMs)
    let stream: Stream
    try {
      stream = await connection.newStream(MEMBERSHIP_PROTOCOL, { signal, runOnLimitedConnection: true })
    } catch (err) {
      throw new HandshakeError(
        'handshake_failed',
        `cannot open ${MEMBERSHIP_PROTOCOL}: ${(err as Error).message}`
      )
    }
    try {
      stream.send(encodeFrame({ v: 1, credential: this.ownCredential }))
      const frame = parseFrame(await readFrame(stream, MAX_CREDENTIAL_BYTES, signal))
      if (frame.refused !== undefined) {
        throw new HandshakeError(
          'refused_by_peer',
          `the peer refused our credential: ${frame.refused.code}/${frame.refused.reason}`
        )
      }
      await this.accept(peer, frame.credential)
    } finally {
      await stream
        .close({ signal: AbortSignal.timeout(1_000) })
        .catch(() => stream.abort(new Error('closing')))
    }
  }

  /** Inbound side: read the dialer's credential, answer with ours or with the refusal. */
  private async handleStream(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const signal = AbortSignal.timeout(this.handshakeTimeoutMs)
    try {
      const frame = parseFrame(await readFrame(stream, MAX_CREDENTIAL_BYTES, signal))
      try {
        await this.accept(peer, frame.credential)
      } catch (err) {
        const code = err instanceof HandshakeError ? err.code : 'NOT_A_MEMBER'
        const reason = err instanceof HandshakeError ? err.reason : 'handshake_failed'
        stream.send(encodeFrame({ v: 1, refused: { code, reason } }))
        throw err
      }
      stream.send(encodeFrame({ v: 1, credential: this.ownCredential }))
      await stream.close({ signal: AbortSignal.timeout(1_000) }).catch(() => {})
    } catch (err) {
      const reason = err instanceof HandshakeError ? err.reason : 'handshake_failed'
      await stream.close({ signal: AbortSignal.timeout(500) }).catch(() => stream.abort(new Error('refused')))
      this.refuse(peer, reason, (err as Error).message)
    }
  }

  /** Verifies a remote credential for `peer`; allows the peer or throws a HandshakeError. */
  private async accept(peer: PeerId, credential: string | undefined): Promise<void> {
    if (credential === undefined) throw new HandshakeError('no_credential', 'no credential presented')
    let did: string
    try {
      did = didFromPeerId(peer)
    } catch {
      throw new HandshakeError('malformed', 'the peer has no did:key (not an Ed25519 PeerId)')
    }
    try {
      const verified = await verifyCredential(credential, this.swarm, {
        subject: did,
        now: Math.floor(this.now() / 1000)
      })
      this.access.allow(peer, { did, expiresAt: verified.expiresAt * 1000 })
      this.log.debug(
        { peer: peer.toString(), did, issuer: verified.issuer },
        'peer verified as a swarm member'
      )
      this.pending.get(peer.toString())?.settle(true)
      this.dispatchEvent(
        new CustomEvent<MembershipEventDetail>('verified', { detail: { peerId: peer, did } })
      )
    } catch (err) {
      if (err instanceof MembershipError) {
        throw new HandshakeError(err.fields.reason, `${err.code}: ${err.message}`, err.code)
      }
      throw err
    }
  }

  /** Denies a peer, closes its connections and logs why. */
  private refuse(peer: PeerId, reason: string, detail: string): void {
    let did: string | undefined
    try {
      did = didFromPeerId(peer)
    } catch {
      did = undefined
    }
    // A credential that is bad stays refused for the deny TTL; a handshake that failed on the
    // network (reset, timeout) says nothing about membership and is retried soon.
    const transient = reason === 'handshake_failed' || reason === 'handshake_timeout'
    this.access.deny(
      peer,
      reason,
      transient ? Math.min(this.denyTtlMs, DENY_TRANSIENT_TTL_MS) : this.denyTtlMs
    )
    this.pending.get(peer.toString())?.settle(false)
    this.log.warn(
      { peer: peer.toString(), did, reason, detail, swarm: this.swarm.id },
      'peer refused: not a swarm member'
    )
    this.dispatchEvent(
      new CustomEvent<MembershipEventDetail>('refused', { detail: { peerId: peer, did, reason, detail } })
    )
    this.node.hangUp(peer).catch((err: unknown) => this.log.debug({ err }, 'hang up failed'))
  }

  /** Disconnects peers whose credential has expired. */
  private sweep(): void {
    const now = this.now()
    for (const entry of this.access.allowed()) {
      if (entry.expiresAt <= now) {
        const peer = this.node
          .getConnections()
          .find((c) => c.remotePeer.toString() === entry.peerId)?.remotePeer
        if (peer !== undefined) this.refuse(peer, 'expired', 'the credential expired')
        else this.access.forget(entry.peerId)
      }
    }
  }
}
