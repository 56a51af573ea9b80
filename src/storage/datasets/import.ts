/**
 * Importing a dataset into the content store, and loading it back by manifest CID.
 *
 * `importDataset` splits a dataset into shards (IID or Dirichlet), encodes each (`SHRD`),
 * stores each encrypted for the owner, signs a manifest listing them, and stores the
 * manifest's JWT as a plain (public) object; every object is pinned. It is all or nothing:
 * when a step fails, what was added is unpinned before the error is rethrown.
 *
 * `importTextDataset` does the same for a text cut into contiguous shards and a held-out tail
 * (text.ts).
 *
 * `loadManifest` reads a stored manifest JWT and verifies it; with `deep: true` it also
 * decrypts and decodes every shard and checks it against its entry.
 */
import { CID } from 'multiformats/cid'
import { logger } from '../../common/index.js'
import type { Identity } from '../../identity/index.js'
import type { ContentStore } from '../content-store.js'
import { dtypeOf, labelCounts, type Dataset } from './dataset.js'
import { DatasetArgumentError, ManifestError } from './errors.js'
import {
  buildManifest,
  checkShardAgainstManifest,
  verifyManifest,
  type BuildManifestInput,
  type DatasetSchema,
  type ManifestBody,
  type ManifestShard,
  type SignedManifest
} from './manifest.js'
import { decodeShard, encodeShard } from './shard-codec.js'
import { shardDirichlet, shardIid } from './split.js'
import { TEXT_SCHEMA, textShard } from './text.js'

const log = logger('shoal:storage:datasets')

/** Largest stored manifest `loadManifest` reads (a JWT; about 150 bytes per shard). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024

/** Options of {@link importDataset}. */
export interface ImportDatasetOptions {
  /** The dataset's name (in the manifest; shards are stored as `<name>/shard-<i>`). */
  name: string
  /** Number of shards. */
  shards: number
  /** IID, or a non-IID Dirichlet(alpha) label split. */
  split: 'iid' | 'dirichlet'
  /** Concentration of the Dirichlet split (required for it): 0.1 very skewed, 100 near IID. */
  alpha?: number
  /** Seed of the split. */
  seed: number
  /** Where the data came from, e.g. `mnist` or a file name (in the manifest). */
  source: string
  signal?: AbortSignal
}

/** One stored shard of an import. */
export interface ImportedShard {
  /** The encrypted object's CID (the envelope). */
  cid: CID
  count: number
  /** Samples per label, `classes` long. */
  labelCounts: number[]
}

/** What {@link importDataset} stored. */
export interface ImportResult {
  manifest: SignedManifest
  /** The CID of the stored manifest JWT (a plain object): the dataset's id. */
  manifestCid: CID
  shards: ImportedShard[]
}

/** A manifest read from the store and verified. */
export interface LoadedManifest extends SignedManifest {
  cid: CID
}

/** Options of {@link loadManifest}. */
export interface LoadManifestOptions {
  /** Also fetch, decrypt and decode every shard and check it against its entry. */
  deep?: boolean
  /**
   * With `deep`: the content key of a shard (e.g. from a grant). When absent, or when it
   * returns undefined, the store unwraps the key with its own identity (the owner's case).
   */
  contentKey?: (shardCid: string) => Promise<Uint8Array | undefined> | Uint8Array | undefined
  /** Refuse a manifest owned by anyone else. */
  expectedOwner?: string
  /** Unix seconds to check the JWT against (default now). */
  now?: number
  signal?: AbortSignal
}

/**
 * Split `ds` into shards, store each encrypted (for the store's identity, which must be
 * `owner`), sign a manifest and store it as a plain object, all pinned.
 *
 * @throws {DatasetArgumentError} `DATASET_ARGUMENT` for a bad split (shards, alpha) or a store
 * whose identity is not `owner`.
 * @throws {ManifestError} `MANIFEST_INVALID` when the manifest would not verify.
 * Whatever fails, nothing added by this call stays pinned.
 */
export async function importDataset(
  store: ContentStore,
  owner: Pick<Identity, 'did' | 'signJwt'>,
  ds: Dataset,
  opts: ImportDatasetOptions
): Promise<ImportResult> {
  const { signal } = opts
  signal?.throwIfAborted()
  let split: number[][]
  if (opts.split === 'iid') {
    split = shardIid(ds, opts.shards, opts.seed)
  } else if (opts.split === 'dirichlet') {
    if (opts.alpha === undefined) {
      throw new DatasetArgumentError('DATASET_ARGUMENT', 'a Dirichlet split needs alpha')
    }
    split = shardDirichlet(ds, opts.shards, opts.alpha, opts.seed)
  } else {
    throw new DatasetArgumentError('DATASET_ARGUMENT', `unknown split "${String(opts.split)}"`)
  }
  const schema = { shape: [...ds.shape], dtype: dtypeOf(ds), classes: ds.classes }
  return storeShards(store, owner, {
    name: opts.name,
    source: opts.source,
    schema,
    split:
      opts.split === 'iid'
        ? { kind: 'iid', seed: opts.seed }
        : { kind: 'dirichlet', alpha: opts.alpha, seed: opts.seed },
    shards: split.map((indices) => () => ({
      bytes: encodeShard(ds, indices),
      entry: { count: indices.length, labelCounts: labelCounts(ds, indices) }
    })),
    count: ds.count,
    signal
  })
}

