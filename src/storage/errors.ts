import { ShoalError } from '../common/index.js'

/**
 * Thrown when stored bytes fail authentication or do not match their envelope: a chunk whose
 * AEAD tag does not verify (flipped, reordered, duplicated or foreign chunk), a truncated or
 * extended ciphertext, a wrong plaintext length or hash, or a malformed envelope.
 */
export class IntegrityError extends ShoalError<'INTEGRITY'> {
  static override readonly category = 'integrity'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('INTEGRITY', message, fields, options)
  }
}

/** Thrown when the content key cannot be obtained: not wrapped for this identity, or a wrong key. */
export class NotAuthorizedError extends ShoalError<'NOT_AUTHORIZED'> {
  static override readonly category = 'refused'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('NOT_AUTHORIZED', message, fields, options)
  }
}

/** Thrown when a CID (or one of the blocks under it) is not available, or is not pinned on unpin. */
export class NotFoundError extends ShoalError<'NOT_FOUND'> {
  static override readonly category = 'not-found'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, fields, options)
  }
}

/** Thrown when an object uses an envelope version, algorithm or codec this node does not support. */
export class UnsupportedFormatError extends ShoalError<'UNSUPPORTED_FORMAT'> {
  static override readonly category = 'refused'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('UNSUPPORTED_FORMAT', message, fields, options)
  }
}

/** Thrown when an argument is out of range (e.g. a chunk size, a content key of the wrong length). */
export class InvalidParametersError extends ShoalError<'INVALID_PARAMETERS'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('INVALID_PARAMETERS', message, fields, options)
  }
}

/**
 * Thrown when the data dir's file system is full (ENOSPC) or over its quota (EDQUOT): what
 * was being written is not stored (what was stored before is intact); free space and retry.
 */
export class DiskFullError extends ShoalError<'DISK_FULL'> {
  static override readonly category = 'unavailable'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('DISK_FULL', message, fields, options)
  }
}

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT'])
const DISK_FULL_TEXT = /\b(ENOSPC|EDQUOT)\b|no space left on device|disk quota exceeded/i

/**
 * `err` as a {@link DiskFullError} when it, or an error in its `cause` chain, is a file system
 * full or over quota — by its `code`, or by its message, since the blockstore's and level's
 * wrappers keep only the text of the system error; `undefined` for any other error.
 */
export function asDiskFull(err: unknown): DiskFullError | undefined {
  let e: unknown = err
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    if (e instanceof DiskFullError) return e
    const { code, message } = e as { code?: unknown; message?: unknown }
    const sysCode = typeof code === 'string' && DISK_FULL_CODES.has(code) ? code : undefined
    if (sysCode !== undefined || (typeof message === 'string' && DISK_FULL_TEXT.test(message))) {
      return new DiskFullError(
        `the data dir's disk is full (${sysCode ?? 'ENOSPC'}): nothing was stored; free space and retry`,
        { reason: sysCode ?? 'ENOSPC' },
        { cause: err }
      )
    }
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}
