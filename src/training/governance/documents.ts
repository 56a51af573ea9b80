/**
 * The documents of swarm governance — constitution, proposal, vote, founders' decree — as
 * DID-signed JWTs (did-jwt, EdDSA), their zod schemas, signing, and the verification of one
 * document on its own (size, canonical encoding, signature, schema). Whether a document
 * counts in its swarm (membership, windows, the constitution) is decided by `computeGovernance`
 * over all the documents (tally.ts). A document is named by its hash: the CIDv1 (raw,
 * sha2-256) of the JWT, as receipts are.
 */
import { z } from 'zod'
import { DidKeyString, rawCid } from '../../common/index.js'
import { JwtInvalidError, verifyJwt, type Identity } from '../../identity/index.js'
import { AGGREGATION_RULES } from '../aggregate/index.js'
import {
  CONSTITUTION_KIND,
  DECREE_KIND,
  MAX_DOCUMENT_BYTES,
  MAX_GENESIS_MEMBERS,
  MAX_TEXT_CHARS,
  MAX_TITLE_CHARS,
  PROPOSAL_KIND,
  PROPOSAL_TYPES,
  VOTE_KIND
} from './constants.js'
import { GovernanceError, type GovernanceRejectReason } from './errors.js'

const did = DidKeyString
const unix = z
  .int()
  .min(0)
  .max(2 ** 40)
const hashId = z.string().regex(/^b[a-z2-7]{20,120}$/, 'not a document hash (a base32 CIDv1)')
const swarmId = z.string().min(1).max(128)
const text = z.string().max(MAX_TEXT_CHARS)
/** A job id as in topic names. */
const jobId = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'not a job id')

/** A fraction `[numerator, denominator]`, 0 ≤ n ≤ d, d ≥ 1. */
export const FractionSchema = z
  .tuple([z.int().min(0).max(1_000_000), z.int().min(1).max(1_000_000)])
  .refine(([n, d]) => n <= d, 'a fraction must be at most 1')
export type Fraction = z.infer<typeof FractionSchema>

/**
 * How a proposal is decided: `quorum` of the electorate's weight must vote (yes, no or
 * abstain), and yes must reach `threshold` of the yes and no weight — strictly more than it
 * when `strict` (a simple majority is `[1, 2]`, strict; two thirds `[2, 3]`, not strict).
 */
export const RuleSchema = z.strictObject({
  quorum: FractionSchema,
  threshold: FractionSchema,
  strict: z.boolean()
})
export type Rule = z.infer<typeof RuleSchema>

/** The kinds of proposal. */
export type ProposalType = (typeof PROPOSAL_TYPES)[number]

/**
 * A swarm policy: what a `policy` proposal may change. Every field is optional in a change;
 * the constitution gives the starting values.
 */
export const PolicySchema = z.strictObject({
  /** The aggregation rule jobs of this swarm use. */
  aggregation: z.enum(AGGREGATION_RULES).optional(),
  /** The weakest differential-privacy guarantee a job may have (null: none required). */
  minDp: z
    .strictObject({ epsilon: z.number().positive().max(1_000), delta: z.number().positive().max(0.1) })
    .nullable()
    .optional(),
  /** The fraction of rounds each verifier re-executes. */
  reexecFraction: z.number().min(0).max(1).optional(),
  /** What rounds that cannot be re-executed earn. */
  unverifiable: z.enum(['credit', 'no-credit', 'exclude']).optional(),
  /**
   * Credits of a verified round, in percent of `samples × creditPerSample`: `trainer` to its
   * trainer, `data` shared among the owners of the shards it trained on.
   */
  rewards: z.strictObject({ trainer: z.int().min(0).max(1_000), data: z.int().min(0).max(1_000) }).optional()
})
export type Policy = z.infer<typeof PolicySchema>

