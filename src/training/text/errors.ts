import { ShoalError } from '../../common/index.js'

/** Thrown when a text (a file, a corpus, a shard) has no bytes to train on. */
export class TextEmptyError extends ShoalError<'TEXT_EMPTY'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('TEXT_EMPTY', message, fields)
  }
}

/** Thrown when a text input is neither a string nor bytes, a text file cannot be read, or text options are out of range. */
export class TextInputError extends ShoalError<'TEXT_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('TEXT_INVALID', message, fields, options)
  }
}

/**
 * Thrown when a window of `context + 1` tokens (a context and its next-token targets) does not
 * fit in a shard or held-out set. `fields`: `context`, `tokens` (what the text has), `shard`.
 */
export class ContextTooLongError extends ShoalError<'CONTEXT_TOO_LONG'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('CONTEXT_TOO_LONG', message, fields)
  }
}
