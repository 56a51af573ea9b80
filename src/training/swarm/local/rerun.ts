/**
 * Re-running one round of a job on a deterministic CPU trainer (one thread), of the job's kind,
 * exactly as a `SwarmTrainer` with `deterministic: true` trained it: `trainRound` on a
 * classifier's tensors, `trainLmRound` on a language model's tokens. Used by `RoundReexecutor`.
 */
import { shapeSize } from '../../data/index.js'
import { compileModel, initState } from '../../graph/index.js'
import { LmTrainer, compileGpt, trainLmRound, type RoundSchedule } from '../../lm/index.js'
import { Trainer } from '../../runtime/index.js'
import { ReexecSpecError } from '../errors.js'
import { isGptModel, type JobSpec } from '../job.js'
import { trainRound } from '../round.js'
import { isTextShard, type ParamLayout, type ShardData } from './types.js'

/** What a re-run takes besides its start weights and data. */
export interface RerunOptions {
  H: number
  batchSize: number
  lr: number
  /** The round's schedule (`receiptSchedule` of the receipt's `hyper.schedule`); absent: constant `lr`. */
  schedule?: RoundSchedule | undefined
  seed: number
  signal: AbortSignal
}

/** What a re-run did. */
export interface Rerun {
  weights: Map<string, Float32Array>
  samples: number
  steps: number
  diverged: boolean
}

/** A job's compiled model and its (lazily created, reused) deterministic CPU trainer. */
export interface RoundRerunner {
  readonly params: ParamLayout
  /**
   * @throws {ReexecSpecError} `REEXEC_SPEC_MISMATCH` (field `shards`) when the data does not fit the model.
   */
  rerun(start: Map<string, Float32Array>, data: ShardData, o: RerunOptions): Promise<Rerun>
  close(): Promise<void>
}

function misfit(message: string, fields: Record<string, unknown>): never {
  throw new ReexecSpecError('shards', message, fields)
}

/** The re-runner of a job's rounds, by the kind of its model. */
export function roundRerunner(spec: JobSpec): RoundRerunner {
  const model = spec.model
  if (isGptModel(model)) {
    const compiled = compileGpt(model, { optimizer: spec.optimizer })
    let trainer: LmTrainer | undefined
    return {
      params: compiled.params,
      async rerun(start, data, o) {
        if (!isTextShard(data)) misfit('the shards hold tensors; the job trains a language model', {})
        if (data.tokens.length < compiled.spec.context + 1) {
          misfit(
            `the shards hold ${data.tokens.length} tokens, fewer than a window of ${compiled.spec.context + 1}`,
            {
              count: data.tokens.length
            }
          )
        }
        if (trainer === undefined)
          trainer = await LmTrainer.create(compiled, { weights: start, deterministic: true })
        else trainer.setWeights(start)
        const r = await trainLmRound(trainer, data.tokens, o)
        return { weights: trainer.weights(), samples: r.samples, steps: r.steps, diverged: r.diverged }
      },
      async close() {
        const t = trainer
        trainer = undefined
        await t?.close()
      }
    }
  }
  const compiled = compileModel(model, spec.optimizer)
  const zeroState = initState(compiled)
  let trainer: Trainer | undefined
  return {
    params: compiled.params,
    async rerun(start, data, o) {
      if (isTextShard(data)) misfit('the shards hold text; the job trains a classifier', {})
      if (data.count <= 0 || shapeSize(data.sampleShape) !== shapeSize(model.input)) {
        misfit(
          data.count <= 0
            ? 'the shards hold no samples'
            : `shard samples of [${data.sampleShape.join(', ')}] do not fit model input [${model.input.join(', ')}]`,
          { count: data.count, sampleShape: [...data.sampleShape] }
        )
      }
      if (trainer === undefined) {
        trainer = await Trainer.create(compiled, { weights: start, deterministic: true, signal: o.signal })
      } else {
        trainer.setWeights(start)
      }
      const r = await trainRound(trainer, data, { ...o, zeroState })
      return { weights: trainer.getWeights(), samples: r.samples, steps: r.steps, diverged: r.diverged }
    },
    async close() {
      const t = trainer
      trainer = undefined
      await t?.close()
    }
  }
}
