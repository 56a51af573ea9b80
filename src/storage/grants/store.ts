/**
 * GrantStore: the grants and revocations a node knows, in a level database (the node uses
 * `$SHOAL_HOME/ledger/grants`).
 *
 * Layout (sublevels of one database):
 * - `grants`  grant id → record (JSON): the grant JWT, its public facts, the manifest entries
 *             of its shards, and its revocation (JWT, time, reason) once revoked;
 * - `keys`    `<grant id>!<shard cid>` → the 32-byte content key: only for grants to this
 *             node, only while the grant is neither revoked nor expired (a revocation with
 *             `endsAt` shortens the grant's expiry instead: see `addRevocation`);
 * - `shards`  `<shard cid>!<grant id>` → '' (which grants cover a shard);
 * - `pending` `<grant id>!<revocation id>` → a revocation (JWT) that arrived before its grant
 *             (several may wait for one grant: only the owner's will apply).
 *
 * Every change runs in one atomic batch, one change at a time.
 */
import { mkdir } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { Level } from 'level'
import { logger, type Logger } from '../../common/index.js'
import type { Identity } from '../../identity/index.js'
import type { DatasetSchema, LoadedManifest, ManifestBody, ManifestShard } from '../datasets/index.js'
import { MAX_PENDING_REVOCATIONS, PURPOSE_ANY } from './constants.js'
import {
  canonicalCid,
  isoTime,
  openGrantKeys,
  readRevocation,
  verifyGrant,
  verifyRevocation,
  type GrantInfo
} from './documents.js'
import { GrantError, StoreClosedError } from './errors.js'

const log = logger('shoal:storage:grants')

/** What a GrantStore needs: the node's identity (to open the grants addressed to it). */
export interface GrantStoreComponents {
  identity: Pick<Identity, 'did' | 'decryptJwe'>
  /** The node's logger for this component (carries the node id); default: a module logger. */
  log?: Logger
}

/** Options of a GrantStore. */
export interface GrantStoreInit {
  /** Directory of the level database (created if missing). */
  path: string
}

/** The stored form of one grant. */
interface GrantRecord {
  info: GrantInfo
  jwt: string
  /** Whether the grant is addressed to this node. */
  mine: boolean
  /** Unix seconds when this node stored it. */
  addedAt: number
  /** Manifest entries of the granted shards (same order as `info.shards`). */
  entries: ManifestShard[]
  schema: DatasetSchema
  revocation?: string
  revokeReason?: string
  /** Revocations with `endsAt` that shortened the grant (JWTs, oldest first). */
  shortenings?: string[]
  /** Why and when (Unix seconds) the keys were deleted. */
  keysDeleted?: { why: 'revoked' | 'expired'; at: number }
}

interface PendingRevocation {
  jwt: string
  issuer: string
  iat: number
  receivedAt: number
}

/** What {@link GrantStore.addGrant} did. */
export interface AddGrantResult {
  grant: GrantInfo
  /** Whether the grant is addressed to this node. */
  mine: boolean
  /** Whether content keys were stored (a grant to this node, neither expired nor revoked). */
  keysStored: boolean
  /** Whether the grant was already known (nothing changed). */
  duplicate: boolean
}

/** What {@link GrantStore.addRevocation} did. */
export interface AddRevocationResult {
  /** The revoked grant's id. */
  grant: string
  /**
   * `revoked`: applied now; `already-revoked`: the grant was revoked before; `pending`: the
   * grant is unknown, the revocation is kept and applied when the grant arrives; `shortened`:
   * (a revocation with `endsAt`) the grant now ends at `endsAt`; `not-shortened`: it already
   * ended earlier, or was revoked.
   */
  status: 'revoked' | 'already-revoked' | 'pending' | 'shortened' | 'not-shortened'
  /** Content keys deleted by this call. */
  keysDeleted: number
}

/** Options of {@link GrantStore.keyFor} and {@link GrantStore.access}. */
export interface AccessOptions {
  /** The job the data is for; grants for this job or for `any` qualify. */
  purpose: string
  /** Unix seconds to check expiry against (default now). */
  now?: number
}

