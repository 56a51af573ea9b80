/**
 * Datasets and consent on a node: import (encrypt, shard, sign a manifest; images, tables, or a
 * text as byte tokens in contiguous shards with a held-out tail), grants and
 * revocations published on the swarm's consent topic, and the GrantStore that holds the keys
 * granted to this node (deleted at once on revocation or expiry).
 */
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { CID } from 'multiformats/cid'
import { ShoalError, type ErrorCategory, logger, type Logger } from '../common/index.js'
import type { Identity } from '../identity/index.js'
import type { ConsentMessage, SwarmTopics } from '../p2p/index.js'
import { DEFAULT_HELD_OUT, encodeBytes, mobyDick, splitText, textTokens } from '../training/index.js'
import {
  decodeShard,
  fromLabeledImages,
  importDataset,
  importTextDataset,
  joinDatasets,
  loadManifest,
  loadMnist,
  readCsv,
  readIdx,
  toLabeledImages,
  trainTestSplit,
  type Dataset,
  type ImportResult,
  type LabeledImages,
  type ManifestBody,
  GrantStore,
  createGrant,
  createRevocation,
  grantStatus,
  readGrantedShard,
  type GrantInfo,
  type PrivacyBudget,
  type ContentStore
} from '../storage/index.js'
import type { NodeDb } from './db.js'
import type { DatasetRecord } from './records.js'
import type { NodeSwarm } from './swarm.js'

const log = logger('shoal:node:datasets')

/** Thrown for dataset requests this node cannot serve. */
export class DatasetRequestError extends ShoalError<
  'DATASET_NOT_FOUND' | 'DATASET_SOURCE' | 'DATASET_BAD_CID',
  Record<string, unknown>
> {
  static override readonly categories: Record<DatasetRequestError['code'], ErrorCategory> = {
    DATASET_NOT_FOUND: 'not-found',
    DATASET_SOURCE: 'usage',
    DATASET_BAD_CID: 'usage'
  }
}

/** `value` parsed as a CID; `DATASET_BAD_CID` (naming `what`) when it is not one. */
function cidOf(value: string, what: string): CID {
  try {
    return CID.parse(value)
  } catch {
    throw new DatasetRequestError(
      'DATASET_BAD_CID',
      `${what} ${JSON.stringify(value.slice(0, 100))} is not a CID`,
      {
        [what]: value.slice(0, 100)
      }
    )
  }
}

export type { DatasetRecord } from './records.js'

/** An I/O failure reading an import's files (ENOENT, EISDIR, EACCES…) as a named error; others pass. */
function unreadable(err: unknown): never {
  const e = err as NodeJS.ErrnoException
  if (!(err instanceof ShoalError) && typeof e?.code === 'string' && typeof e.syscall === 'string') {
    throw new DatasetRequestError('DATASET_SOURCE', `cannot read ${e.path ?? 'the file'}: ${e.code}`, {
      path: e.path,
      reason: e.code
    })
  }
  throw err
}

export interface ImportRequest {
  /** `text`: a plain-text file (`text`); `moby-dick`: the bundled book. Both as byte tokens. */
  source: 'mnist' | 'idx' | 'csv' | 'text' | 'moby-dick'
  name: string
  shards: number
  /** Images and tables only (a text is always cut into contiguous shards). */
  split: 'iid' | 'dirichlet'
  alpha?: number
  seed?: number
  images?: string
  labels?: string
  csv?: string
  labelColumn?: string | number
  /** mnist only: import the training part of the seeded 8,000/2,000 split (default true). */
  trainOnly?: boolean
  /** text: path of the plain-text file. */
  text?: string
  /** text and moby-dick: the fraction kept at the end as the held-out shard (default 0.05). */
  heldOut?: number
  /** text and moby-dick: import only the first this many bytes of the text. */
  maxBytes?: number
}

/** Largest text file a text import reads (bytes). */
export const MAX_TEXT_IMPORT_BYTES = 256 * 2 ** 20

export interface DatasetsComponents {
  /** The node\'s logger for this service (carries the node id); default: a module logger. */
  log?: Logger
  /**
   * Makes the node's logger for each component this service builds (carries the node id,
   * e.g. `(component) => logger(component, { node })`); default: their module loggers.
   */
  logger?: (component: string) => Logger
  store: ContentStore
  identity: Identity
  db: NodeDb
  swarm: NodeSwarm
  grantsPath: string
}

