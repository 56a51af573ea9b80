import { ShoalError } from '../../common/index.js'

/**
 * Thrown when a GPT spec is impossible: a field missing or out of range, or shapes that do not
 * fit (dModel not divisible by heads, …). `fields.field` names the offending field.
 */
export class GptSpecError extends ShoalError<'GPT_SPEC_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('GPT_SPEC_INVALID', message, fields)
  }
}

/** Thrown when a prompt has more tokens than the model's context (`fields`: tokens, context). */
export class PromptTooLongError extends ShoalError<'PROMPT_TOO_LONG'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('PROMPT_TOO_LONG', message, fields)
  }
}

/** Thrown when generation or LM-training options are out of range (token count, temperature, schedule). */
export class LmOptionsError extends ShoalError<'LM_OPTIONS_INVALID'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('LM_OPTIONS_INVALID', message, fields)
  }
}
