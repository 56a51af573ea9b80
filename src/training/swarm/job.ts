/**
 * Jobs: what a swarm trains, signed by its creator.
 *
 * A job is a JWT (did-jwt, EdDSA, `iss` = the creator's did:key) whose payload is
 * `{ kind: 'shoal-job', v: 1, job: <JobSpec> }`. Its id is content-addressed: the CIDv1
 * (codec `raw`, multihash sha2-256) of the JWT's UTF-8 bytes, in base32 (`bafkrei…`). The
 * same JWT always has the same id, any change to it (one character of the spec, another
 * signature) gives another id, and anyone holding the JWT recomputes the id without trusting
 * whoever sent it. Two signings of the same spec differ (`iat`), so they are two jobs.
 */
import { rawCid } from '../../common/index.js'
import { z } from 'zod'
import type { Identity } from '../../identity/index.js'
import { JwtInvalidError, verifyJwt } from '../../identity/index.js'
import { CidSchema, DidSchema, JobMessageSchema, JwtSchema } from '../../p2p/index.js'
import { AGGREGATION_RULES } from '../aggregate/index.js'
import { validateOptimizer, validateSpec, type ModelSpec, type OptimizerSpec } from '../graph/index.js'
import { validateGptSpec, type GptSpec } from '../lm/index.js'
import { JOB_KIND, JOB_VERSION, MAX_JOB_JWT_BYTES } from './constants.js'
import { JobError } from './errors.js'

/** A schema field checked by a validator that throws (the graph module's spec checks). */
function checkedBy<T>(check: (v: unknown) => T): z.ZodType<T, unknown> {
  return z.unknown().transform((v, ctx): T => {
    try {
      return check(v)
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: (err as Error).message, input: v })
      return z.NEVER
    }
  })
}

const positive = z.number().positive()

/** What a job trains: a classifier (`ModelSpec`: mlp, cnn) or a language model (`type: 'gpt'`). */
export type JobModel = ModelSpec | Required<GptSpec>

/** Whether a job's model is a GPT language model (its rounds train on text, docs/lm.md). */
export function isGptModel(model: JobModel): model is Required<GptSpec> {
  return 'type' in model && model.type === 'gpt'
}

/** A job's model checked by the validator of its kind (`type: 'gpt'`: `validateGptSpec`). */
function validateJobModel(v: unknown): JobModel {
  const gpt = typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'gpt'
  return gpt ? validateGptSpec(v) : validateSpec(v)
}

/**
 * DiLoCo's outer step (docs/lm.md): each node takes a Nesterov-momentum step from its round's base
 * towards the aggregate instead of adopting it; absent: the aggregate is the next base.
 */
export const JobOuterSchema = z.strictObject({
  /** Outer learning rate (DiLoCo: 0.7). */
  lr: positive.max(10),
  /** Nesterov momentum in [0, 1) (DiLoCo: 0.9). */
  momentum: z.number().min(0).lt(1)
})

/**
 * A job's learning-rate schedule (docs/lm.md, docs/training-swarm.md): a local step's rate is a
 * function of the job's step (round × H + step) over its rounds × H steps: a linear warm-up of
 * `warmupSteps` (default min(100, 5 % of the steps)) to `lr`, then a cosine decay to `minLr`
 * (default lr / 10). Any model; not with DP-SGD (its rounds take one rate).
 */
export const JobScheduleSchema = z.strictObject({
  type: z.literal('warmup-cosine'),
  warmupSteps: z.int().min(0).max(1_000_000_000).optional(),
  minLr: z.number().min(0).optional()
})

/** Training hyper-parameters of a job. */
export const JobHyperSchema = z.strictObject({
  /** Learning rate of every local step (the peak, with a `schedule`). */
  lr: positive,
  /** Examples per local step. */
  batchSize: z.int().min(1).max(65_536),
  /** Local steps per round. */
  H: z.int().min(1).max(1_000_000),
  /** Peer models aggregated per round (0: train alone). */
  k: z.int().min(0).max(256),
  /** Rounds to run (a node stops after round `rounds − 1`). */
  rounds: z.int().min(1).max(1_000_000).optional(),
  /** Held-out accuracy at which a node may stop early. */
  targetAccuracy: z.number().gt(0).max(1).optional(),
  /** The warm-up + cosine schedule; absent: `lr` on every step. */
  schedule: JobScheduleSchema.optional()
})

/**
 * Whole-update mode: each round's shared update is clipped to `clipNorm` as a whole and gets N(0, (σ·clipNorm)²)
 * per coordinate (protects a node's contribution; costly at record level, see docs/privacy.md).
 */
export const WholeUpdatePrivacySchema = z.strictObject({
  mode: z.literal('whole-update').optional(),
  clipNorm: positive,
  noiseMultiplier: z.number().min(0)
})

/**
 * DP-SGD mode: per-example clipping to `clipNorm` inside every local step, Poisson sampling at q = batchSize / N,
 * N(0, σ²C²) on each step's clipped sum; σ given, or solved by each node from `targetEpsilon` at `delta` over
 * the planned `rounds × H` steps before it trains.
 */
