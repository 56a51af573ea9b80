/**
 * What kind of failure an error is, independent of its code. The CLI turns it into an exit
 * code and the RPC server sends it in `error.data.category`:
 * - `usage`: a malformed input or argument (a bad CID, an unreadable option, a schema violation);
 * - `not-found`: an unknown id (a CID, job, dataset, checkpoint, receipt);
 * - `refused`: refused by policy, permission or state (a revoked grant, a locked repo, a wrong
 *   passphrase, not a member, busy);
 * - `integrity`: bytes that do not match their hash or authentication tag;
 * - `unavailable`: the daemon (or a service or peer it needs) is not running or cannot be reached;
 * - `internal`: anything else.
 */
export type ErrorCategory = 'usage' | 'not-found' | 'refused' | 'integrity' | 'unavailable' | 'internal'

/** Every {@link ErrorCategory}. */
export const ERROR_CATEGORIES: readonly ErrorCategory[] = [
  'usage',
  'not-found',
  'refused',
  'integrity',
  'unavailable',
  'internal'
]

/** True when `value` is one of the {@link ERROR_CATEGORIES}. */
export function isErrorCategory(value: unknown): value is ErrorCategory {
  return typeof value === 'string' && (ERROR_CATEGORIES as readonly string[]).includes(value)
}

/** Options of a {@link ShoalError}: its cause, and a category that overrides the class's. */
export interface ShoalErrorOptions {
  cause?: unknown
  category?: ErrorCategory
}

/**
 * Base class of every Shoal error. Callers match on `code`, never on message text.
 * `fields` holds the facts of the failure (serialisable), e.g. `{ norm, limit }`.
 *
 * `category` is set by the class: a subclass declares `static readonly category`, or, when its
 * codes fall in different categories, `static readonly categories` (one per code, typed
 * `Record<Code, ErrorCategory>` so that a new code needs one); `options.category` (for an error
 * rebuilt from the wire) overrides both. The default is `internal`.
 */
export class ShoalError<
  Code extends string = string,
  Fields extends Record<string, unknown> = Record<string, unknown>
> extends Error {
  /** The category of this class's errors. */
  static readonly category: ErrorCategory = 'internal'
  /** Per-code categories, for a class whose codes differ; a code not listed gets `category`. */
  static readonly categories: Readonly<Partial<Record<string, ErrorCategory>>> | undefined = undefined

  readonly code: Code
  readonly fields: Fields
  readonly category: ErrorCategory

  constructor(code: Code, message: string, fields?: Fields, options?: ShoalErrorOptions) {
    super(message, options)
    this.code = code
    this.fields = fields ?? ({} as Fields)
    this.name = new.target.name
    const cls = new.target as unknown as typeof ShoalError
    this.category = options?.category ?? cls.categories?.[code] ?? cls.category
  }

  toJSON(): { name: string; code: Code; category: ErrorCategory; message: string } & Fields {
    return {
      ...this.fields,
      name: this.name,
      code: this.code,
      category: this.category,
      message: this.message
    }
  }
}

/** True when `err` is a ShoalError with the given code. */
export function hasCode(err: unknown, code: string): err is ShoalError {
  return err instanceof ShoalError && err.code === code
}
