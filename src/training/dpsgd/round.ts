/**
 * One local DP-SGD round, a pure function of its inputs (as the plain round of the swarm module), so that a
 * verifier re-runs it bit for bit: H steps, each on a Poisson sample of the round's data (every record drawn
 * independently with probability q, from `Rng(seed)`), padded with masked rows to a fixed batch shape, with
 * the step's noise drawn from `Rng(noiseSeed)` by the named sampler (a ziggurat by default: ~10⁵ Gaussians per
 * MLP step cost under a millisecond).
 */
import { performance } from 'node:perf_hooks'
import * as ort from 'onnxruntime-node'
import { logger, Rng } from '../../common/index.js'
import { shapeSize, type TensorDataset } from '../data/index.js'
import { PrivacyParameterError } from '../privacy/index.js'
import { NonFiniteLossError, type StepResult, type Trainer } from '../runtime/index.js'
import {
  BATCH_ROUNDING,
  DP_INPUTS,
  NOISE_SAMPLER,
  NOISE_SAMPLERS,
  PAD_SIGMAS,
  type NoiseSampler
} from './constants.js'

const log = logger('shoal:training:dpsgd')

/** Options of {@link trainDpsgdRound}. */
export interface DpsgdRoundOptions {
  /** Local steps. */
  H: number
  /** Poisson sampling rate q ∈ (0, 1]: the expected batch is q·N. */
  sampleRate: number
  lr: number
  /** Per-example clip norm C (> 0). */
  clipNorm: number
  /** Noise multiplier σ (> 0): the clipped sum gets N(0, σ²C²) per coordinate. */
  noiseMultiplier: number
  /** Seed of the Poisson sampling (the round's data-order seed). */
  seed: number
  /** Seed of the round's noise (secret: see docs/privacy.md). */
  noiseSeed: number
  /** Number of noise values per step (`DpsgdModel.noiseSize`). */
  noiseSize: number
  /** How the noise is drawn from `noiseSeed` (default {@link NOISE_SAMPLER}; a re-run uses the receipt's). */
  noiseSampler?: NoiseSampler
  /** Zeroed optimizer state, installed before the first step (omit for a stateless optimizer). */
  zeroState?: ReadonlyMap<string, Float32Array>
  signal?: AbortSignal
  /** Awaited before each step (e.g. to hold while paused). */
  beforeStep?: () => Promise<void>
}

/** What {@link trainDpsgdRound} did (the fields of the plain round's result). */
export interface DpsgdRoundResult {
  steps: number
  /** Expected examples processed, `steps × q·N` rounded: the realised counts are not released. */
  samples: number
  /** Mean loss over the steps, weighted by the realised batch sizes (NaN when no example was drawn). */
  loss: number
  lossBefore: number
  lossAfter: number
  /** Time spent in training steps (ms), pauses excluded. */
  ms: number
  diverged: boolean
  /** Realised Poisson batch sizes, step by step (for benchmarks and tests; not to be shared). */
  batchSizes: number[]
}

/**
 * Check the parameters of a DP-SGD round.
 *
 * @throws PrivacyParameterError (code INVALID_PRIVACY_PARAMETER) naming the parameter: C or σ not finite and
 *   > 0, q outside (0, 1], a noise sampler not in {@link NOISE_SAMPLERS}.
 */
export function checkDpsgdParameters(p: {
  clipNorm: number
  noiseMultiplier: number
  sampleRate: number
  noiseSampler?: string | undefined
}): void {
  if (p.noiseSampler !== undefined && !(NOISE_SAMPLERS as readonly string[]).includes(p.noiseSampler))
    throw new PrivacyParameterError('noiseSampler', p.noiseSampler, `one of ${NOISE_SAMPLERS.join(', ')}`)
  if (!(Number.isFinite(p.clipNorm) && p.clipNorm > 0))
    throw new PrivacyParameterError('clipNorm', p.clipNorm, 'a finite number > 0')
  if (!(Number.isFinite(p.noiseMultiplier) && p.noiseMultiplier > 0))
    throw new PrivacyParameterError('noiseMultiplier', p.noiseMultiplier, 'a finite number > 0')
  if (!(p.sampleRate > 0 && p.sampleRate <= 1))
    throw new PrivacyParameterError('sampleRate', p.sampleRate, 'a number in (0, 1]')
}

/** The padded batch size for a Poisson(q, N) draw: mean + PAD_SIGMAS standard deviations, rounded up. */
export function paddedBatchSize(count: number, sampleRate: number): number {
  const mean = count * sampleRate
  const sd = Math.sqrt(count * sampleRate * (1 - sampleRate))
  const cap = Math.min(count, Math.ceil(mean + PAD_SIGMAS * sd))
  return Math.max(BATCH_ROUNDING, Math.ceil(cap / BATCH_ROUNDING) * BATCH_ROUNDING)
}

interface Slot {
  x: Float32Array
  y: BigInt64Array
  mask: Float32Array
  noise: Float32Array
  inputs: Record<string, ort.Tensor>
  drawn: number
}

