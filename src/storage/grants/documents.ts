/**
 * Grant and revocation documents: did-jwt JWTs (EdDSA) signed by a dataset's owner.
 *
 * A grant gives one DID the content keys of some shards of one dataset, for one purpose (a
 * job id, or `any`), until an optional `exp`. Claims:
 * ```
 * { typ: 'shoal/grant', iss: owner, iat, exp?, dataset: manifestCid, shards: [shardCid…],
 *   grantee: did, purpose: jobId | 'any', keys: JWE }
 * ```
 * `keys` is a JWE (ECDH-ES+XC20PKW, XChaCha20-Poly1305) addressed to the grantee only. Its
 * plaintext is the shards' 32-byte content keys concatenated in the order of `shards`.
 *
 * A revocation withdraws one grant: `{ typ: 'shoal/revocation', iss: owner, iat,
 * grant: grantId, dataset?, reason?, endsAt? }`, valid only when signed by the grant's owner.
 * Without `endsAt` it takes effect at once (at its `iat`); with `endsAt` (Unix seconds, after
 * `iat`) it shortens the grant: the grant ends at `endsAt` as if that were its `exp` (the
 * earliest of the two holds; a later `endsAt` changes nothing — a signed expiry cannot be
 * extended).
 *
 * A document's id is the CIDv1 of its JWT's UTF-8 bytes (raw codec, sha2-256), as a base32
 * string (`bafkrei…`): the same CID the JWT gets when stored as a plain object, so a consent
 * message can name a grant by CID. See docs/grants.md.
 */
import { CidString, DidKeyString, rawCid } from '../../common/index.js'
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import {
  encryptForDids,
  publicKeyFromDid,
  verifyJwt,
  type Identity,
  type JWE,
  type VerifiedJwt
} from '../../identity/index.js'
import type { DatasetSchema, LoadedManifest, ManifestBody, ManifestShard } from '../datasets/index.js'
import {
  GRANT_KEY_BYTES,
  GRANT_TYPE,
  MAX_DOCUMENT_BYTES,
  MAX_GRANT_SHARDS,
  MAX_REASON_LENGTH,
  PURPOSE_ANY,
  PURPOSE_PATTERN,
  REVOCATION_TYPE
} from './constants.js'
import { GrantError, type GrantErrorCode } from './errors.js'

/** The id of a grant or revocation: CIDv1 (raw, sha2-256) of the JWT's UTF-8 bytes, base32. */
export function documentId(jwt: string): string {
  return rawCid(jwt)
}

/** The id of a grant: see {@link documentId}. */
export const grantId = documentId

/** A CID in canonical string form (CIDv1, base32), or undefined when `s` is not a CID. */
export function canonicalCid(s: string | CID): string | undefined {
  try {
    return (typeof s === 'string' ? CID.parse(s) : s).toV1().toString()
  } catch {
    return undefined
  }
}

const cidString = CidString
const didString = DidKeyString
const unixSeconds = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

const JweSchema = z.looseObject({
  protected: z.string(),
  iv: z.string(),
  ciphertext: z.string(),
  tag: z.string(),
  aad: z.string().optional(),
  recipients: z
    .array(z.looseObject({ encrypted_key: z.string(), header: z.looseObject({}) }))
    .min(1)
    .max(8)
    .optional()
})

/**
 * The owner's differential-privacy budget for what grantees share about the data: training on
 * it stops once the (ε, δ) of the updates shared from it would exceed `epsMax` at `delta`.
 */
export const PrivacyBudgetSchema = z.object({
  epsMax: z.number().positive().max(1e6),
  delta: z.number().gt(0).lt(1)
})
export type PrivacyBudget = z.infer<typeof PrivacyBudgetSchema>

