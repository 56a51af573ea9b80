/**
 * Base class of every Shoal error. Callers match on `code`, never on message text.
 * `fields` holds the facts of the failure (serialisable), e.g. `{ norm, limit }`.
 */
export class ShoalError<
  Code extends string = string,
  Fields extends Record<string, unknown> = Record<string, unknown>
> extends Error {
  readonly code: Code
  readonly fields: Fields

  constructor(code: Code, message: string, fields?: Fields, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.fields = fields ?? ({} as Fields)
    this.name = new.target.name
  }

  toJSON(): { name: string; code: Code; message: string } & Fields {
    return { ...this.fields, name: this.name, code: this.code, message: this.message }
  }
}

/** True when `err` is a ShoalError with the given code. */
export function hasCode(err: unknown, code: string): err is ShoalError {
  return err instanceof ShoalError && err.code === code
}
