/**
 * One local round of a language model, as a pure function of its inputs so that a peer can
 * re-execute it: from the weights the trainer holds and a fresh optimizer state, `H` steps on
 * the windows a `WindowSampler(tokens, { batchSize, context, seed })` draws, at a constant
 * learning rate or at the rates of the round's share of a warm-up + cosine schedule (`schedule`).
 * With a deterministic trainer (CPU, one thread) the same inputs give the same weights bit for bit.
 */
import { performance } from 'node:perf_hooks'
import { logger } from '../../common/index.js'
import { NonFiniteLossError } from '../runtime/index.js'
import { WindowSampler, type WindowBatch } from '../text/index.js'
import { roundLr, type RoundSchedule } from './schedule.js'
import type { LmTrainer } from './trainer.js'

const log = logger('shoal:training:lm')

/** Options of {@link trainLmRound}. */
export interface LmRoundOptions {
  /** Local steps. */
  H: number
  /** Windows per step. */
  batchSize: number
  /** The rate of every step, or the schedule's peak. */
  lr: number
  /** The round's share of a warm-up + cosine schedule; absent: `lr` on every step. */
  schedule?: RoundSchedule | undefined
  /** The round's data-order seed: it draws the window offsets. */
  seed: number
  signal?: AbortSignal
  /** Awaited before each step (e.g. to hold while paused). */
  beforeStep?: () => Promise<void>
}

/** What {@link trainLmRound} did. */
export interface LmRoundResult {
  steps: number
  /** Windows trained on: steps × batchSize. */
  samples: number
  /** Mean loss of the steps, nats per token (NaN when no step ran). */
  loss: number
  lossBefore: number
  lossAfter: number
  /** Time spent in training steps (ms), pauses excluded. */
  ms: number
  /** Stopped early because a step's loss was not finite (the trainer rolled it back). */
  diverged: boolean
}

/**
 * Train one local round on `trainer` from the weights it holds, with a zeroed optimizer state.
 * A step with a non-finite loss ends the round early (rolled back); the result says `diverged`.
 *
 * @throws {ContextTooLongError} when `tokens` hold no window of context + 1.
 * @throws {LmOptionsError} LM_OPTIONS_INVALID for an invalid schedule.
 * @throws the signal's reason when aborted.
 */
export async function trainLmRound(
  trainer: LmTrainer,
  tokens: Uint8Array,
  opts: LmRoundOptions
): Promise<LmRoundResult> {
  const sampler = new WindowSampler(tokens, {
    batchSize: opts.batchSize,
    context: trainer.model.spec.context,
    seed: opts.seed
  })
  roundLr(opts.lr, opts.schedule, 0) // an invalid schedule fails before any step
  trainer.setState()
  let steps = 0
  let lossSum = 0
  let lossBefore = NaN
  let lossAfter = NaN
  let ms = 0
  let diverged = false
  while (steps < opts.H) {
    if (opts.beforeStep !== undefined) await opts.beforeStep()
    opts.signal?.throwIfAborted()
    const batch: WindowBatch = sampler.next()
    const t0 = performance.now()
    try {
      const r = await trainer.step(batch, roundLr(opts.lr, opts.schedule, steps))
      if (steps === 0) lossBefore = r.loss
      lossAfter = r.loss
      lossSum += r.loss
      steps++
    } catch (err) {
      if (!(err instanceof NonFiniteLossError)) throw err
      log.warn({ step: steps, err: err.message }, 'local LM round diverged; ending it early')
      diverged = true
      break
    } finally {
      ms += performance.now() - t0
    }
  }
  return {
    steps,
    samples: steps * opts.batchSize,
    loss: steps > 0 ? lossSum / steps : NaN,
    lossBefore,
    lossAfter,
    ms,
    diverged
  }
}