/**
 * Train one DP-SGD round on `trainer` (compiled by `compileDpsgdModel`), from the weights it holds. A step with a
 * non-finite loss ends the round early (the trainer has rolled it back).
 *
 * @throws PrivacyParameterError for a C, σ, q or sampler out of range (before any step).
 * @throws the signal's reason when aborted.
 */
export async function trainDpsgdRound(
  trainer: Trainer,
  data: TensorDataset,
  opts: DpsgdRoundOptions
): Promise<DpsgdRoundResult> {
  checkDpsgdParameters(opts)
  const N = data.count
  const S = shapeSize(data.sampleShape)
  const q = opts.sampleRate
  const cap = paddedBatchSize(N, q)
  const sampler = new Rng(opts.seed)
  const noiseRng = new Rng(opts.noiseSeed)
  const draw =
    (opts.noiseSampler ?? NOISE_SAMPLER) === 'ziggurat-sfc32'
      ? (out: Float32Array) => noiseRng.fillGaussianZiggurat(out)
      : (out: Float32Array) => noiseRng.fillGaussian(out)
  const scalars = {
    [DP_INPUTS.clip]: new ort.Tensor('float32', Float32Array.of(opts.clipNorm), []),
    [DP_INPUTS.std]: new ort.Tensor('float32', Float32Array.of(opts.noiseMultiplier * opts.clipNorm), []),
    [DP_INPUTS.denom]: new ort.Tensor('float32', Float32Array.of(q * N), [])
  }
  const newSlot = (B: number): Slot => {
    const s: Slot = {
      x: new Float32Array(B * S),
      y: new BigInt64Array(B),
      mask: new Float32Array(B),
      noise: new Float32Array(opts.noiseSize),
      inputs: {},
      drawn: 0
    }
    s.inputs = {
      ...scalars,
      [DP_INPUTS.mask]: new ort.Tensor('float32', s.mask, [B]),
      [DP_INPUTS.noise]: new ort.Tensor('float32', s.noise, [opts.noiseSize])
    }
    return s
  }
  const slots = [newSlot(cap), newSlot(cap)]
  const drawn = new Int32Array(N)
  /** Draw the Poisson sample and the noise of a step into a slot (a larger one when the draw overflows). */
  const prepare = (k: number): Slot => {
    let n = 0
    for (let j = 0; j < N; j++) if (sampler.next() < q) drawn[n++] = j
    let slot = slots[k]!
    if (n > slot.y.length) {
      slot = newSlot(Math.ceil(n / BATCH_ROUNDING) * BATCH_ROUNDING)
      slot.noise = slots[k]!.noise
      slot.inputs[DP_INPUTS.noise] = slots[k]!.inputs[DP_INPUTS.noise]!
    }
    const B = slot.y.length
    for (let i = 0; i < B; i++) {
      if (i < n) {
        const j = drawn[i]!
        slot.x.set(data.x.subarray(j * S, (j + 1) * S), i * S)
        slot.y[i] = BigInt(data.y[j]!)
        slot.mask[i] = 1
      } else if (slot.mask[i] !== 0 || i < slot.drawn) {
        slot.x.fill(0, i * S, (i + 1) * S)
        slot.y[i] = 0n
        slot.mask[i] = 0
      }
    }
    slot.drawn = n
    draw(slot.noise)
    return slot
  }

  if (opts.zeroState !== undefined && opts.zeroState.size > 0) trainer.setState(opts.zeroState)
  const batchSizes: number[] = []
  let steps = 0
  let lossSum = 0
  let lossBefore = NaN
  let lossAfter = NaN
  let ms = 0
  let diverged = false
  let next = opts.H > 0 ? prepare(0) : undefined
  for (let t = 0; t < opts.H && next !== undefined; t++) {
    if (opts.beforeStep !== undefined) await opts.beforeStep()
    opts.signal?.throwIfAborted()
    const cur = next
    const t0 = performance.now()
    try {
      const run: Promise<StepResult> = trainer.step(cur.x, cur.y, opts.lr, { inputs: cur.inputs })
      // The next step's sample and noise (they do not depend on this step). onnxruntime-node runs a session on
      // this thread (in a setImmediate), so this comes before the step's compute, not beside it.
      next = t + 1 < opts.H ? prepare((t + 1) % 2) : undefined
      const r = await run
      if (steps === 0) lossBefore = r.loss
      lossAfter = r.loss
      lossSum += r.loss * cur.drawn
      batchSizes.push(cur.drawn)
      steps++
    } catch (err) {
      if (!(err instanceof NonFiniteLossError)) throw err
      log.warn({ step: steps, err: err.message }, 'DP-SGD round diverged; ending it early')
      diverged = true
      break
    } finally {
      ms += performance.now() - t0
    }
  }
  const realised = batchSizes.reduce((a, b) => a + b, 0)
  return {
    steps,
    samples: steps * Math.min(Math.round(q * N), N),
    loss: realised > 0 ? lossSum / realised : NaN,
    lossBefore,
    lossAfter,
    ms,
    diverged,
    batchSizes
  }
}