/** Zod schema of a grant's claims (unknown claims are allowed and ignored). */
export const GrantClaimsSchema = z
  .looseObject({
    typ: z.literal(GRANT_TYPE),
    iss: didString,
    iat: unixSeconds,
    exp: unixSeconds.optional(),
    dataset: cidString,
    shards: z.array(cidString).min(1).max(MAX_GRANT_SHARDS),
    grantee: didString,
    purpose: z.string().regex(PURPOSE_PATTERN, 'not a job id or "any"'),
    keys: JweSchema,
    privacy: PrivacyBudgetSchema.optional()
  })
  .refine((c) => c.exp === undefined || c.exp > c.iat, 'exp must be after iat')

/** Zod schema of a revocation's claims. */
export const RevocationClaimsSchema = z.looseObject({
  typ: z.literal(REVOCATION_TYPE),
  iss: didString,
  iat: unixSeconds,
  grant: cidString,
  dataset: cidString.optional(),
  reason: z.string().max(MAX_REASON_LENGTH).optional(),
  endsAt: unixSeconds.optional()
})

/** The claims of a grant. */
export interface GrantClaims {
  typ: typeof GRANT_TYPE
  /** The dataset owner who signed it. */
  iss: string
  iat: number
  exp?: number
  /** The dataset's manifest CID. */
  dataset: string
  /** The shard CIDs covered, in the order of the keys in the JWE. */
  shards: string[]
  grantee: string
  /** A job id, or `any`. */
  purpose: string
  /** The shards' content keys, encrypted for the grantee. */
  keys: JWE
  /** The owner's privacy budget for training on the shards. */
  privacy?: PrivacyBudget
}

/** The claims of a revocation. */
export interface RevocationClaims {
  typ: typeof REVOCATION_TYPE
  iss: string
  iat: number
  /** The id of the revoked grant. */
  grant: string
  dataset?: string
  reason?: string
  /** When set: the grant ends then (a shortened expiry), not at once. */
  endsAt?: number
}

/**
 * What is known of a grant from its signed document and its revocation, if any. This is the
 * shape the receipts module's `GrantLookup.find` expects.
 */
export interface GrantInfo {
  /** The grant's id ({@link grantId}). */
  id: string
  /** The dataset's manifest CID. */
  dataset: string
  /** The shard CIDs covered. */
  shards: string[]
  /** The DID allowed to use them. */
  grantee: string
  /** A job id, or `any`. */
  purpose: string
  /** When the grant was issued (Unix seconds). */
  iat: number
  /**
   * When it expires (Unix seconds); usable while `now < exp`. The earliest of the grant's own
   * `exp` and the `endsAt` of its owner's revocations that shorten it.
   */
  exp?: number
  /** The grant's own `exp` when a revocation with `endsAt` shortened it (absent: no expiry). */
  signedExp?: number | null
  /** When it was revoked: the revocation's `iat` (Unix seconds). */
  revokedAt?: number
  /** The dataset owner (the grant's signer). */
  owner: string
  /** Samples per granted shard, from the dataset's signed manifest. */
  shardSizes?: Record<string, number>
  /** The owner's privacy budget for training on these shards, if it set one. */
  privacy?: PrivacyBudget
}

/**
 * Whether a grant is in force at `now` (Unix seconds): `revoked` (a revocation was applied)
 * before `expired` (`now ≥ exp`), else `valid`.
 */
export function grantStatus(
  grant: Pick<GrantInfo, 'revokedAt' | 'exp'>,
  now = Math.floor(Date.now() / 1000)
): 'valid' | 'revoked' | 'expired' {
  if (grant.revokedAt !== undefined) return 'revoked'
  return grant.exp !== undefined && now >= grant.exp ? 'expired' : 'valid'
}

/** What {@link createGrant} needs. */
export interface CreateGrantInput {
  /** The dataset's verified manifest body; its owner must be the signer. */
  manifest: ManifestBody
  /** The CID of the stored manifest (what the grant names as `dataset`). */
  manifestCid: CID | string
  /** The did:key allowed to read the shards. */
  grantee: string
  /** A job id, or `any`. */
  purpose: string
  /** Expiry, Unix seconds (must be in the future). None: valid until revoked. */
  expiresAt?: number
  /** A privacy budget (ε_max at δ) for training on the shards. None: no budget. */
  privacy?: PrivacyBudget
  /** The content key of each granted shard, by shard CID (each shard must be in the manifest). */
  keys: ReadonlyMap<string, Uint8Array>
}