/** What a proposal asks for, by kind. */
export const ActionSchemas = {
  admit: z.strictObject({ type: z.literal('admit'), member: did, note: text.optional() }),
  remove: z.strictObject({ type: z.literal('remove'), member: did, reason: text.optional() }),
  job: z.strictObject({ type: z.literal('job'), job: jobId, note: text.optional() }),
  policy: z.strictObject({
    type: z.literal('policy'),
    changes: PolicySchema.refine((p) => Object.keys(p).length > 0, 'a policy change changes something')
  }),
  resolution: z.strictObject({ type: z.literal('resolution'), text: text.min(1) })
} as const
export const ActionSchema = z.discriminatedUnion('type', [
  ActionSchemas.admit,
  ActionSchemas.remove,
  ActionSchemas.job,
  ActionSchemas.policy,
  ActionSchemas.resolution
])
export type Action = z.infer<typeof ActionSchema>

/** The constitution: the rules a governed swarm is created with, signed by a founder. */
export const ConstitutionClaimsSchema = z.strictObject({
  kind: z.literal(CONSTITUTION_KIND),
  iss: did,
  iat: unix,
  swarm: swarmId,
  /** The members at genesis (the nodes that take part from the start). */
  members: z.array(did).min(1).max(MAX_GENESIS_MEMBERS),
  /** The rule of each kind of proposal. */
  rules: z.strictObject({
    admit: RuleSchema,
    remove: RuleSchema,
    job: RuleSchema,
    policy: RuleSchema,
    resolution: RuleSchema
  }),
  /** Shortest and longest voting window (s). */
  window: z.strictObject({ min: z.int().min(1), max: z.int().min(1) }).refine((w) => w.min <= w.max),
  /** `member`: one member, one vote; `credits`: a member weighs 1 + its verified ledger credits. */
  weighting: z.enum(['member', 'credits']),
  /**
   * What the founders' key may still do: admit members by decree until `admitUntil` (Unix
   * seconds; null: never), and remove members by decree in an emergency (`remove`).
   */
  founders: z.strictObject({ admitUntil: unix.nullable(), remove: z.boolean() }),
  /** The policy at genesis. */
  policy: PolicySchema
})
export type ConstitutionClaims = z.infer<typeof ConstitutionClaimsSchema>

/** A proposal: its action, its voting window and the rule it is decided by. */
export const ProposalClaimsSchema = z.strictObject({
  kind: z.literal(PROPOSAL_KIND),
  iss: did,
  iat: unix,
  swarm: swarmId,
  /** Hash of the swarm's constitution. */
  constitution: hashId,
  title: z.string().min(1).max(MAX_TITLE_CHARS),
  action: ActionSchema,
  /** Voting window, Unix seconds: votes signed in [opens, closes] count. */
  opens: unix,
  closes: unix,
  rule: RuleSchema
})
export type ProposalClaims = z.infer<typeof ProposalClaimsSchema>

/** A member's vote on a proposal. */
export const VoteClaimsSchema = z.strictObject({
  kind: z.literal(VOTE_KIND),
  iss: did,
  iat: unix,
  swarm: swarmId,
  /** Hash of the proposal. */
  proposal: hashId,
  choice: z.enum(['yes', 'no', 'abstain']),
  /**
   * Orders one member's votes on a proposal signed in the same second: the latest is the one
   * with the greatest (`iat`, `seq`, hash). A node numbers its own votes from 0.
   */
  seq: z.int().min(0).max(1_000_000).optional()
})
export type VoteClaims = z.infer<typeof VoteClaimsSchema>
export type Choice = VoteClaims['choice']

/** A founders' decree: admit or remove a member directly, as far as the constitution allows. */
export const DecreeClaimsSchema = z.strictObject({
  kind: z.literal(DECREE_KIND),
  iss: did,
  iat: unix,
  swarm: swarmId,
  constitution: hashId,
  action: z.discriminatedUnion('type', [ActionSchemas.admit, ActionSchemas.remove])
})
export type DecreeClaims = z.infer<typeof DecreeClaimsSchema>