export const DpsgdPrivacySchema = z
  .strictObject({
    mode: z.literal('dp-sgd'),
    clipNorm: positive,
    noiseMultiplier: positive.optional(),
    targetEpsilon: positive.optional(),
    delta: z.number().gt(0).lt(1)
  })
  .refine((p) => (p.noiseMultiplier === undefined) !== (p.targetEpsilon === undefined), {
    message: 'give exactly one of noiseMultiplier and targetEpsilon',
    path: ['noiseMultiplier']
  })

/** Differential privacy of a job: whole-update clipping and noise, or DP-SGD. */
export const JobPrivacySchema = z.union([WholeUpdatePrivacySchema, DpsgdPrivacySchema])

/** The job spec: everything every node of a job must agree on. */
export const JobSpecSchema = z.strictObject({
  name: z.string().min(1).max(128),
  model: checkedBy<JobModel>(validateJobModel),
  optimizer: checkedBy<OptimizerSpec>(validateOptimizer),
  hyper: JobHyperSchema,
  /** The dataset's manifest CID. */
  dataset: CidSchema,
  aggregation: z.enum(AGGREGATION_RULES),
  compression: z.enum(['none', 'int8']),
  privacy: JobPrivacySchema.nullable().optional(),
  /** DiLoCo's outer optimizer; absent or null: plain averaging (the aggregate is the next base). */
  outer: JobOuterSchema.nullable().optional(),
  /** Largest accepted L2 norm of a peer model minus the receiver's round base. */
  maxNorm: positive,
  /** Seeds the initial weights (the same on every node) and the data order. */
  seed: z.int().min(0).max(0xffffffff),
  /**
   * CID of SHOALWT1 weights every node starts from instead of the seeded initialization (e.g.
   * a personal model trained elsewhere and imported): fetched by CID, checked against the model.
   */
  init: CidSchema.optional(),
  /**
   * What a round nobody can check by re-execution earns in the ledger (docs/receipts.md):
   * `credit`, `no-credit` (the default when absent) or `exclude`.
   */
  unverifiable: z.enum(['credit', 'no-credit', 'exclude']).optional(),
  /** The creator's did:key; must be the JWT's signer. */
  creator: DidSchema
})

/** A validated job spec. */
export type JobSpec = z.output<typeof JobSpecSchema>

/** A job whose model is a classifier (mlp, cnn). */
export type ClassifierJobSpec = JobSpec & { model: ModelSpec }

/** A job whose model is a GPT language model. */
export type LmJobSpec = JobSpec & { model: Required<GptSpec> }

/** What `createJob` takes: a spec whose `creator` may be left out (it is the signer). */
export type JobSpecInput = Omit<z.input<typeof JobSpecSchema>, 'creator'> & { creator?: string }

/** A signed job. */
export interface SignedJob {
  /** Content-addressed id: CIDv1 raw sha2-256 of the JWT bytes, base32. */
  id: string
  /** The signed job document. */
  jwt: string
  spec: JobSpec
}

/** A job whose signature, schema and creator were checked. */
export interface VerifiedJob extends SignedJob {
  /** When it was signed (Unix seconds). */
  iat: number
}

/** Options of {@link verifyJob}. */
export interface VerifyJobOptions {
  /** Refuse the job (reason `id`) unless its id is this. */
  expectedId?: string
  /** Check the creator too (reason `creator`). */
  expectedCreator?: string
  /** Time to check `exp`/`iat` against (Unix seconds; default now). */
  now?: number
}

/**
 * The id of a job JWT: the CIDv1 (raw, sha2-256) of its UTF-8 bytes, base32 (`bafkrei…`).
 * It is also the CID the JWT gets when stored as a single raw block.
 */
export function jobIdOf(jwt: string): string {
  return rawCid(jwt)
}

function schemaError(error: z.ZodError): JobError {
  const issue = error.issues[0]
  const path = issue === undefined ? '' : issue.path.map(String).join('.')
  return new JobError('schema', `job spec invalid at '${path}': ${issue?.message ?? 'invalid'}`, { path })
}

/**
 * Check a job spec against {@link JobSpecSchema} (model and optimizer by the graph module's
 * validators); returns the clean spec.
 *
 * @throws {JobError} `JOB_INVALID`, reason `schema`, naming the first offending path.
 */
export function parseJobSpec(spec: unknown): JobSpec {
  const parsed = JobSpecSchema.safeParse(spec)
  if (!parsed.success) throw schemaError(parsed.error)
  const job = parsed.data
  if (job.privacy?.mode === 'dp-sgd' && isGptModel(job.model)) {
    throw new JobError(
      'schema',
      "job spec invalid at 'privacy.mode': DP-SGD is not built for language models (per-example gradients of the GPT graph); whole-update privacy { clipNorm, noiseMultiplier } works",
      { path: 'privacy.mode' }
    )
  }
  if (job.hyper.schedule !== undefined && job.privacy?.mode === 'dp-sgd') {
    throw new JobError(
      'schema',
      "job spec invalid at 'hyper.schedule': DP-SGD rounds take one learning rate (no schedule)",
      { path: 'hyper.schedule' }
    )
  }
  return job
}

