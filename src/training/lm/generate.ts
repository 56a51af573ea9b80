/**
 * Text generation with a trained GPT: the prompt's byte tokens, then one token at a time from
 * the next-token distribution (softmax of logits / temperature), drawn with a seeded Rng, so a
 * seed reproduces a sample. Past the context length the window slides.
 */
import { Tensor } from 'onnxruntime-node'
import { Rng } from '../../common/index.js'
import { createSession, type SessionConfig } from '../runtime/index.js'
import { decodeBytes, encodeBytes } from '../text/index.js'
import { DEFAULT_GENERATE_TOKENS, DEFAULT_TEMPERATURE } from './constants.js'
import { LmOptionsError, PromptTooLongError } from './errors.js'
import { buildGptInference } from './model.js'
import { GPT_DEFAULT, validateGptSpec, type GptSpec } from './spec.js'

export interface GenerateOptions extends SessionConfig {
  /** The model's spec (default GPT_DEFAULT). */
  spec?: GptSpec
  /** Tokens (bytes) to generate after the prompt (default 200). */
  tokens?: number
  /** Softmax temperature; 0 picks the most likely token every time (default 0.8). */
  temperature?: number
  /** Seed of the sampling Rng (default 1). */
  seed?: number
  signal?: AbortSignal
}

export interface Generated {
  /** The prompt followed by the generated text (bytes decoded as UTF-8, U+FFFD where invalid). */
  text: string
  /** Only the generated part, decoded. */
  completion: string
  /** Every token, the prompt's included. */
  tokens: Uint8Array
}

/** The index of a token drawn from softmax(logits / temperature); argmax when temperature is 0. */
export function sampleToken(logits: Float32Array, temperature: number, rng: Rng): number {
  let best = 0
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i
  if (temperature === 0) return best
  const p = new Float64Array(logits.length)
  let sum = 0
  for (let i = 0; i < logits.length; i++) {
    p[i] = Math.exp((logits[i]! - logits[best]!) / temperature)
    sum += p[i]!
  }
  let u = rng.next() * sum
  for (let i = 0; i < p.length; i++) {
    u -= p[i]!
    if (u < 0) return i
  }
  return best
}

/**
 * Continue `prompt` with `tokens` sampled tokens.
 *
 * @throws {PromptTooLongError} PROMPT_TOO_LONG when the prompt has more tokens than the context.
 * @throws {LmOptionsError} LM_OPTIONS_INVALID for an empty prompt, a prompt byte outside the
 *   vocabulary, a negative or fractional token count, or a negative or non-finite temperature.
 * @throws {GptSpecError}, WeightsMismatchError for a bad spec or weights that do not fit it.
 */
export async function generate(
  weights: ReadonlyMap<string, Float32Array>,
  prompt: string | Uint8Array,
  opts: GenerateOptions = {}
): Promise<Generated> {
  const spec = validateGptSpec(opts.spec ?? GPT_DEFAULT)
  const count = opts.tokens ?? DEFAULT_GENERATE_TOKENS
  const temperature = opts.temperature ?? DEFAULT_TEMPERATURE
  if (!Number.isInteger(count) || count < 0)
    throw new LmOptionsError(`tokens must be an integer ≥ 0, got ${count}`, { tokens: count })
  if (!(Number.isFinite(temperature) && temperature >= 0))
    throw new LmOptionsError(`temperature must be finite and ≥ 0, got ${temperature}`, { temperature })
  const start = encodeBytes(prompt)
  if (start.length === 0)
    throw new LmOptionsError('the prompt is empty: give at least one character', { tokens: 0 })
  if (start.length > spec.context) {
    throw new PromptTooLongError(
      `the prompt has ${start.length} tokens, more than the context of ${spec.context}`,
      {
        tokens: start.length,
        context: spec.context
      }
    )
  }
  const outside = start.find((t) => t >= spec.vocab)
  if (outside !== undefined) {
    throw new LmOptionsError(`prompt byte ${outside} is outside the model's vocabulary of ${spec.vocab}`, {
      token: outside,
      vocab: spec.vocab
    })
  }
  const c = spec.context
  // CPU, one thread unless a device is asked for: the same seed then gives the same text anywhere.
  const deterministic = opts.deterministic ?? (opts.device === undefined || opts.device === 'cpu')
  const { session } = await createSession(buildGptInference(spec, weights), { ...opts, deterministic })
  try {
    const rng = new Rng(opts.seed ?? 1)
    const all = new Uint8Array(start.length + count)
    all.set(start)
    const window = new BigInt64Array(c)
    const x = new Tensor('int64', window, [1, c])
    for (let n = start.length; n < all.length; n++) {
      opts.signal?.throwIfAborted()
      const from = Math.max(0, n - c)
      const len = n - from
      window.fill(0n)
      for (let i = 0; i < len; i++) window[i] = BigInt(all[from + i]!)
      const out = await session.run({ x })
      const logits = (out.logits!.data as Float32Array).subarray((len - 1) * spec.vocab, len * spec.vocab)
      all[n] = sampleToken(logits, temperature, rng)
    }
    return { text: decodeBytes(all), completion: decodeBytes(all.subarray(start.length)), tokens: all }
  } finally {
    await session.release()
  }
}