/** A usable grant for one shard, with the shard's content key. */
export interface GrantAccess {
  /** The content key (a copy: zero it when done). */
  key: Uint8Array
  grant: GrantInfo
  /** The shard's manifest entry (count and label counts). */
  entry: ManifestShard
  /** The dataset's schema. */
  schema: DatasetSchema
}

/** Filters of {@link GrantStore.list}. */
export interface ListGrantsOptions {
  /** Only grants of this dataset (manifest CID). */
  dataset?: string | CID
  /** Only grants to this DID. */
  grantee?: string
  /** Only grants covering this shard. */
  shard?: string | CID
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** Upper bound of the keys that start with `prefix` (`!` is the separator; `"` sorts right after it). */
const prefixRange = (prefix: string): { gte: string; lt: string } => ({ gte: `${prefix}!`, lt: `${prefix}"` })

type Db = Level<string, string>

/** A sublevel of string keys and `V` values. */
function sublevel<V>(db: Db, name: string, valueEncoding: 'json' | 'view' | 'utf8') {
  return db.sublevel<string, V>(name, { valueEncoding })
}
type Sub<V> = ReturnType<typeof sublevel<V>>

/**
 * The grants and revocations this node knows. Grants to this node keep their opened content
 * keys until revoked or expired; grants to others are public records (for lineage checks).
 * Implements the receipts module's `GrantLookup` (`find`).
 *
 * @example
 * ```ts
 * const grants = new GrantStore({ identity }, { path: join(home, 'ledger', 'grants') })
 * await grants.start()
 * await grants.addGrant(jwt, manifest.body)
 * const key = await grants.keyFor(shardCid, { purpose: 'job-1' })
 * await grants.addRevocation(revocationJwt) // keys deleted
 * await grants.stop()
 * ```
 */
export class GrantStore {
  private readonly log: Logger
  private readonly identity: Pick<Identity, 'did' | 'decryptJwe'>
  private readonly path: string
  private db: Db | undefined
  private grantsDb: Sub<GrantRecord> | undefined
  private keysDb: Sub<Uint8Array> | undefined
  private shardsDb: Sub<string> | undefined
  private pendingDb: Sub<PendingRevocation> | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private starting: Promise<void> | undefined

  constructor(components: GrantStoreComponents, init: GrantStoreInit) {
    this.log = components.log ?? log
    this.identity = components.identity
    this.path = init.path
  }

  /** Open the database and delete the keys of grants that expired meanwhile. Idempotent. */
  async start(): Promise<void> {
    if (this.db !== undefined) return
    this.starting ??= (async () => {
      await mkdir(this.path, { recursive: true })
      const db = new Level<string, string>(this.path, { valueEncoding: 'utf8' })
      await db.open()
      this.grantsDb = sublevel<GrantRecord>(db, 'grants', 'json')
      this.keysDb = sublevel<Uint8Array>(db, 'keys', 'view')
      this.shardsDb = sublevel<string>(db, 'shards', 'utf8')
      this.pendingDb = sublevel<PendingRevocation>(db, 'pending', 'json')
      this.db = db
      const swept = await this.sweep()
      this.log.info({ path: this.path, swept }, 'grant store started')
    })()
    try {
      await this.starting
    } finally {
      this.starting = undefined
    }
  }