/** How often grants are checked for expiry (an expired grant is a revoked one). */
const EXPIRY_CHECK_MS = 2_000

export class NodeDatasets {
  private readonly log: Logger
  readonly grants: GrantStore
  private readonly c: DatasetsComponents
  private unsubscribe: (() => void) | undefined
  private topics: SwarmTopics | undefined
  private readonly endedListeners = new Set<(grant: GrantInfo, how: 'revoked' | 'expired') => void>()
  private readonly addedListeners = new Set<(grant: GrantInfo) => void>()
  /** Grants whose end was announced to the listeners since start. */
  private readonly ended = new Set<string>()
  private expiryTimer: ReturnType<typeof setInterval> | undefined

  constructor(c: DatasetsComponents) {
    this.log = c.log ?? log
    this.c = c
    this.grants = new GrantStore(
      { identity: c.identity, log: c.logger?.('shoal:storage:grants') },
      { path: c.grantsPath }
    )
  }

  /** This node's DID (the owner of the grants it issues). */
  get did(): string {
    return this.c.identity.did
  }

  async start(): Promise<void> {
    await this.grants.start()
    this.c.swarm.onEnter((topics) => this.attach(topics))
    this.expiryTimer = setInterval(() => {
      this.checkExpiry().catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message }, 'grant expiry check failed')
      )
    }, EXPIRY_CHECK_MS)
    this.expiryTimer.unref?.()
  }

  /**
   * Called once per grant (per start) when it ends: revoked (a revocation received or issued
   * here) or expired. Jobs unlearn the grant's data when it influenced them.
   */
  onGrantEnded(listener: (grant: GrantInfo, how: 'revoked' | 'expired') => void): () => void {
    this.endedListeners.add(listener)
    return () => this.endedListeners.delete(listener)
  }

  /** Called with each grant stored here: issued by this node, or received (gossip or by hand). */
  onGrantAdded(listener: (grant: GrantInfo) => void): () => void {
    this.addedListeners.add(listener)
    return () => this.addedListeners.delete(listener)
  }

  private notifyAdded(grant: GrantInfo): GrantInfo {
    for (const l of this.addedListeners) l(grant)
    return grant
  }

  private notifyEnded(grant: GrantInfo, how: 'revoked' | 'expired'): void {
    if (this.ended.has(grant.id)) return
    this.ended.add(grant.id)
    this.log.info({ grant: grant.id, dataset: grant.dataset, grantee: grant.grantee, how }, 'grant ended')
    for (const l of this.endedListeners) l(grant, how)
  }

  /** Grants that expired since the last check: their keys are deleted and their end announced. */
  async checkExpiry(now = Math.floor(Date.now() / 1000)): Promise<void> {
    const expired = (await this.grants.list()).filter(
      (g) => g.exp !== undefined && g.exp <= now && !this.ended.has(g.id)
    )
    if (expired.length === 0) return
    await this.grants.sweep({ now })
    for (const g of expired) this.notifyEnded(g, grantStatus(g, now) === 'revoked' ? 'revoked' : 'expired')
  }

  /** Announces the end of a grant that has a revocation (after a revocation or a late grant arrived). */
  private async afterConsent(grantId: string | undefined): Promise<void> {
    if (grantId === undefined) return
    const g = await this.grants.find(grantId)
    if (g?.revokedAt !== undefined) this.notifyEnded(g, 'revoked')
  }

  async stop(): Promise<void> {
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer)
    this.expiryTimer = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
    await this.grants.stop()
  }

  private attach(topics: SwarmTopics): void {
    this.unsubscribe?.()
    this.topics = topics
    this.unsubscribe = this.c.swarm.gossip.subscribe(topics.consent, (msg) => {
      this.onConsent(msg).catch((err: unknown) => {
        this.log.warn(
          { type: msg.type, dataset: msg.dataset, err: (err as Error).message },
          'consent message refused'
        )
      })
    })
  }

  private async onConsent(msg: ConsentMessage): Promise<void> {
    if (msg.document === undefined) return
    if (msg.type === 'grant') {
      const manifest = await loadManifest(this.c.store, msg.dataset, { signal: AbortSignal.timeout(30_000) })
      const r = await this.grants.addGrant(msg.document, manifest)
      this.notifyAdded(r.grant)
      if (r.mine) this.log.info({ grant: r.grant.id, dataset: msg.dataset }, 'received a grant for this node')
      await this.afterConsent(r.grant.id)
    } else {
      const r = await this.grants.addRevocation(msg.document)
      this.log.info({ status: r.status, keysDeleted: r.keysDeleted }, 'revocation applied')
      await this.afterConsent(r.grant)
    }
  }

  private async publish(msg: ConsentMessage): Promise<void> {
    if (this.topics === undefined) return
    await this.c.swarm.gossip.publish(this.topics.consent, msg)
  }

  async readSource(req: ImportRequest): Promise<Dataset> {
    switch (req.source) {
      case 'text':
      case 'moby-dick':
        throw new DatasetRequestError('DATASET_SOURCE', `a ${req.source} import is text: see readText`, {})
      case 'mnist': {
        const all = await loadMnist()
        const set = req.trainOnly === false ? all : trainTestSplit(all, { seed: req.seed ?? 42 }).train
        return fromLabeledImages(set)
      }
      case 'idx':
        if (req.images === undefined || req.labels === undefined) {
          throw new DatasetRequestError('DATASET_SOURCE', 'an idx import needs images and labels paths', {})
        }
        return readIdx(req.images, req.labels).catch(unreadable)
      case 'csv':
        if (req.csv === undefined || req.labelColumn === undefined) {
          throw new DatasetRequestError(
            'DATASET_SOURCE',
            'a csv import needs a csv path and a labelColumn',
            {}
          )
        }
        return readCsv(req.csv, { labelColumn: req.labelColumn }).catch(unreadable)
    }
  }

  /**
   * The byte tokens of a text import: the file's bytes as they are, or the bundled Moby Dick,
   * cut to `maxBytes` when given.
   *
   * @throws {DatasetRequestError} `DATASET_SOURCE` for a missing or unreadable file, no path, or
   * one larger than {@link MAX_TEXT_IMPORT_BYTES}.
   * @throws {TextEmptyError} `TEXT_EMPTY` for an empty text.
   */
  async readText(req: ImportRequest, signal?: AbortSignal): Promise<Uint8Array> {
    let tokens: Uint8Array
    if (req.source === 'moby-dick') {
      tokens = encodeBytes(mobyDick())
    } else {
      if (req.text === undefined) {
        throw new DatasetRequestError('DATASET_SOURCE', 'a text import needs the path of a text file', {})
      }
      const size = (await stat(req.text).catch(unreadable)).size
      if (size > MAX_TEXT_IMPORT_BYTES) {
        throw new DatasetRequestError(
          'DATASET_SOURCE',
          `${req.text} has ${size} bytes, more than a text import reads (${MAX_TEXT_IMPORT_BYTES})`,
          { path: req.text, reason: 'too-large', bytes: size }
        )
      }
      const bytes = await readFile(req.text, signal === undefined ? {} : { signal }).catch(unreadable)
      tokens = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    }
    if (req.maxBytes !== undefined) tokens = tokens.subarray(0, req.maxBytes)
    return textTokens(tokens, req.source === 'text' ? basename(req.text!) : req.source)
  }

  /**
   * Import a text: byte tokens cut into `shards` contiguous shards and a held-out tail
   * (`splitText`), stored as a text dataset (`importTextDataset`: kind `text`, tokenizer `bytes`).
   *
   * @throws {TextEmptyError} `TEXT_EMPTY` for an empty text, or one too short for `shards` shards.
   * @throws {TextInputError} `TEXT_INVALID` for a shard count < 1 or a held-out fraction outside [0, 1).
   */
  private async importText(req: ImportRequest, signal?: AbortSignal): Promise<DatasetRecord> {
    const tokens = await this.readText(req, signal)
    const heldOut = req.heldOut ?? DEFAULT_HELD_OUT
    const split = splitText(tokens, { shards: req.shards, heldOut })
    const r = await importTextDataset(this.c.store, this.c.identity, split, {
      name: req.name,
      source: req.source === 'text' ? basename(req.text!) : req.source,
      heldOut,
      signal
    })
    return this.record(req, r, `contiguous(held-out ${heldOut})`)
  }

  async import(req: ImportRequest, signal?: AbortSignal): Promise<DatasetRecord> {
    if (req.source === 'text' || req.source === 'moby-dick') return this.importText(req, signal)
    const ds = await this.readSource(req)
    const r = await importDataset(this.c.store, this.c.identity, ds, {
      name: req.name,
      shards: req.shards,
      split: req.split,
      alpha: req.alpha,
      seed: req.seed ?? 42,
      source: req.source,
      signal
    })
    return this.record(req, r, req.split === 'dirichlet' ? `dirichlet(${req.alpha})` : 'iid')
  }

  private async record(req: ImportRequest, r: ImportResult, split: string): Promise<DatasetRecord> {
    const record: DatasetRecord = {
      manifestCid: r.manifestCid.toString(),
      name: req.name,
      owner: this.c.identity.did,
      count: r.manifest.body.count,
      shards: r.shards.map((s) => ({ cid: s.cid.toString(), count: s.count, labelCounts: s.labelCounts })),
      split,
      createdAt: new Date().toISOString()
    }
    await this.c.db.put('datasets', record.manifestCid, record)
    return record
  }

  async list(): Promise<DatasetRecord[]> {
    return this.c.db.list('datasets')
  }

  private async owned(manifestCid: string): Promise<{ record: DatasetRecord; manifest: ManifestBody }> {
    const record = await this.c.db.get('datasets', cidOf(manifestCid, 'dataset').toString())
    if (record === undefined) {
      throw new DatasetRequestError('DATASET_NOT_FOUND', `this node owns no dataset ${manifestCid}`, {
        dataset: manifestCid
      })
    }
    const manifest = await loadManifest(this.c.store, record.manifestCid)
    return { record, manifest: manifest.body }
  }

  /** Grant `grantee` the keys of some (default all) shards; publishes the grant on the consent topic. */
  async grant(req: {
    dataset: string
    grantee: string
    purpose?: string
    expiresAt?: number
    shards?: string[]
    privacy?: PrivacyBudget
  }): Promise<{ grant: string; document: string }> {
    const { record, manifest } = await this.owned(req.dataset)
    const shardCids = req.shards ?? record.shards.map((s) => s.cid)
    const keys = new Map<string, Uint8Array>()
    for (const cid of shardCids) keys.set(cid, await this.c.store.contentKey(cidOf(cid, 'shard')))
    const jwt = await createGrant(this.c.identity, {
      manifest,
      manifestCid: record.manifestCid,
      grantee: req.grantee,
      purpose: req.purpose ?? 'any',
      expiresAt: req.expiresAt,
      ...(req.privacy !== undefined ? { privacy: req.privacy } : {}),
      keys
    })
    const added = await this.grants.addGrant(jwt, manifest, { manifestCid: record.manifestCid })
    this.notifyAdded(added.grant)
    await this.publish({ type: 'grant', dataset: record.manifestCid, document: jwt })
    return { grant: added.grant.id, document: jwt }
  }

  /** Add a grant document received out of band (e.g. when this node was offline). */
  async addGrantDocument(jwt: string, dataset: string): Promise<GrantInfo> {
    const manifest = await loadManifest(this.c.store, dataset, { signal: AbortSignal.timeout(30_000) })
    return this.notifyAdded((await this.grants.addGrant(jwt, manifest)).grant)
  }

  async revoke(
    grantId: string,
    reason?: string
  ): Promise<{ grant: string; document: string; keysDeleted: number }> {
    const info = await this.grants.find(grantId)
    if (info === undefined) {
      throw new DatasetRequestError('DATASET_NOT_FOUND', `no grant ${grantId} on this node`, {
        grant: grantId
      })
    }
    const jwt = await createRevocation(this.c.identity, info.id, { reason, dataset: info.dataset })
    const r = await this.grants.addRevocation(jwt)
    await this.publish({ type: 'revoke', dataset: info.dataset, document: jwt })
    await this.afterConsent(info.id)
    return { grant: info.id, document: jwt, keysDeleted: r.keysDeleted }
  }

  /**
   * Shortens a grant this node issued: a revocation with `endsAt` (signed, published on the
   * consent topic) makes it end then instead of at its own expiry; nothing ends before then.
   *
   * @throws {DatasetRequestError} `DATASET_NOT_FOUND` when this node knows no such grant.
   * @throws {GrantError} `REVOCATION_INVALID` when `endsAt` is not in the future, or this node is not its owner.
   */
  async shorten(
    grantId: string,
    endsAt: number,
    reason?: string
  ): Promise<{ grant: string; document: string; shortened: boolean }> {
    const info = await this.grants.find(grantId)
    if (info === undefined) {
      throw new DatasetRequestError('DATASET_NOT_FOUND', `no grant ${grantId} on this node`, {
        grant: grantId
      })
    }
    const jwt = await createRevocation(this.c.identity, info.id, {
      dataset: info.dataset,
      endsAt,
      ...(reason !== undefined ? { reason } : {})
    })
    const r = await this.grants.addRevocation(jwt)
    if (r.status === 'shortened') await this.publish({ type: 'revoke', dataset: info.dataset, document: jwt })
    return { grant: info.id, document: jwt, shortened: r.status === 'shortened' }
  }

  /** Decrypt a granted shard (fetching the ciphertext over bitswap when it is remote). */
  async readShard(shardCid: string, purpose: string, signal?: AbortSignal): Promise<Dataset> {
    const r = await readGrantedShard(this.c.store, this.grants, shardCid, { purpose, signal })
    return r.dataset
  }

  /**
   * The shards of a dataset this node knows (all of them when it owns it, else those granted
   * to anyone in its grant store) and the privacy budgets its grants set.
   *
   * @throws {DatasetRequestError} `DATASET_NOT_FOUND` when it knows neither the dataset nor a grant of it.
   */
  async privacyScope(dataset: string): Promise<{ shards: string[]; budgets: PrivacyBudget[] }> {
    let cid: string
    try {
      cid = CID.parse(dataset).toString()
    } catch {
      throw new DatasetRequestError('DATASET_NOT_FOUND', `${dataset} is not a dataset CID`, { dataset })
    }
    const owned = await this.c.db.get('datasets', cid)
    const grants = await this.grants.list({ dataset: cid })
    if (owned === undefined && grants.length === 0) {
      throw new DatasetRequestError('DATASET_NOT_FOUND', `this node knows no dataset ${dataset}`, { dataset })
    }
    const shards =
      owned !== undefined ? owned.shards.map((s) => s.cid) : [...new Set(grants.flatMap((g) => g.shards))]
    const budgets = grants.flatMap((g) => (g.privacy === undefined ? [] : [g.privacy]))
    return { shards, budgets }
  }

  /**
   * Every shard of a dataset this node owns, decrypted with its own keys and joined, as
   * images (for a personal model trained on one's own data).
   *
   * @throws {DatasetRequestError} `DATASET_NOT_FOUND` when this node does not own it.
   */
  async readOwned(manifestCid: string, signal?: AbortSignal): Promise<LabeledImages> {
    const { record } = await this.owned(manifestCid)
    const parts: Dataset[] = []
    for (const s of record.shards) parts.push(await this.readAny(s.cid, 'any', signal))
    return toLabeledImages(joinDatasets(parts))
  }

  /** The dataset this node owns that holds `shardCid`, if any. */
  private async ownerOf(shardCid: string): Promise<DatasetRecord | undefined> {
    const cid = cidOf(shardCid, 'shard').toString()
    return (await this.list()).find((d) => d.shards.some((s) => s.cid === cid))
  }

  /**
   * Whether this node can read `shardCid` for `purpose` now: it owns the dataset, or holds a
   * grant to it (for the purpose or `any`) that is neither expired nor revoked.
   */
  async canRead(shardCid: string, purpose: string, now = Math.floor(Date.now() / 1000)): Promise<boolean> {
    if ((await this.ownerOf(shardCid)) !== undefined) return true
    const grants = await this.grants.list({ shard: shardCid, grantee: this.c.identity.did })
    return grants.some(
      (g) => (g.purpose === 'any' || g.purpose === purpose) && grantStatus(g, now) === 'valid'
    )
  }

  /** Decrypt a shard this node owns (with its own key) or holds a grant to (see {@link readShard}). */
  async readAny(shardCid: string, purpose: string, signal?: AbortSignal): Promise<Dataset> {
    if ((await this.ownerOf(shardCid)) === undefined) return this.readShard(shardCid, purpose, signal)
    const parts: Uint8Array[] = []
    for await (const part of this.c.store.get(CID.parse(shardCid), signal === undefined ? {} : { signal })) {
      parts.push(part)
    }
    const joined = Buffer.concat(parts)
    return decodeShard(new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength))
  }
}
