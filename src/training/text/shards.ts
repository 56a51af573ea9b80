/**
 * Contiguous shards of a text: the held-out tail is cut first, then the rest is split into
 * consecutive chunks of (nearly) equal length. Shards are non-IID by construction: each one
 * holds a range of chapters, with its own characters, names and subjects.
 */
import { DEFAULT_HELD_OUT } from './constants.js'
import { ContextTooLongError, TextEmptyError, TextInputError } from './errors.js'

export interface TextSplitOptions {
  /** Number of training shards (default 1). */
  shards?: number
  /** Fraction of the text kept at its end as the held-out set, in [0, 1) (default 0.05). */
  heldOut?: number
  /** When given, every shard and a non-empty held-out set must hold a window of context + 1 tokens. */
  context?: number
}

export interface TextSplit {
  /** Training shards, in text order (views into the input). */
  shards: Uint8Array[]
  /** The held-out tail (a view; empty when `heldOut` is 0). */
  heldOut: Uint8Array
  /** [start, end) offsets of each shard, then of the held-out set, in the input. */
  ranges: Array<[number, number]>
}

/**
 * Split tokens into contiguous training shards and a held-out tail.
 *
 * @throws {TextEmptyError} TEXT_EMPTY for no tokens, or a shard that would be empty.
 * @throws {TextInputError} TEXT_INVALID for a shard count < 1 or a held-out fraction outside [0, 1).
 * @throws {ContextTooLongError} CONTEXT_TOO_LONG when `context` is given and a shard (or the
 *   held-out set) is shorter than context + 1 tokens.
 */
export function splitText(tokens: Uint8Array, opts: TextSplitOptions = {}): TextSplit {
  const n = opts.shards ?? 1
  const frac = opts.heldOut ?? DEFAULT_HELD_OUT
  if (!Number.isInteger(n) || n < 1)
    throw new TextInputError(`shards must be an integer ≥ 1, got ${n}`, { shards: n })
  if (!(frac >= 0 && frac < 1))
    throw new TextInputError(`heldOut must be in [0, 1), got ${frac}`, { heldOut: frac })
  if (tokens.length === 0) throw new TextEmptyError('the text is empty: nothing to split', {})
  const cut = tokens.length - Math.floor(tokens.length * frac)
  const trainLen = cut
  if (trainLen < n) {
    throw new TextEmptyError(`${trainLen} training tokens cannot make ${n} non-empty shards`, {
      tokens: trainLen,
      shards: n
    })
  }
  const shards: Uint8Array[] = []
  const ranges: Array<[number, number]> = []
  for (let i = 0; i < n; i++) {
    const start = Math.floor((i * trainLen) / n)
    const end = Math.floor(((i + 1) * trainLen) / n)
    shards.push(tokens.subarray(start, end))
    ranges.push([start, end])
  }
  const heldOut = tokens.subarray(cut)
  ranges.push([cut, tokens.length])
  if (opts.context !== undefined) {
    shards.forEach((s, i) => requireWindow(s, opts.context!, `shard ${i}`))
    if (heldOut.length > 0) requireWindow(heldOut, opts.context, 'the held-out set')
  }
  return { shards, heldOut, ranges }
}

/**
 * Check that `tokens` hold at least one window of `context` inputs and their next-token targets.
 *
 * @throws {TextInputError} TEXT_INVALID for a context that is not an integer ≥ 1.
 * @throws {ContextTooLongError} CONTEXT_TOO_LONG when there are fewer than context + 1 tokens.
 */
export function requireWindow(tokens: Uint8Array, context: number, what = 'the text'): void {
  if (!Number.isInteger(context) || context < 1)
    throw new TextInputError(`context must be an integer ≥ 1, got ${context}`, { context })
  if (tokens.length < context + 1) {
    throw new ContextTooLongError(
      `context ${context} is longer than ${what} allows: ${tokens.length} tokens, a window needs ${context + 1}`,
      { context, tokens: tokens.length, shard: what }
    )
  }
}