/** Any governance document's claims. */
export type GovernanceClaims = ConstitutionClaims | ProposalClaims | VoteClaims | DecreeClaims

/** A document whose signature and schema were checked. */
export type VerifiedDocument =
  | { kind: 'constitution'; hash: string; jwt: string; claims: ConstitutionClaims }
  | { kind: 'proposal'; hash: string; jwt: string; claims: ProposalClaims }
  | { kind: 'vote'; hash: string; jwt: string; claims: VoteClaims }
  | { kind: 'decree'; hash: string; jwt: string; claims: DecreeClaims }

/** The result of {@link verifyDocument}. */
export type DocumentCheck =
  | { ok: true; doc: VerifiedDocument }
  | { ok: false; reason: GovernanceRejectReason; detail: string; hash?: string }

/** The hash of a governance document: the CIDv1 (raw, sha2-256) of its JWT. */
export function documentHash(jwt: string): string {
  return rawCid(jwt)
}

const B64URL = /^[A-Za-z0-9_-]+$/

/** The JSON of a canonical base64url segment, or undefined. */
function segment(s: string): Record<string, unknown> | undefined {
  if (!B64URL.test(s)) return undefined
  const bytes = Buffer.from(s, 'base64url')
  if (bytes.toString('base64url') !== s) return undefined
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

const SCHEMAS = {
  [CONSTITUTION_KIND]: { kind: 'constitution', schema: ConstitutionClaimsSchema },
  [PROPOSAL_KIND]: { kind: 'proposal', schema: ProposalClaimsSchema },
  [VOTE_KIND]: { kind: 'vote', schema: VoteClaimsSchema },
  [DECREE_KIND]: { kind: 'decree', schema: DecreeClaimsSchema }
} as const

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ')
}

/**
 * Decodes a document without checking its signature: size, canonical base64url, JSON, and the
 * schema of its `kind`. A proposal whose action is of a kind the swarm does not know is
 * `unknown-kind`, not `schema`.
 */
export function decodeDocument(jwt: string): DocumentCheck {
  if (typeof jwt !== 'string' || jwt.length > MAX_DOCUMENT_BYTES)
    return { ok: false, reason: 'malformed', detail: `not a string of at most ${MAX_DOCUMENT_BYTES} bytes` }
  const parts = jwt.split('.')
  const hash = documentHash(jwt)
  if (parts.length !== 3 || parts[2] === undefined || !B64URL.test(parts[2]))
    return { ok: false, reason: 'malformed', detail: 'not a compact JWT', hash }
  const header = segment(parts[0]!)
  const payload = segment(parts[1]!)
  if (header === undefined || payload === undefined)
    return { ok: false, reason: 'malformed', detail: 'a segment is not canonical base64url JSON', hash }
  if (header.alg !== 'EdDSA') return { ok: false, reason: 'bad-signature', detail: 'alg is not EdDSA', hash }
  const entry = SCHEMAS[payload.kind as keyof typeof SCHEMAS] as
    (typeof SCHEMAS)[keyof typeof SCHEMAS] | undefined
  if (entry === undefined)
    return {
      ok: false,
      reason: 'schema',
      detail: `unknown document kind ${JSON.stringify(payload.kind)}`,
      hash
    }
  if (entry.kind === 'proposal') {
    const type = (payload.action as { type?: unknown } | undefined)?.type
    if (typeof type !== 'string' || !(PROPOSAL_TYPES as readonly string[]).includes(type))
      return {
        ok: false,
        reason: 'unknown-kind',
        detail: `unknown proposal kind ${JSON.stringify(type)}`,
        hash
      }
  }
  const parsed = entry.schema.safeParse(payload)
  if (!parsed.success) return { ok: false, reason: 'schema', detail: issues(parsed.error), hash }
  return { ok: true, doc: { kind: entry.kind, hash, jwt, claims: parsed.data } as VerifiedDocument }
}