/** Options of {@link importTextDataset}. */
export interface ImportTextOptions {
  /** The dataset's name (in the manifest; shards are stored as `<name>/shard-<i>`). */
  name: string
  /** Where the text came from, e.g. `moby-dick` or a file name (in the manifest). */
  source: string
  /** The held-out fraction the text was split with (in the manifest's split). */
  heldOut: number
  signal?: AbortSignal
}

/**
 * Store a text split into contiguous shards (byte tokens, see text.ts) and its held-out tail
 * as the last shard (labelled held-out; none when `text.heldOut` is empty), each encrypted for
 * the owner, with a signed manifest whose schema is {@link TEXT_SCHEMA} and whose split is
 * `{ kind: 'contiguous', heldOut }`. All or nothing, as {@link importDataset}.
 *
 * @throws {DatasetArgumentError} `DATASET_ARGUMENT` for no shard, an empty shard, or a store
 * whose identity is not `owner`.
 */
export async function importTextDataset(
  store: ContentStore,
  owner: Pick<Identity, 'did' | 'signJwt'>,
  text: { shards: readonly Uint8Array[]; heldOut: Uint8Array },
  opts: ImportTextOptions
): Promise<ImportResult> {
  if (text.shards.length === 0)
    throw new DatasetArgumentError('DATASET_ARGUMENT', 'a text import needs shards')
  const parts = [
    ...text.shards.map((tokens) => ({ tokens, role: 'train' as const })),
    ...(text.heldOut.length > 0 ? [{ tokens: text.heldOut, role: 'held-out' as const }] : [])
  ]
  return storeShards(store, owner, {
    name: opts.name,
    source: opts.source,
    schema: TEXT_SCHEMA,
    split: { kind: 'contiguous', heldOut: opts.heldOut },
    shards: parts.map(({ tokens, role }) => () => {
      const ds = textShard(tokens, role)
      return { bytes: encodeShard(ds), entry: { count: ds.count, labelCounts: labelCounts(ds) } }
    }),
    count: parts.reduce((n, p) => n + p.tokens.length, 0),
    signal: opts.signal
  })
}

/** What {@link storeShards} stores: each shard made when it is its turn (bytes and manifest entry). */
interface StoreShardsInput {
  name: string
  source: string
  schema: DatasetSchema
  split: BuildManifestInput['split']
  shards: Array<() => { bytes: Uint8Array; entry: { count: number; labelCounts: number[] } }>
  count: number
  signal: AbortSignal | undefined
}

/** Encrypts and pins each shard, signs the manifest and stores it: all or nothing. */
async function storeShards(
  store: ContentStore,
  owner: Pick<Identity, 'did' | 'signJwt'>,
  input: StoreShardsInput
): Promise<ImportResult> {
  const { signal, schema } = input
  const added: CID[] = []
  try {
    const shards: ImportedShard[] = []
    const entries: ManifestShard[] = []
    for (const [i, make] of input.shards.entries()) {
      signal?.throwIfAborted()
      const { bytes, entry } = make()
      // The bytes stored are checked against the entry that will be signed.
      checkShardAgainstManifest({ cid: 'unstored', ...entry }, decodeShard(bytes), schema)
      const { cid } = await store.add(bytes, { name: `${input.name}/shard-${i}`, signal })
      added.push(cid)
      if (i === 0) {
        const { owner: stored } = await store.stat(cid, { signal, offline: true })
        if (stored !== owner.did) {
          throw new DatasetArgumentError(
            'DATASET_ARGUMENT',
            `the content store encrypts for ${String(stored)}, not for the owner ${owner.did}`,
            { storeOwner: stored, owner: owner.did }
          )
        }
      }
      shards.push({ cid, ...entry })
      entries.push({ cid: cid.toString(), ...entry })
    }
    signal?.throwIfAborted()
    const manifest = await buildManifest(owner, {
      name: input.name,
      schema,
      shards: entries,
      source: input.source,
      split: input.split
    })
    await verifyManifest(manifest, { expectedOwner: owner.did })
    signal?.throwIfAborted()
    const stored = await store.add(new TextEncoder().encode(manifest.jwt), {
      plain: true,
      name: `${input.name}/manifest`,
      signal
    })
    added.push(stored.cid)
    log.info(
      {
        dataset: stored.cid.toString(),
        name: input.name,
        shards: shards.length,
        count: input.count,
        split: input.split.kind
      },
      'dataset imported'
    )
    return { manifest, manifestCid: stored.cid, shards }
  } catch (err) {
    for (const cid of added.reverse()) {
      await store.unpin(cid).catch((e: unknown) => {
        log.warn({ cid: cid.toString(), err: e }, 'could not unpin after a failed import')
      })
    }
    if (added.length > 0)
      log.warn({ name: input.name, unpinned: added.length, err }, 'import failed; unpinned what it added')
    throw err
  }
}