  /** Close the database. Idempotent. */
  async stop(): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => {})
    const db = this.db
    if (db === undefined) return
    await this.queue.catch(() => {})
    this.db = undefined
    await db.close()
    this.log.info({ path: this.path }, 'grant store stopped')
  }

  /**
   * Verify and store a grant (see `verifyGrant`). A grant to this node that is neither
   * expired nor revoked is opened and its content keys stored; any other valid grant is
   * stored as a public record. Adding a known grant again changes nothing (a revoked grant
   * never gets its keys back). A revocation that arrived before the grant is applied now.
   * Pass the manifest from `loadManifest` (or `opts.manifestCid`) so that the grant's `dataset`
   * is checked against the manifest's CID.
   *
   * @throws {GrantError} `GRANT_INVALID`, `GRANT_NOT_OWNER` (see `verifyGrant`); `GRANT_INVALID`
   * (`reason: 'keys'`) when a grant to this node does not open.
   */
  async addGrant(
    jwt: string,
    manifest: ManifestBody | LoadedManifest,
    opts: { manifestCid?: string | CID; now?: number } = {}
  ): Promise<AddGrantResult> {
    this.dbs()
    const now = opts.now ?? nowSeconds()
    const verifyOpts: Parameters<typeof verifyGrant>[1] = { manifest, now }
    if (opts.manifestCid !== undefined) verifyOpts.manifestCid = opts.manifestCid
    const verified = await verifyGrant(jwt, verifyOpts)
    const { id, info } = verified
    const mine = info.grantee === this.identity.did
    return this.exclusive(async () => {
      const { db, grants, keys, shards, pending } = this.dbs()
      const existing = await grants.get(id)
      if (existing !== undefined) {
        return { grant: publicInfo(existing), mine: existing.mine, keysStored: false, duplicate: true }
      }
      const record: GrantRecord = {
        info,
        jwt,
        mine,
        addedAt: nowSeconds(),
        entries: verified.entries,
        schema: verified.schema
      }
      const ops: BatchOp[] = []
      for await (const [key, early] of pending.iterator(prefixRange(id))) {
        ops.push({ type: 'del', sublevel: pending, key })
        if (record.info.revokedAt !== undefined) continue
        try {
          const rev = await verifyRevocation(early.jwt, info, { now })
          if (rev.endsAt !== undefined) {
            shorten(record, rev.endsAt, early.jwt)
            continue
          }
          record.info.revokedAt = rev.revokedAt
          record.revocation = early.jwt
          if (rev.reason !== undefined) record.revokeReason = rev.reason
          if (mine) record.keysDeleted = { why: 'revoked', at: nowSeconds() }
        } catch (err) {
          this.log.warn({ grant: id, err }, 'dropped a pending revocation that does not fit its grant')
        }
      }
      let keysStored = false
      if (mine && record.info.revokedAt === undefined) {
        if (verified.expired || (record.info.exp !== undefined && now >= record.info.exp)) {
          record.keysDeleted = { why: 'expired', at: nowSeconds() }
        } else {
          const opened = await openGrantKeys(this.identity, verified)
          for (const [shard, key] of opened) {
            ops.push({ type: 'put', sublevel: keys, key: `${id}!${shard}`, value: key })
          }
          keysStored = true
        }
      }
      ops.push({ type: 'put', sublevel: grants, key: id, value: record })
      for (const shard of info.shards)
        ops.push({ type: 'put', sublevel: shards, key: `${shard}!${id}`, value: '' })
      await db.batch(ops as never)
      this.log.info(
        {
          grant: id,
          dataset: info.dataset,
          grantee: info.grantee,
          shards: info.shards.length,
          mine,
          keysStored
        },
        'grant added'
      )
      return { grant: publicInfo(record), mine, keysStored, duplicate: false }
    })
  }

  /**
   * Verify and apply a revocation: it must be signed by the owner of the grant it names. The
   * grant's content keys are deleted at once and the grant is marked revoked at the
   * revocation's `iat`. A revocation of an unknown grant is kept (signature checked) and
   * applied when the grant arrives, up to {@link MAX_PENDING_REVOCATIONS}.
   *
   * @throws {GrantError} `REVOCATION_INVALID` (see `verifyRevocation`); `GRANT_MISSING` when
   * the grant is unknown and no more pending revocations can be kept.
   */
  async addRevocation(jwt: string, opts: { now?: number } = {}): Promise<AddRevocationResult> {
    this.dbs()
    const read = await readRevocation(jwt, opts)
    const grantId = read.claims.grant
    return this.exclusive(async () => {
      const { db, grants, keys, pending } = this.dbs()
      const record = await grants.get(grantId)
      if (record === undefined) {
        const key = `${grantId}!${read.id}`
        if ((await pending.get(key)) === undefined) {
          let n = 0
          for await (const _ of pending.keys({ limit: MAX_PENDING_REVOCATIONS })) n++
          if (n >= MAX_PENDING_REVOCATIONS) {
            throw new GrantError(
              'GRANT_MISSING',
              `grant ${grantId} is unknown and ${MAX_PENDING_REVOCATIONS} revocations already wait for their grants`,
              { grant: grantId }
            )
          }
        }
        const value: PendingRevocation = {
          jwt,
          issuer: read.issuer,
          iat: read.claims.iat,
          receivedAt: nowSeconds()
        }
        await pending.put(key, value)
        this.log.info(
          { grant: grantId, issuer: read.issuer },
          'revocation of an unknown grant kept until it arrives'
        )
        return { grant: grantId, status: 'pending', keysDeleted: 0 }
      }
      const rev = await verifyRevocation(jwt, record.info, opts)
      if (rev.endsAt !== undefined) {
        // A shortened expiry: the keys stay until then (access and sweep delete them at `exp`).
        const done = record.info.revokedAt === undefined && shorten(record, rev.endsAt, jwt)
        if (done) await grants.put(grantId, record)
        this.log.info({ grant: grantId, endsAt: rev.endsAt, shortened: done }, 'grant expiry shortened')
        return { grant: grantId, status: done ? 'shortened' : 'not-shortened', keysDeleted: 0 }
      }
      const ops: BatchOp[] = []
      let keysDeleted = 0
      for await (const key of keys.keys(prefixRange(grantId))) {
        ops.push({ type: 'del', sublevel: keys, key })
        keysDeleted++
      }
      const already = record.info.revokedAt !== undefined
      if (!already) {
        record.info.revokedAt = rev.revokedAt
        record.revocation = jwt
        if (rev.reason !== undefined) record.revokeReason = rev.reason
        if (record.mine) record.keysDeleted = { why: 'revoked', at: nowSeconds() }
        ops.push({ type: 'put', sublevel: grants, key: grantId, value: record })
      }
      if (ops.length > 0) await db.batch(ops as never)
      this.log.info({ grant: grantId, keysDeleted, already, reason: rev.reason }, 'grant revoked')
      return { grant: grantId, status: already ? 'already-revoked' : 'revoked', keysDeleted }
    })
  }

  /**
   * The content key of `shard` from a usable grant to this node for `opts.purpose` (or `any`).
   *
   * @throws {GrantError} `GRANT_REVOKED` / `GRANT_EXPIRED` (naming the grant) when the grants
   * that would cover the shard are revoked or expired; `GRANT_MISSING` when none covers it.
   */
  async keyFor(shard: string | CID, opts: AccessOptions): Promise<Uint8Array> {
    return (await this.access(shard, opts)).key
  }

  /**
   * Like {@link keyFor}, and also says which grant allows the access (what a receipt names)
   * and the shard's manifest entry. Grants for exactly this purpose are preferred over `any`,
   * then the most recent. Expired grants found on the way lose their keys.
   *
   * @throws {GrantError} as {@link keyFor}.
   */
  async access(shard: string | CID, opts: AccessOptions): Promise<GrantAccess> {
    this.dbs()
    const cid = canonicalCid(shard)
    if (cid === undefined) {
      throw new GrantError('GRANT_MISSING', `${String(shard)} is not a shard CID`, { shard: String(shard) })
    }
    const now = opts.now ?? nowSeconds()
    return this.exclusive(async () => {
      const { db, grants, keys, shards } = this.dbs()
      const candidates: GrantRecord[] = []
      const otherPurposes = new Set<string>()
      for await (const key of shards.keys(prefixRange(cid))) {
        const record = await grants.get(key.slice(cid.length + 1))
        if (record === undefined || !record.mine) continue
        if (record.info.purpose === opts.purpose || record.info.purpose === PURPOSE_ANY)
          candidates.push(record)
        else otherPurposes.add(record.info.purpose)
      }
      candidates.sort(
        (a, b) =>
          Number(b.info.purpose === opts.purpose) - Number(a.info.purpose === opts.purpose) ||
          b.info.iat - a.info.iat
      )
      let revoked: GrantRecord | undefined
      let expired: GrantRecord | undefined
      let keyless: GrantRecord | undefined
      for (const record of candidates) {
        const { info } = record
        if (info.revokedAt !== undefined) {
          revoked ??= record
          continue
        }
        if ((info.exp !== undefined && now >= info.exp) || record.keysDeleted?.why === 'expired') {
          if (record.keysDeleted === undefined) await this.deleteExpired(db, grants, keys, record)
          expired ??= record
          continue
        }
        const key = await keys.get(`${info.id}!${cid}`)
        if (key === undefined) {
          keyless ??= record
          continue
        }
        const i = info.shards.indexOf(cid)
        return {
          key: Uint8Array.from(key),
          grant: publicInfo(record),
          entry: record.entries[i]!,
          schema: record.schema
        }
      }
      // Both a revoked and an expired grant cover the shard: name the newer one.
      if (revoked !== undefined && expired !== undefined && expired.info.iat > revoked.info.iat)
        revoked = undefined
      if (revoked !== undefined) {
        const { info } = revoked
        const why = revoked.revokeReason !== undefined ? `: ${revoked.revokeReason}` : ''
        throw new GrantError(
          'GRANT_REVOKED',
          `grant ${info.id} (dataset ${info.dataset}) for shard ${cid} was revoked by ${info.owner} at ${isoTime(info.revokedAt!)}${why}`,
          { grant: info.id, shard: cid, revokedAt: info.revokedAt, reason: revoked.revokeReason }
        )
      }
      if (expired !== undefined) {
        const { info } = expired
        throw new GrantError(
          'GRANT_EXPIRED',
          `grant ${info.id} (dataset ${info.dataset}) for shard ${cid} expired at ${isoTime(info.exp!)}`,
          { grant: info.id, shard: cid, exp: info.exp }
        )
      }
      if (keyless !== undefined) {
        throw new GrantError(
          'GRANT_MISSING',
          `grant ${keyless.info.id} covers shard ${cid} but its keys are gone`,
          {
            grant: keyless.info.id,
            shard: cid
          }
        )
      }
      const others = otherPurposes.size > 0 ? ` (grants exist for: ${[...otherPurposes].join(', ')})` : ''
      throw new GrantError(
        'GRANT_MISSING',
        `no grant to ${this.identity.did} covers shard ${cid} for purpose "${opts.purpose}"${others}`,
        { shard: cid, purpose: opts.purpose }
      )
    })
  }

  /**
   * Delete the content keys of every grant to this node that has expired at `now` (the node
   * calls this periodically; `start` calls it too). Returns how many grants lost their keys.
   */
  async sweep(opts: { now?: number } = {}): Promise<number> {
    this.dbs()
    const now = opts.now ?? nowSeconds()
    return this.exclusive(async () => {
      const { db, grants, keys } = this.dbs()
      const due: GrantRecord[] = []
      for await (const record of grants.values()) {
        const { info } = record
        if (record.mine && record.keysDeleted === undefined && info.exp !== undefined && now >= info.exp) {
          due.push(record)
        }
      }
      for (const record of due) await this.deleteExpired(db, grants, keys, record)
      return due.length
    })
  }

  /** The grant with this id, or undefined (the receipts module's `GrantLookup`). */
  async find(id: string): Promise<GrantInfo | undefined> {
    const { grants } = this.dbs()
    const key = canonicalCid(id)
    if (key === undefined) return undefined
    const record = await grants.get(key)
    return record === undefined ? undefined : publicInfo(record)
  }

  /**
   * The signed documents of a grant (to republish them): its JWT, its revocation, if any, and
   * the revocations that shortened it, if any.
   */
  async documents(
    id: string
  ): Promise<{ grant: string; revocation?: string; shortenings?: string[] } | undefined> {
    const { grants } = this.dbs()
    const key = canonicalCid(id)
    const record = key === undefined ? undefined : await grants.get(key)
    if (record === undefined) return undefined
    return {
      grant: record.jwt,
      ...(record.revocation !== undefined ? { revocation: record.revocation } : {}),
      ...(record.shortenings !== undefined ? { shortenings: [...record.shortenings] } : {})
    }
  }

  /** Every known grant (optionally filtered), oldest first by `iat`. */
  async list(opts: ListGrantsOptions = {}): Promise<GrantInfo[]> {
    const { grants } = this.dbs()
    const dataset = opts.dataset === undefined ? undefined : canonicalCid(opts.dataset)
    const shard = opts.shard === undefined ? undefined : canonicalCid(opts.shard)
    const out: GrantInfo[] = []
    for await (const record of grants.values()) {
      const { info } = record
      if (opts.dataset !== undefined && info.dataset !== dataset) continue
      if (opts.grantee !== undefined && info.grantee !== opts.grantee) continue
      if (opts.shard !== undefined && (shard === undefined || !info.shards.includes(shard))) continue
      out.push(publicInfo(record))
    }
    return out.sort((a, b) => a.iat - b.iat || (a.id < b.id ? -1 : 1))
  }

  private async deleteExpired(
    db: Db,
    grants: Sub<GrantRecord>,
    keys: Sub<Uint8Array>,
    record: GrantRecord
  ): Promise<void> {
    const ops: BatchOp[] = []
    for await (const key of keys.keys(prefixRange(record.info.id)))
      ops.push({ type: 'del', sublevel: keys, key })
    record.keysDeleted = { why: 'expired', at: nowSeconds() }
    ops.push({ type: 'put', sublevel: grants, key: record.info.id, value: record })
    await db.batch(ops as never)
    this.log.info(
      { grant: record.info.id, exp: record.info.exp, keysDeleted: ops.length - 1 },
      'grant expired; keys deleted'
    )
  }

  /** Run `fn` after every change queued before it (one change at a time). */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return run
  }

  private dbs(): {
    db: Db
    grants: Sub<GrantRecord>
    keys: Sub<Uint8Array>
    shards: Sub<string>
    pending: Sub<PendingRevocation>
  } {
    const { db, grantsDb, keysDb, shardsDb, pendingDb } = this
    if (
      db === undefined ||
      grantsDb === undefined ||
      keysDb === undefined ||
      shardsDb === undefined ||
      pendingDb === undefined
    ) {
      throw new StoreClosedError('STORE_CLOSED', `the grant store at ${this.path} is not started`, {
        path: this.path
      })
    }
    return { db, grants: grantsDb, keys: keysDb, shards: shardsDb, pending: pendingDb }
  }
}

