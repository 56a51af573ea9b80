/**
 * One local round, as a pure function of its inputs so that a peer can re-execute it:
 * starting from the round's base weights with zeroed optimizer state, train `H` steps on
 * the first `H` batches of `BatchLoader(shards, { batchSize, seed: roundSeed(seed, round),
 * dropLast: count ≥ batchSize })` (epochs 0, 1, … back to back) at a constant learning rate, or
 * at the round's share of the job's warm-up + cosine schedule (`schedule`).
 */
import { performance } from 'node:perf_hooks'
import { logger } from '../../common/index.js'
import { BatchLoader, shapeSize, type TensorDataset } from '../data/index.js'
import { roundLr, type RoundSchedule } from '../lm/index.js'
import { NonFiniteLossError, type Trainer } from '../runtime/index.js'
import { SwarmOptionsError } from './errors.js'

const log = logger('shoal:training:swarm')

/** The data-order seed of round `round` of a job with seed `seed` (uint32). */
export function roundSeed(seed: number, round: number): number {
  let z = ((seed >>> 0) ^ Math.imul((round + 1) >>> 0, 0x9e3779b9)) >>> 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
  return (z ^ (z >>> 16)) >>> 0
}

/**
 * Several shards as one data set (copied, in the given order); a single shard as it is.
 *
 * @throws {SwarmOptionsError} when there is no shard, no sample, or the sample shapes differ.
 */
export function concatDatasets(shards: TensorDataset | readonly TensorDataset[]): TensorDataset {
  const list: readonly TensorDataset[] = Array.isArray(shards) ? shards : [shards as TensorDataset]
  const first = list[0]
  if (first === undefined) throw new SwarmOptionsError('no training shards', { option: 'train' })
  const shape = first.sampleShape
  for (const d of list) {
    if (d.sampleShape.length !== shape.length || d.sampleShape.some((v, i) => v !== shape[i])) {
      throw new SwarmOptionsError(
        `shards have different sample shapes [${shape.join(', ')}] and [${d.sampleShape.join(', ')}]`,
        { option: 'train' }
      )
    }
  }
  const count = list.reduce((n, d) => n + d.count, 0)
  if (count === 0) throw new SwarmOptionsError('the training shards hold no samples', { option: 'train' })
  if (list.length === 1) return first
  const S = shapeSize(shape)
  const x = new Float32Array(count * S)
  const y = list.every((d) => d.y instanceof Uint8Array) ? new Uint8Array(count) : new Int32Array(count)
  let at = 0
  for (const d of list) {
    x.set(d.x.subarray(0, d.count * S), at * S)
    y.set(d.y.subarray(0, d.count), at)
    at += d.count
  }
  return { x, y, count, sampleShape: [...shape] }
}

/** Options of {@link trainRound}. */
export interface TrainRoundOptions {
  /** Local steps. */
  H: number
  batchSize: number
  lr: number
  /** The round's data-order seed (`roundSeed(jobSeed, round)`). */
  seed: number
  /** Zeroed optimizer state, installed before the first step (omit for a stateless optimizer). */
  zeroState?: ReadonlyMap<string, Float32Array>
  signal?: AbortSignal
  /** Awaited before each step (e.g. to hold while paused). */
  beforeStep?: () => Promise<void>
  /** The round's share of the job's learning-rate schedule (absent: `lr` on every step). */
  schedule?: RoundSchedule
}

/** What {@link trainRound} did. */
export interface TrainRoundResult {
  steps: number
  samples: number
  /** Mean loss over the steps, weighted by batch size (NaN when no step ran). */
  loss: number
  lossBefore: number
  lossAfter: number
  /** Time spent in training steps (ms), pauses excluded. */
  ms: number
  /** Stopped early because a step's loss was not finite (the trainer rolled it back). */
  diverged: boolean
}

/**
 * Train one local round on `trainer`, from the weights it holds. A step with a non-finite
 * loss ends the round early (the trainer has rolled it back); its result says `diverged`.
 *
 * @throws the signal's reason when aborted.
 */
export async function trainRound(
  trainer: Trainer,
  data: TensorDataset,
  opts: TrainRoundOptions
): Promise<TrainRoundResult> {
  const loader = new BatchLoader(data, {
    batchSize: opts.batchSize,
    seed: opts.seed,
    dropLast: data.count >= opts.batchSize
  })
  if (opts.zeroState !== undefined && opts.zeroState.size > 0) trainer.setState(opts.zeroState)
  let steps = 0
  let samples = 0
  let lossSum = 0
  let lossBefore = NaN
  let lossAfter = NaN
  let ms = 0
  let diverged = false
  outer: for (let epoch = 0; steps < opts.H; epoch++) {
    for (const batch of loader.epochSync(epoch)) {
      if (steps >= opts.H) break outer
      if (opts.beforeStep !== undefined) await opts.beforeStep()
      opts.signal?.throwIfAborted()
      const t0 = performance.now()
      try {
        const r = await trainer.step(batch.x, batch.y, roundLr(opts.lr, opts.schedule, steps))
        if (steps === 0) lossBefore = r.loss
        lossAfter = r.loss
        lossSum += r.loss * r.size
        samples += r.size
        steps++
      } catch (err) {
        if (!(err instanceof NonFiniteLossError)) throw err
        log.warn({ step: steps, err: err.message }, 'local round diverged; ending it early')
        diverged = true
        break outer
      } finally {
        ms += performance.now() - t0
      }
    }
  }
  return { steps, samples, loss: samples > 0 ? lossSum / samples : NaN, lossBefore, lossAfter, ms, diverged }
}

/** A round's time, split into network and aggregation work: each lap goes to one of them (or neither). */
export class RoundClock {
  netMs = 0
  aggMs = 0
  private last = performance.now()

  lap(to?: 'netMs' | 'aggMs'): void {
    const now = performance.now()
    if (to !== undefined) this[to] += now - this.last
    this.last = now
  }
}
