/**
 * Grants: access to an encrypted dataset given by its owner to one DID, for one purpose (a
 * job or `any`), until an optional expiry; and revocations that withdraw them. Both are
 * did-jwt JWTs signed by the owner, small enough for one consent gossip message (at most
 * `grantConstants.MAX_DOCUMENT_BYTES`, 24 KiB); a grant carries the shards' content keys in a JWE for the
 * grantee. A document's id is the CIDv1 (raw, sha2-256) of its JWT. `GrantStore` keeps the
 * grants a node knows in a level database and hands out keys only from usable grants;
 * on revocation or expiry it deletes them. See docs/grants.md.
 *
 * @example
 * ```ts
 * import { createGrant, createRevocation, grantId, GrantStore, decryptShard } from './index.js'
 *
 * // Owner: grant shard keys (from the content store) to a trainer, for one job, for a day.
 * const keys = new Map([[shardCid, await ownerStore.contentKey(CID.parse(shardCid))]])
 * const jwt = await createGrant(owner, {
 *   manifest: manifest.body, manifestCid, grantee: trainer.did, purpose: 'job-1',
 *   expiresAt: Math.floor(Date.now() / 1000) + 86_400, keys
 * })
 * // Trainer: keep it, read the shard (fetched over bitswap), later honour a revocation.
 * const grants = new GrantStore({ identity: trainer }, { path: join(home, 'ledger', 'grants') })
 * await grants.start()
 * await grants.addGrant(jwt, manifest.body, { manifestCid })
 * const shard = await decryptShard(trainerStore, grants, shardCid, { purpose: 'job-1' })
 * await grants.addRevocation(await createRevocation(owner, grantId(jwt)))
 * ```
 */
export {
  createGrant,
  verifyGrant,
  openGrant,
  openGrantKeys,
  createRevocation,
  readRevocation,
  verifyRevocation,
  documentId,
  grantId,
  canonicalCid,
  grantStatus,
  GrantClaimsSchema,
  RevocationClaimsSchema,
  PrivacyBudgetSchema,
  type PrivacyBudget,
  type GrantClaims,
  type RevocationClaims,
  type GrantInfo,
  type CreateGrantInput,
  type VerifyGrantOptions,
  type VerifiedGrant,
  type OpenedGrant,
  type VerifiedRevocation,
  type CreateRevocationOptions
} from './documents.js'
export {
  GrantStore,
  type GrantStoreComponents,
  type GrantStoreInit,
  type AddGrantResult,
  type AddRevocationResult,
  type AccessOptions,
  type GrantAccess,
  type ListGrantsOptions
} from './store.js'
export { decryptShard, readGrantedShard, type DecryptShardOptions, type GrantedShard } from './decrypt.js'
export { GrantError, StoreClosedError, type GrantErrorCode, type GrantErrorFields } from './errors.js'
export * as grantConstants from './constants.js'