/** Options of {@link verifyGrant} and {@link openGrant}. */
export interface VerifyGrantOptions {
  /**
   * The dataset's manifest: its owner must have signed the grant. Either a verified body, or
   * a manifest from `loadManifest` (then the grant's `dataset` must be its CID).
   */
  manifest: ManifestBody | LoadedManifest
  /** When given, the grant's `dataset` must be this CID. */
  manifestCid?: CID | string
  /** Unix seconds to check expiry against (default now). */
  now?: number
}

/** A grant whose signature, signer and shards were checked (its keys are still sealed). */
export interface VerifiedGrant {
  id: string
  claims: GrantClaims
  /** Whether `exp` has passed at `now`. */
  expired: boolean
  info: GrantInfo
  /** The manifest entries of the granted shards, in the order of `claims.shards`. */
  entries: ManifestShard[]
  /** The dataset's schema, from the manifest. */
  schema: DatasetSchema
}

/** A grant opened by its grantee. */
export interface OpenedGrant {
  id: string
  claims: GrantClaims
  /** Content key by shard CID. Secrets: zero them when done. */
  keys: Map<string, Uint8Array>
}

/** A revocation checked against its grant. */
export interface VerifiedRevocation {
  /** The revocation's own id ({@link documentId}). */
  id: string
  claims: RevocationClaims
  /** The revoked grant's id. */
  grant: string
  issuer: string
  /** When it was issued (Unix seconds): the grant's `revokedAt` (unless it has `endsAt`). */
  revokedAt: number
  reason?: string
  /** When set, the revocation shortens the grant to end then instead of at once. */
  endsAt?: number
}

