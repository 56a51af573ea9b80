/**
 * Dataset manifests: what a dataset is (schema), where its shards are (CIDs), how it was
 * split, and who owns it — signed by the owner.
 *
 * Form: a `SignedManifest` is `{ body, jwt }`, where `jwt` is a did-jwt JWT (EdDSA) issued
 * by the owner's did:key with payload `{ manifest: body, iss, iat }`. The JWT is the
 * source of truth; `body` is a convenience copy and must equal the signed one. A bare JWT
 * string is accepted wherever a `SignedManifest` is.
 */
import { isDeepStrictEqual } from 'node:util'
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { CidString, DidKeyString } from '../../common/index.js'
import { verifyJwt, type Identity } from '../../identity/index.js'
import { MANIFEST_TYPE, MANIFEST_VERSION, MAX_CLASSES } from './constants.js'
import { dtypeOf, labelCounts, type Dataset } from './dataset.js'
import { ManifestError, type ManifestErrorReason } from './errors.js'

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** Zod schema of the dataset schema part of a manifest. */
export const DatasetSchema = z.strictObject({
  /** Per-sample shape, e.g. `[28, 28]`. */
  shape: z.array(z.number().int().min(1)).min(1).max(16),
  dtype: z.enum(['uint8', 'float32']),
  classes: z.number().int().min(1).max(MAX_CLASSES),
  /** Optional human names of the classes, `classes` long. */
  labelNames: z.array(z.string().max(256)).optional(),
  /** What the samples are: absent (tensors), or `text` (byte tokens, labels their role: text.ts). */
  kind: z.enum(['text']).optional(),
  /** A text dataset's tokenizer: `bytes` (UTF-8 bytes, vocabulary 256). */
  tokenizer: z.enum(['bytes']).optional()
})

/** Zod schema of one shard entry. */
export const ManifestShard = z.strictObject({
  /** CID of the stored shard object. */
  cid: CidString,
  /** Samples in the shard (at least one). */
  count: count.min(1),
  /** Samples per label, `schema.classes` long, summing to `count`. */
  labelCounts: z.array(count).max(MAX_CLASSES)
})

/** Zod schema of the split description. */
export const ManifestSplit = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('iid'), seed: z.number().int() }),
  z.strictObject({
    kind: z.literal('dirichlet'),
    alpha: z.number().positive().finite(),
    seed: z.number().int()
  }),
  /** A text cut into consecutive shards, `heldOut` (a fraction) of it kept at the end. */
  z.strictObject({ kind: z.literal('contiguous'), heldOut: z.number().min(0).lt(1) })
])

/** Zod schema of a manifest body (the signed part). */
export const ManifestBodySchema = z.strictObject({
  type: z.literal(MANIFEST_TYPE),
  version: z.literal(MANIFEST_VERSION),
  name: z.string().min(1).max(256),
  /** The owner's did:key; must be the JWT's issuer. */
  owner: DidKeyString,
  schema: DatasetSchema,
  /** Where the data came from, e.g. `mnist`, or the imported file names. */
  source: z.string().min(1).max(1024),
  split: ManifestSplit,
  shards: z.array(ManifestShard).min(1),
  /** Total samples: the sum of the shard counts. */
  count
})

export type DatasetSchema = z.infer<typeof DatasetSchema>
export type ManifestShard = z.infer<typeof ManifestShard>
export type ManifestSplit = z.infer<typeof ManifestSplit>
export type ManifestBody = z.infer<typeof ManifestBodySchema>

/** A manifest body and the owner's JWT over it. */
export interface SignedManifest {
  body: ManifestBody
  jwt: string
}

/** What `buildManifest` needs of the owner (an `Identity` fits). */
export type ManifestSigner = Pick<Identity, 'did' | 'signJwt'>

export interface BuildManifestInput {
  name: string
  schema: DatasetSchema
  shards: ManifestShard[]
  source: string
  split: { kind: 'iid' | 'dirichlet'; alpha?: number; seed: number } | { kind: 'contiguous'; heldOut: number }
}