/** One operation of an atomic batch over several sublevels (checked by level at run time). */
type BatchOp =
  | { type: 'put'; sublevel: object; key: string; value: unknown }
  | { type: 'del'; sublevel: object; key: string }

/** A copy of a record's public facts. */
function publicInfo(record: GrantRecord): GrantInfo {
  const { info } = record
  const out: GrantInfo = {
    id: info.id,
    dataset: info.dataset,
    shards: [...info.shards],
    grantee: info.grantee,
    purpose: info.purpose,
    iat: info.iat,
    owner: info.owner
  }
  if (info.exp !== undefined) out.exp = info.exp
  if (info.signedExp !== undefined) out.signedExp = info.signedExp
  if (info.revokedAt !== undefined) out.revokedAt = info.revokedAt
  if (info.shardSizes !== undefined) out.shardSizes = { ...info.shardSizes }
  if (info.privacy !== undefined) out.privacy = { ...info.privacy }
  return out
}

/**
 * Ends `record`'s grant at `endsAt` when that is before its current expiry (a revocation with
 * `endsAt`, kept in `shortenings`). Returns whether it changed anything.
 */
function shorten(record: GrantRecord, endsAt: number, jwt: string): boolean {
  const { info } = record
  if (info.exp !== undefined && info.exp <= endsAt) return false
  if (info.signedExp === undefined) info.signedExp = info.exp ?? null
  info.exp = endsAt
  record.shortenings = [...(record.shortenings ?? []), jwt]
  return true
}