function fail(
  code: GrantErrorCode,
  message: string,
  fields: Record<string, unknown> = {},
  cause?: unknown
): never {
  throw new GrantError(code, message, fields, cause === undefined ? undefined : { cause })
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** The payload of a compact JWT, without checking anything; undefined when it does not decode. */
function peekPayload(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.')
  if (parts.length !== 3 || parts[1] === undefined) return undefined
  try {
    const value: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Check a document's size and form, then its signature. `exp` is checked by the callers
 * (strictly, without skew), so the signature is verified at a time before `exp`: an expired
 * document must still prove who signed it before it is reported as expired.
 */
async function verifyDocument<T>(
  jwt: string,
  typ: string,
  schema: z.ZodType<T>,
  code: 'GRANT_INVALID' | 'REVOCATION_INVALID',
  now: number
): Promise<{ claims: T; verified: VerifiedJwt; id: string }> {
  const what = code === 'GRANT_INVALID' ? 'grant' : 'revocation'
  if (typeof jwt !== 'string' || jwt.length > MAX_DOCUMENT_BYTES) {
    fail(code, `${what} is not a JWT of at most ${MAX_DOCUMENT_BYTES} characters`, { reason: 'too-large' })
  }
  const id = documentId(jwt)
  const payload = peekPayload(jwt)
  if (payload === undefined) fail(code, `${what} ${id} is not a compact JWT`, { reason: 'schema', grant: id })
  const parsed = schema.safeParse(payload)
  if (!parsed.success) {
    const reason = payload.typ === typ ? 'schema' : 'type'
    fail(code, `${what} ${id} refused: ${z.prettifyError(parsed.error)}`, { reason, grant: id })
  }
  const exp = (parsed.data as { exp?: number }).exp
  const at = exp === undefined ? now : Math.min(now, exp - 1)
  let verified: VerifiedJwt
  try {
    verified = await verifyJwt(jwt, { now: at })
  } catch (err) {
    const jwtReason = (err as { fields?: { reason?: unknown } }).fields?.reason
    fail(
      code,
      `${what} ${id} refused: ${(err as Error).message}`,
      { reason: 'signature', jwtReason, grant: id },
      err
    )
  }
  return { claims: parsed.data, verified, id }
}

/**
 * Sign a grant as the dataset's owner: the content keys of the shards in `input.keys`,
 * encrypted for `input.grantee`, for `input.purpose`, until `input.expiresAt` if given.
 * Shards are listed in manifest order. Returns the JWT; its id is {@link grantId}.
 *
 * @throws {GrantError} `GRANT_NOT_OWNER` when `owner` is not the manifest's owner;
 * `GRANT_INVALID` (`reason`: `grantee`, `purpose`, `exp`, `shards`, `keys`, `too-large`) when the
 * input is unusable: a bad DID or purpose, an expiry not in the future, no shards, more than
 * {@link MAX_GRANT_SHARDS}, a shard not in the manifest, or a key that is not 32 bytes.
 */
export async function createGrant(
  owner: Pick<Identity, 'did' | 'signJwt'>,
  input: CreateGrantInput
): Promise<string> {
  const { manifest } = input
  if (owner.did !== manifest.owner) {
    fail(
      'GRANT_NOT_OWNER',
      `${owner.did} cannot grant dataset "${manifest.name}": its owner is ${manifest.owner}`,
      {
        signer: owner.did,
        owner: manifest.owner
      }
    )
  }
  const dataset = canonicalCid(input.manifestCid)
  if (dataset === undefined) fail('GRANT_INVALID', 'manifestCid is not a CID', { reason: 'dataset' })
  try {
    publicKeyFromDid(input.grantee)
  } catch (err) {
    fail('GRANT_INVALID', `grantee: ${(err as Error).message}`, { reason: 'grantee' }, err)
  }
  if (typeof input.purpose !== 'string' || !PURPOSE_PATTERN.test(input.purpose)) {
    fail('GRANT_INVALID', `purpose must be a job id or "${PURPOSE_ANY}"`, { reason: 'purpose' })
  }
  const iat = nowSeconds()
  if (input.expiresAt !== undefined && !(Number.isSafeInteger(input.expiresAt) && input.expiresAt > iat)) {
    fail('GRANT_INVALID', `expiresAt must be a whole number of Unix seconds after now (${iat})`, {
      reason: 'exp',
      exp: input.expiresAt
    })
  }
  if (input.keys.size === 0 || input.keys.size > MAX_GRANT_SHARDS) {
    fail('GRANT_INVALID', `a grant covers 1 to ${MAX_GRANT_SHARDS} shards, got ${input.keys.size}`, {
      reason: 'shards'
    })
  }
  const keys = new Map<string, Uint8Array>()
  for (const [cid, key] of input.keys) {
    const c = canonicalCid(cid)
    if (c === undefined) fail('GRANT_INVALID', `shard ${String(cid)} is not a CID`, { reason: 'shards' })
    if (!(key instanceof Uint8Array) || key.byteLength !== GRANT_KEY_BYTES) {
      fail('GRANT_INVALID', `the key of shard ${c} is not ${GRANT_KEY_BYTES} bytes`, {
        reason: 'keys',
        shard: c
      })
    }
    keys.set(c, key)
  }
  const shards: string[] = []
  for (const entry of manifest.shards) {
    const c = canonicalCid(entry.cid)
    if (c !== undefined && keys.has(c)) shards.push(c)
  }
  if (shards.length !== keys.size) {
    const stray = [...keys.keys()].filter((c) => !shards.includes(c))
    fail('GRANT_INVALID', `shard ${stray[0]} is not in dataset "${manifest.name}"`, {
      reason: 'shards',
      shard: stray[0]
    })
  }
  const plain = new Uint8Array(shards.length * GRANT_KEY_BYTES)
  shards.forEach((c, i) => plain.set(keys.get(c)!, i * GRANT_KEY_BYTES))
  let jwe: JWE
  try {
    jwe = await encryptForDids(plain, [input.grantee])
  } finally {
    plain.fill(0)
  }
  const payload: Record<string, unknown> = {
    typ: GRANT_TYPE,
    dataset,
    shards,
    grantee: input.grantee,
    purpose: input.purpose,
    keys: jwe
  }
  if (input.expiresAt !== undefined) payload.exp = input.expiresAt
  if (input.privacy !== undefined) {
    const budget = PrivacyBudgetSchema.safeParse(input.privacy)
    if (!budget.success) {
      fail('GRANT_INVALID', `privacy budget: ${z.prettifyError(budget.error)}`, { reason: 'privacy' })
    }
    payload.privacy = budget.data
  }
  const jwt = await owner.signJwt(payload)
  if (jwt.length > MAX_DOCUMENT_BYTES) {
    fail(
      'GRANT_INVALID',
      `the grant is ${jwt.length} characters, over ${MAX_DOCUMENT_BYTES}: grant fewer shards`,
      {
        reason: 'too-large'
      }
    )
  }
  return jwt
}

/**
 * Verify a grant without opening it (anyone can): form and size, the owner's signature,
 * signer == the manifest's owner, `dataset` == `opts.manifestCid` (when given), and every
 * shard in the manifest (no duplicates). Expiry is reported, not refused.
 *
 * @throws {GrantError} `GRANT_INVALID` (`reason`: `too-large`, `type`, `schema`, `signature`,
 * `dataset`, `shards`); `GRANT_NOT_OWNER` when someone other than the manifest's owner signed it.
 */
export async function verifyGrant(jwt: string, opts: VerifyGrantOptions): Promise<VerifiedGrant> {
  const now = opts.now ?? nowSeconds()
  const {
    claims: raw,
    verified,
    id
  } = await verifyDocument(jwt, GRANT_TYPE, GrantClaimsSchema, 'GRANT_INVALID', now)
  const claims = raw as unknown as GrantClaims
  const loaded = 'body' in opts.manifest ? opts.manifest : undefined
  const manifest = loaded === undefined ? (opts.manifest as ManifestBody) : loaded.body
  if (verified.issuer !== manifest.owner) {
    fail(
      'GRANT_NOT_OWNER',
      `grant ${id} is signed by ${verified.issuer}, but dataset "${manifest.name}" is owned by ${manifest.owner}`,
      { grant: id, signer: verified.issuer, owner: manifest.owner }
    )
  }
  const dataset = canonicalCid(claims.dataset)!
  for (const expected of [opts.manifestCid, loaded?.cid]) {
    if (expected !== undefined && canonicalCid(expected) !== dataset) {
      fail('GRANT_INVALID', `grant ${id} is for dataset ${claims.dataset}, not ${String(expected)}`, {
        reason: 'dataset',
        grant: id
      })
    }
  }
  const byCid = new Map<string, ManifestShard>()
  for (const entry of manifest.shards) byCid.set(canonicalCid(entry.cid)!, entry)
  const shards: string[] = []
  const entries: ManifestShard[] = []
  for (const s of claims.shards) {
    const c = canonicalCid(s)!
    const entry = byCid.get(c)
    if (entry === undefined) {
      fail('GRANT_INVALID', `grant ${id} covers shard ${s}, which is not in dataset "${manifest.name}"`, {
        reason: 'shards',
        grant: id,
        shard: s
      })
    }
    if (shards.includes(c)) {
      fail('GRANT_INVALID', `grant ${id} lists shard ${s} twice`, { reason: 'shards', grant: id, shard: s })
    }
    shards.push(c)
    entries.push(entry)
  }
  const info: GrantInfo = {
    id,
    dataset,
    shards,
    grantee: claims.grantee,
    purpose: claims.purpose,
    iat: claims.iat,
    owner: verified.issuer,
    shardSizes: Object.fromEntries(shards.map((c, i) => [c, entries[i]!.count]))
  }
  if (claims.exp !== undefined) info.exp = claims.exp
  if (claims.privacy !== undefined) info.privacy = claims.privacy
  return {
    id,
    claims: { ...claims, dataset, shards },
    expired: claims.exp !== undefined && now >= claims.exp,
    info,
    entries,
    schema: manifest.schema
  }
}

/**
 * Decrypt a verified grant's keys as its grantee.
 *
 * @throws {GrantError} `GRANT_NOT_FOR_YOU` when `grantee` is not the grant's grantee;
 * `GRANT_INVALID` (`reason: 'keys'`) when the JWE does not open or holds the wrong number of bytes.
 */
export async function openGrantKeys(
  grantee: Pick<Identity, 'did' | 'decryptJwe'>,
  grant: Pick<VerifiedGrant, 'id' | 'claims'>
): Promise<Map<string, Uint8Array>> {
  const { id, claims } = grant
  if (claims.grantee !== grantee.did) {
    fail('GRANT_NOT_FOR_YOU', `grant ${id} is for ${claims.grantee}, not ${grantee.did}`, {
      grant: id,
      grantee: claims.grantee,
      did: grantee.did
    })
  }
  let plain: Uint8Array
  try {
    plain = await grantee.decryptJwe(claims.keys)
  } catch (err) {
    fail(
      'GRANT_INVALID',
      `the keys of grant ${id} cannot be decrypted: ${(err as Error).message}`,
      {
        reason: 'keys',
        grant: id
      },
      err
    )
  }
  try {
    if (plain.byteLength !== claims.shards.length * GRANT_KEY_BYTES) {
      fail(
        'GRANT_INVALID',
        `grant ${id} holds ${plain.byteLength} key bytes for ${claims.shards.length} shards`,
        {
          reason: 'keys',
          grant: id
        }
      )
    }
    const keys = new Map<string, Uint8Array>()
    claims.shards.forEach((c, i) => keys.set(c, plain.slice(i * GRANT_KEY_BYTES, (i + 1) * GRANT_KEY_BYTES)))
    return keys
  } finally {
    plain.fill(0)
  }
}

/**
 * Verify and open a grant as its grantee: signature, signer == the manifest's owner, grantee
 * == `grantee.did`, not expired at `opts.now`, shards ⊆ the manifest's; then decrypt the keys.
 *
 * @throws {GrantError} `GRANT_INVALID`, `GRANT_NOT_OWNER`, `GRANT_NOT_FOR_YOU`, `GRANT_EXPIRED`
 * (see {@link verifyGrant} and {@link openGrantKeys}).
 */
export async function openGrant(
  grantee: Pick<Identity, 'did' | 'decryptJwe'>,
  jwt: string,
  opts: VerifyGrantOptions
): Promise<OpenedGrant> {
  const verified = await verifyGrant(jwt, opts)
  const { id, claims } = verified
  if (claims.grantee !== grantee.did) {
    fail('GRANT_NOT_FOR_YOU', `grant ${id} is for ${claims.grantee}, not ${grantee.did}`, {
      grant: id,
      grantee: claims.grantee,
      did: grantee.did
    })
  }
  if (verified.expired) {
    fail('GRANT_EXPIRED', `grant ${id} expired at ${isoTime(claims.exp!)}`, { grant: id, exp: claims.exp })
  }
  return { id, claims, keys: await openGrantKeys(grantee, verified) }
}

/** Options of {@link createRevocation}. */
export interface CreateRevocationOptions {
  /** Why (public; at most {@link MAX_REASON_LENGTH} characters). */
  reason?: string
  /** The grant's dataset (manifest CID), so that the document names it by itself. */
  dataset?: CID | string
  /** End the grant then (Unix seconds, in the future) instead of at once: a shortened expiry. */
  endsAt?: number
}

/**
 * Sign a revocation of grant `grantId` as the dataset's owner (only the grant's signer can
 * revoke it). Returns the JWT.
 *
 * @throws {GrantError} `REVOCATION_INVALID` when `grantId` or `dataset` is not a CID or the reason is too long.
 */
export async function createRevocation(
  owner: Pick<Identity, 'signJwt'>,
  grantId: string,
  opts: CreateRevocationOptions = {}
): Promise<string> {
  const grant = canonicalCid(grantId)
  if (grant === undefined) fail('REVOCATION_INVALID', `${grantId} is not a grant id`, { reason: 'schema' })
  const payload: Record<string, unknown> = { typ: REVOCATION_TYPE, grant }
  if (opts.dataset !== undefined) {
    const dataset = canonicalCid(opts.dataset)
    if (dataset === undefined) fail('REVOCATION_INVALID', 'dataset is not a CID', { reason: 'schema' })
    payload.dataset = dataset
  }
  if (opts.reason !== undefined) {
    if (typeof opts.reason !== 'string' || opts.reason.length > MAX_REASON_LENGTH) {
      fail('REVOCATION_INVALID', `reason must be a string of at most ${MAX_REASON_LENGTH} characters`, {
        reason: 'schema'
      })
    }
    payload.reason = opts.reason
  }
  if (opts.endsAt !== undefined) {
    if (!Number.isSafeInteger(opts.endsAt) || opts.endsAt <= nowSeconds()) {
      fail('REVOCATION_INVALID', 'endsAt must be a time in the future (Unix seconds)', { reason: 'schema' })
    }
    payload.endsAt = opts.endsAt
  }
  return owner.signJwt(payload)
}

/**
 * Verify a revocation's form and signature only, not who may revoke what (for revocations
 * that arrive before their grant). Use {@link verifyRevocation} once the grant is known.
 *
 * @throws {GrantError} `REVOCATION_INVALID` (`reason`: `too-large`, `type`, `schema`, `signature`).
 */
export async function readRevocation(
  jwt: string,
  opts: { now?: number } = {}
): Promise<{ id: string; claims: RevocationClaims; issuer: string }> {
  const now = opts.now ?? nowSeconds()
  const {
    claims: raw,
    verified,
    id
  } = await verifyDocument(jwt, REVOCATION_TYPE, RevocationClaimsSchema, 'REVOCATION_INVALID', now)
  const claims = raw as unknown as RevocationClaims
  claims.grant = canonicalCid(claims.grant)!
  if (claims.dataset !== undefined) claims.dataset = canonicalCid(claims.dataset)!
  return { id, claims, issuer: verified.issuer }
}

/**
 * Verify a revocation of `grant`: form, signature, that it names this grant (and its
 * dataset, when it names one), and that the grant's owner signed it.
 *
 * @throws {GrantError} `REVOCATION_INVALID` (`reason`: `too-large`, `type`, `schema`,
 * `signature`, `wrong-grant`, `dataset`, `not-owner`).
 */
export async function verifyRevocation(
  jwt: string,
  grant: Pick<GrantInfo, 'id' | 'owner'> & { dataset?: string },
  opts: { now?: number } = {}
): Promise<VerifiedRevocation> {
  const { id, claims, issuer } = await readRevocation(jwt, opts)
  if (claims.grant !== canonicalCid(grant.id)) {
    fail('REVOCATION_INVALID', `revocation ${id} revokes grant ${claims.grant}, not ${grant.id}`, {
      reason: 'wrong-grant',
      grant: grant.id
    })
  }
  if (
    claims.dataset !== undefined &&
    grant.dataset !== undefined &&
    claims.dataset !== canonicalCid(grant.dataset)
  ) {
    fail(
      'REVOCATION_INVALID',
      `revocation ${id} names dataset ${claims.dataset}, grant ${grant.id} is for ${grant.dataset}`,
      {
        reason: 'dataset',
        grant: grant.id
      }
    )
  }
  if (issuer !== grant.owner) {
    fail(
      'REVOCATION_INVALID',
      `revocation ${id} of grant ${grant.id} is signed by ${issuer}, not its owner ${grant.owner}`,
      {
        reason: 'not-owner',
        grant: grant.id,
        signer: issuer,
        owner: grant.owner
      }
    )
  }
  const out: VerifiedRevocation = { id, claims, grant: claims.grant, issuer, revokedAt: claims.iat }
  if (claims.reason !== undefined) out.reason = claims.reason
  if (claims.endsAt !== undefined) out.endsAt = Math.max(claims.endsAt, claims.iat)
  return out
}

/** Unix seconds as an ISO 8601 string (for messages). */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString()
}