export interface VerifyManifestOptions {
  /** Refuse a manifest whose owner is not this DID. */
  expectedOwner?: string
  /** Time to check the JWT's `iat` against, Unix seconds (default now). */
  now?: number
}

function refuse(
  reason: ManifestErrorReason,
  message: string,
  fields: Record<string, unknown> = {},
  cause?: unknown
): never {
  throw new ManifestError(
    'MANIFEST_INVALID',
    `manifest refused (${reason}): ${message}`,
    { reason, ...fields },
    cause === undefined ? undefined : { cause }
  )
}

/** `value` as it would come back from JSON (undefined members dropped); undefined when not JSON. */
function plainJson(value: unknown): unknown {
  try {
    const text = JSON.stringify(value)
    return text === undefined ? undefined : JSON.parse(text)
  } catch {
    return undefined
  }
}

function parseBody(raw: unknown): ManifestBody {
  const parsed = ManifestBodySchema.safeParse(raw)
  if (!parsed.success) refuse('schema', z.prettifyError(parsed.error))
  return parsed.data
}

/** The internal consistency checks of a schema-valid body. */
function checkConsistency(body: ManifestBody): void {
  const { classes, labelNames } = body.schema
  if (labelNames !== undefined && labelNames.length !== classes) {
    refuse('schema', `${labelNames.length} label names for ${classes} classes`)
  }
  if ((body.schema.kind === 'text') !== (body.schema.tokenizer !== undefined)) {
    refuse('schema', 'a text dataset names its tokenizer, and only a text dataset has one')
  }
  const seen = new Map<string, number>()
  let total = 0
  body.shards.forEach((shard, i) => {
    if (shard.labelCounts.length !== classes) {
      refuse(
        'label-counts-length',
        `shard ${i}: ${shard.labelCounts.length} label counts for ${classes} classes`,
        {
          shard: i,
          cid: shard.cid
        }
      )
    }
    const sum = shard.labelCounts.reduce((a, b) => a + b, 0)
    if (sum !== shard.count) {
      refuse('label-counts-sum', `shard ${i}: label counts add up to ${sum}, count is ${shard.count}`, {
        shard: i,
        cid: shard.cid,
        sum,
        count: shard.count
      })
    }
    const key = CID.parse(shard.cid).toV1().toString()
    const first = seen.get(key)
    if (first !== undefined) {
      refuse('duplicate-cid', `shards ${first} and ${i} have the same CID ${shard.cid}`, {
        shard: i,
        cid: shard.cid
      })
    }
    seen.set(key, i)
    total += shard.count
  })
  if (total !== body.count) {
    refuse('total-count', `shard counts add up to ${total}, manifest count is ${body.count}`, {
      sum: total,
      count: body.count
    })
  }
}

/** A manifest shard entry for a stored shard: its CID, count and label counts. */
export function shardEntry(cid: string, shard: Dataset): ManifestShard {
  return { cid, count: shard.count, labelCounts: labelCounts(shard) }
}

/**
 * Build a manifest body owned by `owner` (total count computed from the shards), check it
 * as `verifyManifest` would, and sign it: `jwt = owner.signJwt({ manifest: body })`.
 *
 * Thrown `ManifestError` (`MANIFEST_INVALID`) when the input is not a valid, consistent
 * manifest — nothing inconsistent is ever signed.
 */
export async function buildManifest(
  owner: ManifestSigner,
  input: BuildManifestInput
): Promise<SignedManifest> {
  const s = input.split
  const split =
    s.kind === 'contiguous' ? s : s.alpha === undefined ? { kind: s.kind, seed: s.seed } : { ...s }
  const body = parseBody({
    type: MANIFEST_TYPE,
    version: MANIFEST_VERSION,
    name: input.name,
    owner: owner.did,
    schema: input.schema,
    source: input.source,
    split,
    shards: input.shards,
    count: input.shards.reduce((n, s) => n + s.count, 0)
  })
  checkConsistency(body)
  const jwt = await owner.signJwt({ manifest: body })
  return { body, jwt }
}

