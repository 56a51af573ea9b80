import { ShoalError, type ErrorCategory } from '../../common/index.js'

/** Why a job document was refused. */
export type JobInvalidReason =
  | 'malformed' // not a compact JWT, or larger than MAX_JOB_JWT_BYTES
  | 'signature' // the JWT does not verify (signature, alg, expiry, issuer key)
  | 'kind' // a valid JWT that is not a Shoal job document
  | 'schema' // the job spec breaks JobSpecSchema (the path is in `fields.path`)
  | 'creator' // the spec's creator is not the JWT's signer
  | 'id' // the job's id is not the one expected

/**
 * Thrown when a job spec or a signed job cannot be accepted: by `createJob` for a spec that
 * breaks the schema (reason `schema`, `creator`) and by `verifyJob` for a document that does
 * not verify. `fields.reason` says why ({@link JobInvalidReason}).
 */
export class JobError extends ShoalError<'JOB_INVALID'> {
  static override readonly category = 'usage'

  constructor(reason: JobInvalidReason, message: string, fields: Record<string, unknown> = {}) {
    super('JOB_INVALID', message, { reason, ...fields })
  }

  get reason(): JobInvalidReason {
    return this.fields.reason as JobInvalidReason
  }
}

/**
 * Thrown when a SwarmTrainer is given options that cannot work (a non-positive H, a batch
 * size that is not an integer, no training data, data that does not fit the model…).
 * `fields.option` names the offending option.
 */
export class SwarmOptionsError extends ShoalError<'SWARM_OPTIONS_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('SWARM_OPTIONS_INVALID', message, fields)
  }
}

/**
 * Thrown when a SwarmTrainer is used out of order: `run` while another `run` is in progress
 * (`SWARM_BUSY`), or after `stop()` (`SWARM_STOPPED`).
 */
export class SwarmStateError extends ShoalError<'SWARM_BUSY' | 'SWARM_STOPPED'> {
  static override readonly category = 'refused'

  constructor(code: 'SWARM_BUSY' | 'SWARM_STOPPED', message: string) {
    super(code, message)
  }
}

/**
 * Thrown by a WeightStore when an object is larger than the bound it was given (a peer
 * announcing a CID of something far bigger than a model). The SwarmTrainer rejects the model
 * with this reason. Fields: `cid`, `limit`.
 */
export class ModelTooLargeError extends ShoalError<'UPDATE_TOO_LARGE'> {
  static override readonly category = 'refused'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('UPDATE_TOO_LARGE', message, fields)
  }
}

/** The input of a re-executed round that could not be had. */
export type ReexecInput = 'job' | 'base' | 'shards' | 'result'

/**
 * Thrown by `RoundReexecutor.run` when an input of the round cannot be had: the job spec
 * (an unknown job), the base weights or the shards' data (missing, unreadable, not
 * decodable). It says nothing about the receipt. Fields: `input` ({@link ReexecInput}),
 * `job`, and `cid` (base) or `cids` (shards); the underlying error is the `cause`.
 */
export class ReexecInputError extends ShoalError<'REEXEC_INPUT_UNAVAILABLE'> {
  static override readonly category = 'unavailable'

  constructor(input: ReexecInput, message: string, fields: Record<string, unknown> = {}, cause?: unknown) {
    super(
      'REEXEC_INPUT_UNAVAILABLE',
      message,
      { input, ...fields },
      cause === undefined ? undefined : { cause }
    )
  }

  get input(): ReexecInput {
    return this.fields.input as ReexecInput
  }
}

/**
 * Thrown by `RoundReexecutor.run` when a receipt's round cannot be re-run as its job
 * defines it: an optimizer other than the job's, hyper-parameters that contradict the job
 * spec (in strict mode), more steps than its own `hyper.steps`, base weights or data that do
 * not fit the job's model. `fields.field` names the offending claim or input; `claimed` and
 * `expected` give the values when there are.
 */
export class ReexecSpecError extends ShoalError<'REEXEC_SPEC_MISMATCH'> {
  static override readonly category = 'refused'

  constructor(field: string, message: string, fields: Record<string, unknown> = {}) {
    super('REEXEC_SPEC_MISMATCH', message, { field, ...fields })
  }

  get field(): string {
    return this.fields.field as string
  }
}

/**
 * Thrown by `RoundReexecutor.run` when a round cannot be reproduced bit for bit here: the
 * receipt says it ran on an execution provider other than the CPU (`fields.ep`).
 */
export class ReexecUnsupportedError extends ShoalError<'REEXEC_NOT_REPRODUCIBLE'> {
  static override readonly category = 'refused'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('REEXEC_NOT_REPRODUCIBLE', message, fields)
  }
}

/** Thrown by `RoundReexecutor.run` after (or during) `close()`. */
export class ReexecClosedError extends ShoalError<'REEXEC_CLOSED'> {
  static override readonly category = 'refused'

  constructor(message = 'round re-executor is closed') {
    super('REEXEC_CLOSED', message)
  }
}

/**
 * Thrown (and turned into a rejected model) when a peer model does not match the receipt it
 * was announced with: `RECEIPT_MISSING`, `RECEIPT_MISMATCH` (bad signature, another issuer,
 * job or round), `RESULT_MISMATCH` (the weights do not hash to the receipt's `resultHash`),
 * `RECEIPT_UNVERIFIABLE` (the job excludes rounds nobody can re-execute, and this is one).
 */
export class ReceiptBindingError extends ShoalError<
  'RECEIPT_MISSING' | 'RECEIPT_MISMATCH' | 'RESULT_MISMATCH' | 'RECEIPT_UNVERIFIABLE'
> {
  static override readonly categories: Record<ReceiptBindingError['code'], ErrorCategory> = {
    RECEIPT_MISSING: 'refused',
    RECEIPT_MISMATCH: 'refused',
    RESULT_MISMATCH: 'integrity',
    RECEIPT_UNVERIFIABLE: 'refused'
  }

  constructor(
    code: 'RECEIPT_MISSING' | 'RECEIPT_MISMATCH' | 'RESULT_MISMATCH' | 'RECEIPT_UNVERIFIABLE',
    message: string,
    fields: Record<string, unknown> = {}
  ) {
    super(code, message, fields)
  }
}