/**
 * Read a stored manifest (the plain object holding its JWT) and verify it (see
 * `verifyManifest`). With `deep: true`, fetch, decrypt and decode every shard and check that
 * it is an object encrypted by the manifest's owner and matches its entry.
 *
 * @throws {ManifestError} `MANIFEST_INVALID`: a bad manifest, or (`deep`) a shard that does not
 * decode or does not match its entry (`shard-mismatch`).
 * @throws {NotFoundError} `NOT_FOUND`, `NotAuthorizedError` `NOT_AUTHORIZED`, `IntegrityError`
 * `INTEGRITY` from the content store.
 */
export async function loadManifest(
  store: ContentStore,
  manifestCid: CID | string,
  opts: LoadManifestOptions = {}
): Promise<LoadedManifest> {
  const { signal } = opts
  let cid: CID
  try {
    cid = typeof manifestCid === 'string' ? CID.parse(manifestCid) : manifestCid
  } catch (err) {
    throw new ManifestError(
      'MANIFEST_INVALID',
      `${JSON.stringify(String(manifestCid).slice(0, 100))} is not a manifest CID`,
      { reason: 'schema', manifest: String(manifestCid).slice(0, 100) },
      { cause: err }
    )
  }
  const parts: Uint8Array[] = []
  let size = 0
  for await (const part of store.get(cid, { signal })) {
    size += part.byteLength
    if (size > MAX_MANIFEST_BYTES) {
      throw new ManifestError(
        'MANIFEST_INVALID',
        `manifest ${cid.toString()} is over ${MAX_MANIFEST_BYTES} bytes`,
        {
          reason: 'schema',
          cid: cid.toString()
        }
      )
    }
    parts.push(part)
  }
  let jwt: string
  try {
    jwt = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts, size)).trim()
  } catch (err) {
    throw new ManifestError(
      'MANIFEST_INVALID',
      `manifest ${cid.toString()} is not UTF-8 text`,
      { reason: 'schema', cid: cid.toString() },
      { cause: err }
    )
  }
  const verifyOpts: Parameters<typeof verifyManifest>[1] = {}
  if (opts.expectedOwner !== undefined) verifyOpts.expectedOwner = opts.expectedOwner
  if (opts.now !== undefined) verifyOpts.now = opts.now
  const body = await verifyManifest(jwt, verifyOpts)
  if (opts.deep === true) {
    for (const entry of body.shards) await checkStoredShard(store, body, entry, opts)
  }
  return { cid, body, jwt }
}

async function checkStoredShard(
  store: ContentStore,
  body: ManifestBody,
  entry: ManifestShard,
  opts: LoadManifestOptions
): Promise<void> {
  const { signal } = opts
  const cid = CID.parse(entry.cid)
  const mismatch = (message: string, cause?: unknown): never => {
    throw new ManifestError(
      'MANIFEST_INVALID',
      `manifest refused (shard-mismatch): ${message}`,
      { reason: 'shard-mismatch', cid: entry.cid },
      cause === undefined ? undefined : { cause }
    )
  }
  const st = await store.stat(cid, { signal })
  if (!st.encrypted) mismatch(`shard ${entry.cid} is not an encrypted object`)
  if (st.owner !== body.owner)
    mismatch(`shard ${entry.cid} was encrypted by ${String(st.owner)}, not the owner ${body.owner}`)
  const key = opts.contentKey === undefined ? undefined : await opts.contentKey(entry.cid)
  const parts: Uint8Array[] = []
  for await (const part of store.get(cid, key === undefined ? { signal } : { signal, contentKey: key })) {
    parts.push(part)
  }
  let shard: Dataset
  try {
    shard = decodeShard(new Uint8Array(Buffer.concat(parts)))
  } catch (err) {
    return mismatch(`shard ${entry.cid} does not decode: ${(err as Error).message}`, err)
  }
  checkShardAgainstManifest(entry, shard, body.schema)
}
