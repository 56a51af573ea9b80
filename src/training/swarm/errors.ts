import { ShoalError } from '../../common/index.js'

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
  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('SWARM_OPTIONS_INVALID', message, fields)
  }
}

/**
 * Thrown when a SwarmTrainer is used out of order: `run` while another `run` is in progress
 * (`SWARM_BUSY`), or after `stop()` (`SWARM_STOPPED`).
 */
export class SwarmStateError extends ShoalError<'SWARM_BUSY' | 'SWARM_STOPPED'> {
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
  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('UPDATE_TOO_LARGE', message, fields)
  }
}