/**
 * Verifies one document on its own: {@link decodeDocument}, then the EdDSA signature of the
 * did:key in `iss` (offline) and `iat` not in the future (with the JWT skew); with `swarm`,
 * that it was signed for that swarm (`wrong-swarm` otherwise: a replay from another swarm).
 * Never throws.
 */
export async function verifyDocument(
  jwt: string,
  opts: { swarm?: string; now?: number } = {}
): Promise<DocumentCheck> {
  const decoded = decodeDocument(jwt)
  if (!decoded.ok) return decoded
  const { doc } = decoded
  try {
    await verifyJwt(jwt, opts.now === undefined ? {} : { now: opts.now })
  } catch (err) {
    const reason = err instanceof JwtInvalidError ? err.fields.reason : 'invalid'
    return {
      ok: false,
      reason: reason === 'not_yet_valid' ? 'future' : reason === 'malformed' ? 'malformed' : 'bad-signature',
      detail: (err as Error).message,
      hash: doc.hash
    }
  }
  if (opts.swarm !== undefined && doc.claims.swarm !== opts.swarm)
    return {
      ok: false,
      reason: 'wrong-swarm',
      detail: `signed for swarm ${doc.claims.swarm}, not ${opts.swarm}`,
      hash: doc.hash
    }
  return decoded
}

type Input<T> = Omit<T, 'kind' | 'iss' | 'iat'> & { iat?: number }

async function sign<T extends z.ZodType>(
  identity: Identity,
  kind: string,
  schema: T,
  input: Record<string, unknown>
): Promise<string> {
  const claims = { ...input, kind, iss: identity.did, iat: input.iat ?? Math.floor(Date.now() / 1000) }
  const parsed = schema.safeParse(claims)
  if (!parsed.success) {
    throw new GovernanceError('GOVERNANCE_INVALID_INPUT', `not a valid ${kind}: ${issues(parsed.error)}`, {
      issues: issues(parsed.error)
    })
  }
  const { iss: _iss, ...payload } = parsed.data as Record<string, unknown>
  const jwt = await identity.signJwt(payload)
  if (jwt.length > MAX_DOCUMENT_BYTES)
    throw new GovernanceError(
      'GOVERNANCE_INVALID_INPUT',
      `the ${kind} is larger than ${MAX_DOCUMENT_BYTES} bytes`,
      {}
    )
  return jwt
}

/**
 * Signs a constitution with a founders' key.
 *
 * @throws {GovernanceError} `GOVERNANCE_INVALID_INPUT` for claims outside the schema.
 */
export async function signConstitution(founder: Identity, input: Input<ConstitutionClaims>): Promise<string> {
  return sign(founder, CONSTITUTION_KIND, ConstitutionClaimsSchema, input)
}

/**
 * Signs a proposal as `identity` (a member).
 *
 * @throws {GovernanceError} `GOVERNANCE_INVALID_INPUT` for claims outside the schema.
 */
export async function signProposal(identity: Identity, input: Input<ProposalClaims>): Promise<string> {
  return sign(identity, PROPOSAL_KIND, ProposalClaimsSchema, input)
}

/**
 * Signs a vote as `identity` (a member).
 *
 * @throws {GovernanceError} `GOVERNANCE_INVALID_INPUT` for claims outside the schema.
 */
export async function signVote(identity: Identity, input: Input<VoteClaims>): Promise<string> {
  return sign(identity, VOTE_KIND, VoteClaimsSchema, input)
}

/**
 * Signs a founders' decree with a founders' key.
 *
 * @throws {GovernanceError} `GOVERNANCE_INVALID_INPUT` for claims outside the schema.
 */
export async function signDecree(founder: Identity, input: Input<DecreeClaims>): Promise<string> {
  return sign(founder, DECREE_KIND, DecreeClaimsSchema, input)
}
