import { ShoalError } from '../../common/index.js'

/** Thrown for job requests this node cannot serve. */
export class JobRequestError extends ShoalError<
  | 'JOB_NOT_FOUND'
  | 'JOB_NO_DATA'
  | 'JOB_ALREADY_RUNNING'
  | 'JOB_NOT_RUNNING'
  | 'JOB_PRIVACY_BUDGET'
  | 'JOB_INIT_INVALID',
  Record<string, unknown>
> {}

/** The error for a job this node has no record of. */
export function jobNotFound(job: string): JobRequestError {
  return new JobRequestError('JOB_NOT_FOUND', `unknown job ${job}`, { job })
}