/**
 * Verify a signed manifest and return its body (as signed): the JWT's signature (offline,
 * did:key), issuer == `body.owner` (and == `opts.expectedOwner` when given), the schema,
 * that `signed.body` (when given) equals the signed body, and internal consistency: each
 * shard's label counts are `classes` long and add up to its count, the counts add up to the
 * total, and no two shards share a CID.
 *
 * Thrown `ManifestError` (`MANIFEST_INVALID`) with `fields.reason`: `signature` (the JWT
 * does not verify; `fields.jwtReason` says why), `schema`, `issuer-mismatch`,
 * `unexpected-owner`, `body-mismatch`, `label-counts-length`, `label-counts-sum`,
 * `total-count`, `duplicate-cid`.
 */
export async function verifyManifest(
  signed: SignedManifest | string,
  opts: VerifyManifestOptions = {}
): Promise<ManifestBody> {
  const jwt = typeof signed === 'string' ? signed : signed.jwt
  let verified: Awaited<ReturnType<typeof verifyJwt>>
  try {
    verified = await verifyJwt(jwt, opts.now !== undefined ? { now: opts.now } : {})
  } catch (err) {
    const fields = (err as { fields?: { reason?: unknown } }).fields
    refuse('signature', (err as Error).message, { jwtReason: fields?.reason }, err)
  }
  const body = parseBody(verified.payload.manifest)
  if (verified.issuer !== body.owner) {
    refuse('issuer-mismatch', `signed by ${verified.issuer}, but the owner is ${body.owner}`, {
      issuer: verified.issuer,
      owner: body.owner
    })
  }
  if (opts.expectedOwner !== undefined && body.owner !== opts.expectedOwner) {
    refuse('unexpected-owner', `owner is ${body.owner}, expected ${opts.expectedOwner}`, {
      owner: body.owner,
      expected: opts.expectedOwner
    })
  }
  if (typeof signed !== 'string' && !isDeepStrictEqual(plainJson(signed.body), body)) {
    refuse('body-mismatch', 'the body differs from the signed manifest')
  }
  checkConsistency(body)
  return body
}

/**
 * Check a stored shard (decoded) against its manifest entry, and against the manifest's
 * schema when given: same count, same label counts, and the same shape, dtype and classes.
 *
 * Thrown `ManifestError` (`MANIFEST_INVALID`, reason `shard-mismatch`) on any difference.
 */
export function checkShardAgainstManifest(
  entry: ManifestShard,
  shard: Dataset,
  schema?: DatasetSchema
): void {
  const fields = { cid: entry.cid }
  if (shard.count !== entry.count) {
    refuse(
      'shard-mismatch',
      `shard ${entry.cid} has ${shard.count} samples, the manifest says ${entry.count}`,
      {
        ...fields,
        count: shard.count,
        expected: entry.count
      }
    )
  }
  const counts = labelCounts({ labels: shard.labels, count: shard.count, classes: entry.labelCounts.length })
  if (counts.length !== entry.labelCounts.length || counts.some((n, i) => n !== entry.labelCounts[i])) {
    refuse(
      'shard-mismatch',
      `shard ${entry.cid} label counts [${counts.join(', ')}] differ from the manifest's [${entry.labelCounts.join(', ')}]`,
      { ...fields, labelCounts: counts, expected: entry.labelCounts }
    )
  }
  if (schema !== undefined) {
    const dtype = dtypeOf(shard)
    if (
      dtype !== schema.dtype ||
      shard.classes !== schema.classes ||
      !isDeepStrictEqual([...shard.shape], [...schema.shape])
    ) {
      refuse(
        'shard-mismatch',
        `shard ${entry.cid} is [${shard.shape.join(', ')}] ${dtype} with ${shard.classes} classes; ` +
          `the manifest says [${schema.shape.join(', ')}] ${schema.dtype} with ${schema.classes}`,
        fields
      )
    }
  }
}
