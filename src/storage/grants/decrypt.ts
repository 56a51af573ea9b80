/**
 * Reading a granted shard: the content key from a grant, the ciphertext from the content
 * store (over bitswap when it is not local), then decryption and decoding.
 */
import { CID } from 'multiformats/cid'
import { logger } from '../../common/index.js'
import type { ContentStore } from '../content-store.js'
import { checkShardAgainstManifest, decodeShard, type Dataset } from '../datasets/index.js'
import { canonicalCid, type GrantInfo } from './documents.js'
import { GrantError } from './errors.js'
import type { GrantStore } from './store.js'

const log = logger('shoal:storage:grants')

/** Options of {@link decryptShard}. */
export interface DecryptShardOptions {
  /** The job the data is for; grants for this job or for `any` qualify. */
  purpose: string
  signal?: AbortSignal
  /** Unix seconds to check the grant's expiry against (default now). */
  now?: number
}

/** A decrypted shard and the grant that allowed it (what a receipt names). */
export interface GrantedShard {
  dataset: Dataset
  grant: GrantInfo
}

/**
 * Fetch, decrypt and decode a shard with the key of a grant to this node, and check it
 * against its manifest entry (count, label counts, shape, dtype, classes).
 *
 * @throws {GrantError} `GRANT_REVOKED`, `GRANT_EXPIRED`, `GRANT_MISSING` (see `GrantStore.keyFor`).
 * @throws {NotFoundError} `NOT_FOUND` when the shard cannot be fetched in time.
 * @throws {NotAuthorizedError} `NOT_AUTHORIZED` when the granted key does not fit the object.
 * @throws {IntegrityError} `INTEGRITY` when the ciphertext fails authentication.
 * @throws {ShardError} `SHARD_INVALID` when the plaintext is not a shard.
 * @throws {ManifestError} `MANIFEST_INVALID` (`shard-mismatch`) when it differs from its manifest entry.
 */
export async function readGrantedShard(
  store: Pick<ContentStore, 'get'>,
  grants: Pick<GrantStore, 'access'>,
  shard: string | CID,
  opts: DecryptShardOptions
): Promise<GrantedShard> {
  const cid = canonicalCid(shard)
  if (cid === undefined) {
    throw new GrantError('GRANT_MISSING', `${String(shard)} is not a shard CID`, { shard: String(shard) })
  }
  opts.signal?.throwIfAborted()
  const access = await grants.access(cid, opts)
  const parts: Uint8Array[] = []
  let size = 0
  try {
    for await (const part of store.get(CID.parse(cid), { contentKey: access.key, signal: opts.signal })) {
      parts.push(part)
      size += part.byteLength
    }
  } finally {
    access.key.fill(0)
  }
  const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
  // A plain Uint8Array view (the decoded arrays are slices of it, and callers compare them).
  const bytes = new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength)
  const dataset = decodeShard(bytes)
  checkShardAgainstManifest(access.entry, dataset, access.schema)
  log.debug({ shard: cid, grant: access.grant.id, count: dataset.count }, 'decrypted a granted shard')
  return { dataset, grant: access.grant }
}

/**
 * Fetch, decrypt and decode a shard with the key of a grant to this node (see
 * {@link readGrantedShard}, which also says which grant was used).
 */
export async function decryptShard(
  store: Pick<ContentStore, 'get'>,
  grants: Pick<GrantStore, 'access'>,
  shard: string | CID,
  opts: DecryptShardOptions
): Promise<Dataset> {
  return (await readGrantedShard(store, grants, shard, opts)).dataset
}
