import { ShoalError, type ErrorCategory } from '../../common/index.js'

/** Thrown for job requests this node cannot serve. */
export class JobRequestError extends ShoalError<
  | 'JOB_NOT_FOUND'
  | 'JOB_NO_DATA'
  | 'JOB_ALREADY_RUNNING'
  | 'JOB_NOT_RUNNING'
  | 'JOB_PRIVACY_BUDGET'
  | 'JOB_INIT_INVALID',
  Record<string, unknown>
> {
  static override readonly categories: Record<JobRequestError['code'], ErrorCategory> = {
    JOB_NOT_FOUND: 'not-found',
    JOB_NO_DATA: 'refused',
    JOB_ALREADY_RUNNING: 'refused',
    JOB_NOT_RUNNING: 'refused',
    JOB_PRIVACY_BUDGET: 'refused',
    JOB_INIT_INVALID: 'usage'
  }
}

/** The error for a job this node has no record of. */
export function jobNotFound(job: string): JobRequestError {
  return new JobRequestError('JOB_NOT_FOUND', `unknown job ${job}`, { job })
}