/**
 * Sign a job as `creator`: a did-jwt JWT (no expiry) over the validated spec. The spec's
 * `creator` is filled in with the signer's DID.
 *
 * @example
 * ```ts
 * const { id, jwt } = await createJob(me, { name: 'mnist-mlp', model: MODELS.mlp, … })
 * const { spec } = await verifyJob(jwt, { expectedId: id })
 * ```
 * @throws {JobError} `JOB_INVALID`: reason `schema` for a bad spec, `creator` when the spec
 *   names another creator, `malformed` when the signed document would be too large.
 */
export async function createJob(
  creator: Pick<Identity, 'did' | 'signJwt'>,
  spec: JobSpecInput
): Promise<SignedJob> {
  if (spec.creator !== undefined && spec.creator !== creator.did) {
    throw new JobError('creator', `the spec names creator ${spec.creator}, but ${creator.did} signs it`, {
      creator: spec.creator,
      signer: creator.did
    })
  }
  const clean = parseJobSpec({ ...spec, creator: creator.did })
  const jwt = await creator.signJwt({ kind: JOB_KIND, v: JOB_VERSION, job: clean })
  if (jwt.length > MAX_JOB_JWT_BYTES) {
    throw new JobError('malformed', `the signed job is ${jwt.length} bytes; at most ${MAX_JOB_JWT_BYTES}`, {
      bytes: jwt.length,
      limit: MAX_JOB_JWT_BYTES
    })
  }
  return { id: jobIdOf(jwt), jwt, spec: clean }
}

/**
 * Verify a signed job: size and form, EdDSA signature by a did:key (offline), the document
 * kind, the spec schema, and that the spec's creator is the signer.
 *
 * @throws {JobError} `JOB_INVALID` with `reason`: `malformed`, `signature`, `kind`, `schema`,
 *   `creator` or `id`.
 */
export async function verifyJob(jwt: string, opts: VerifyJobOptions = {}): Promise<VerifiedJob> {
  if (typeof jwt !== 'string' || jwt.length > MAX_JOB_JWT_BYTES || !JwtSchema.safeParse(jwt).success) {
    throw new JobError('malformed', 'not a compact JWT of acceptable size', {
      bytes: typeof jwt === 'string' ? jwt.length : null
    })
  }
  const id = jobIdOf(jwt)
  if (opts.expectedId !== undefined && id !== opts.expectedId) {
    throw new JobError('id', `job id ${id} is not the expected ${opts.expectedId}`, {
      id,
      expected: opts.expectedId
    })
  }
  let payload: Record<string, unknown>
  let issuer: string
  try {
    const verified = await verifyJwt(jwt, opts.now !== undefined ? { now: opts.now } : {})
    payload = verified.payload
    issuer = verified.issuer
  } catch (err) {
    if (err instanceof JwtInvalidError) {
      const reason = err.fields.reason
      throw new JobError(
        reason === 'malformed' ? 'malformed' : 'signature',
        `job JWT refused: ${err.message}`,
        {
          jwt: reason
        }
      )
    }
    throw err
  }
  if (payload.kind !== JOB_KIND || payload.v !== JOB_VERSION) {
    throw new JobError('kind', `not a v${JOB_VERSION} Shoal job document`, {
      kind: payload.kind ?? null,
      v: payload.v ?? null
    })
  }
  const spec = parseJobSpec(payload.job)
  if (spec.creator !== issuer) {
    throw new JobError('creator', `the spec names creator ${spec.creator}, but ${issuer} signed it`, {
      creator: spec.creator,
      signer: issuer
    })
  }
  if (opts.expectedCreator !== undefined && issuer !== opts.expectedCreator) {
    throw new JobError('creator', `job signed by ${issuer}, expected ${opts.expectedCreator}`, {
      signer: issuer,
      expected: opts.expectedCreator
    })
  }
  return { id, jwt, spec, iat: typeof payload.iat === 'number' ? payload.iat : 0 }
}

/** A job announcement on `/shoal/1/<swarm>/jobs`: the job id and its signed document. */
export const JobAnnouncementSchema = JobMessageSchema.extend({
  type: z.literal('job'),
  jwt: JwtSchema.max(MAX_JOB_JWT_BYTES)
})
export type JobAnnouncement = z.infer<typeof JobAnnouncementSchema>

/** The message announcing a signed job on the jobs topic. */
export function jobAnnouncement(job: Pick<SignedJob, 'id' | 'jwt'>): JobAnnouncement {
  return { type: 'job', jobId: job.id, jwt: job.jwt }
}

/**
 * Verify an announced job: the JWT (as {@link verifyJob}) and that `jobId` is its id.
 *
 * @throws {JobError} `JOB_INVALID` (reason `schema` for a message that is not an announcement).
 */
export async function verifyJobAnnouncement(
  msg: unknown,
  opts: Omit<VerifyJobOptions, 'expectedId'> = {}
): Promise<VerifiedJob> {
  const parsed = JobAnnouncementSchema.safeParse(msg)
  if (!parsed.success) throw schemaError(parsed.error)
  return verifyJob(parsed.data.jwt, { ...opts, expectedId: parsed.data.jobId })
}
