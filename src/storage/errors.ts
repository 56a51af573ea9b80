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
