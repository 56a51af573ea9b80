/**
 * The byte tokenizer: UTF-8 bytes are the tokens (vocabulary 256). Nothing is out of
 * vocabulary, invalid UTF-8 included; decoding replaces invalid sequences with U+FFFD.
 */
import { BYTE_VOCAB } from './constants.js'
import { TextInputError } from './errors.js'

/** What a tokenizer is, as recorded with a dataset or a model (JSON). */
export interface TokenizerInfo {
  kind: 'bytes'
  vocab: number
}

export const BYTE_TOKENIZER: TokenizerInfo = { kind: 'bytes', vocab: BYTE_VOCAB }

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: false })

/**
 * Tokens of a text: a string is encoded as UTF-8 (lone surrogates become U+FFFD); bytes are
 * taken as they are (a copy).
 *
 * @throws {TextInputError} TEXT_INVALID when `text` is neither a string nor a Uint8Array.
 */
export function encodeBytes(text: string | Uint8Array): Uint8Array {
  if (typeof text === 'string') return encoder.encode(text)
  if (text instanceof Uint8Array) return Uint8Array.from(text)
  throw new TextInputError(`text must be a string or a Uint8Array, got ${describe(text)}`, {
    got: describe(text)
  })
}

/** The text of byte tokens; invalid UTF-8 sequences decode to U+FFFD. */
export function decodeBytes(tokens: ArrayLike<number> | Uint8Array): string {
  const bytes = tokens instanceof Uint8Array ? tokens : Uint8Array.from(tokens as ArrayLike<number>)
  return decoder.decode(bytes)
}

function describe(x: unknown): string {
  if (x === null) return 'null'
  if (Array.isArray(x)) return 'an array'
  return typeof x === 'object' ? ((x as object).constructor?.name ?? 'an object') : typeof x
}
