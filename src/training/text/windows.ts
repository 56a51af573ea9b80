/**
 * Next-token windows over a token sequence: `x` = tokens[o, o + C), `y` = tokens[o + 1, o + C + 1),
 * as int64 batches [B, C] for a language model's train step. Training draws window offsets with
 * a seeded Rng; evaluation walks non-overlapping windows in order.
 */
import { Rng } from '../../common/index.js'
import { TextInputError } from './errors.js'
import { requireWindow } from './shards.js'

export interface WindowBatch {
  /** int64 [count, context], row-major. */
  x: BigInt64Array
  /** int64 [count, context]: the token after each of `x`. */
  y: BigInt64Array
  /** Rows (windows) in the batch. */
  count: number
}

function positive(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1)
    throw new TextInputError(`${name} must be an integer ≥ 1, got ${v}`, { [name]: v })
}

function fill(
  tokens: Uint8Array,
  offset: number,
  context: number,
  x: BigInt64Array,
  y: BigInt64Array,
  row: number
): void {
  const base = row * context
  for (let t = 0; t < context; t++) {
    x[base + t] = BigInt(tokens[offset + t]!)
    y[base + t] = BigInt(tokens[offset + t + 1]!)
  }
}

/**
 * Random training windows: `next()` fills and returns one batch of `batchSize` windows at
 * offsets drawn uniformly (with a seeded Rng, so a seed gives the same batches everywhere).
 * The returned arrays are reused by the next call.
 *
 * @throws {ContextTooLongError} CONTEXT_TOO_LONG when the tokens hold no window of context + 1.
 */
export class WindowSampler {
  readonly context: number
  readonly batchSize: number
  private readonly tokens: Uint8Array
  private readonly rng: Rng
  private readonly batch: WindowBatch

  constructor(tokens: Uint8Array, opts: { batchSize: number; context: number; seed: number }) {
    positive('batchSize', opts.batchSize)
    requireWindow(tokens, opts.context)
    this.tokens = tokens
    this.context = opts.context
    this.batchSize = opts.batchSize
    this.rng = new Rng(opts.seed)
    const n = opts.batchSize * opts.context
    this.batch = { x: new BigInt64Array(n), y: new BigInt64Array(n), count: opts.batchSize }
  }

  next(): WindowBatch {
    const span = this.tokens.length - this.context // offsets 0 … span − 1
    for (let r = 0; r < this.batchSize; r++)
      fill(this.tokens, this.rng.int(span), this.context, this.batch.x, this.batch.y, r)
    return this.batch
  }
}

/**
 * The non-overlapping windows of `tokens` in order (the last partial one dropped), in batches of
 * at most `batchSize` rows; `maxWindows` caps how many are taken (spread evenly over the text).
 *
 * @throws {ContextTooLongError} CONTEXT_TOO_LONG when the tokens hold no window of context + 1.
 */
export function evalWindows(
  tokens: Uint8Array,
  opts: { context: number; batchSize: number; maxWindows?: number }
): WindowBatch[] {
  positive('batchSize', opts.batchSize)
  requireWindow(tokens, opts.context)
  const c = opts.context
  const total = Math.floor((tokens.length - 1) / c)
  const take = Math.min(total, opts.maxWindows ?? total)
  positive('maxWindows', take)
  const offsets = Array.from({ length: take }, (_, i) => Math.floor((i * total) / take) * c)
  const out: WindowBatch[] = []
  for (let i = 0; i < offsets.length; i += opts.batchSize) {
    const rows = offsets.slice(i, i + opts.batchSize)
    const b: WindowBatch = {
      x: new BigInt64Array(rows.length * c),
      y: new BigInt64Array(rows.length * c),
      count: rows.length
    }
    rows.forEach((o, r) => fill(tokens, o, c, b.x, b.y, r))
    out.push(b)
  }
  return out
}
