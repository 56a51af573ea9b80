/**
 * The kind-specific side of a swarm round (`LocalRounds`): a classifier's rounds on tensors, a
 * GPT language model's on token windows; and DiLoCo's outer step as a node applies it
 * (`OuterOptimizer`). `SwarmTrainer` calls these and runs the same round protocol for every kind.
 *
 * @example
 * ```ts
 * import { parseJobSpec } from '../job.js'
 * import { resolveOptions } from '../options.js'
 * import { localRounds } from './index.js'
 *
 * const job = parseJobSpec({
 *   name: 'tiny-lm',
 *   model: { type: 'gpt', name: 'tiny', vocab: 256, context: 16, layers: 1, heads: 2, dModel: 16 },
 *   optimizer: { type: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
 *   hyper: { lr: 3e-3, batchSize: 8, H: 10, k: 2, rounds: 4 },
 *   dataset: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
 *   aggregation: 'mean',
 *   compression: 'none',
 *   maxNorm: 100,
 *   seed: 1,
 *   creator: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
 * })
 * const tokens = new TextEncoder().encode('Call me Ishmael. '.repeat(20))
 * const options = resolveOptions({ job, jobId: 'job', did: 'did:key:z6Mk…', deterministic: true })
 * const local = localRounds({ job, jobId: 'job', train: { tokens }, options })
 * await local.open(local.initialWeights(job.seed), new AbortController().signal)
 * const { loss } = await local.train({ round: 0, seed: 1, H: 10, lr: 3e-3, batchSize: 8, signal: new AbortController().signal })
 * await local.close()
 * void loss
 * ```
 */
import { paramsOf } from '../../graph/index.js'
import { gptParams } from '../../lm/index.js'
import { isGptModel, type ClassifierJobSpec, type JobModel, type LmJobSpec } from '../job.js'
import { ClassifierRounds } from './classifier.js'
import { LmRounds } from './lm.js'
import type { LocalRounds, LocalRoundsInit, ParamLayout } from './types.js'

/** The parameters of a job's model (either kind), as its weights are encoded and hashed. */
export function modelParams(model: JobModel): ParamLayout {
  return isGptModel(model) ? gptParams(model) : paramsOf(model)
}

/**
 * The local rounds of a job, by the kind of its model.
 *
 * @throws {SwarmOptionsError} for data that does not fit the job's model.
 * @throws the model compiler's spec errors.
 */
export function localRounds(init: LocalRoundsInit): LocalRounds {
  const job = init.job
  return isGptModel(job.model)
    ? new LmRounds(job as LmJobSpec, init)
    : new ClassifierRounds(job as ClassifierJobSpec, init)
}

export { ClassifierRounds } from './classifier.js'
export { LmRounds, concatTokens } from './lm.js'
export { OuterOptimizer } from './outer.js'
export { roundRerunner, type Rerun, type RerunOptions, type RoundRerunner } from './rerun.js'
export { LM_EVAL_BATCH, LM_EVAL_WINDOWS } from './constants.js'
export {
  SCHEDULE_TYPE,
  checkScheduleClaim,
  jobRoundSchedule,
  receiptSchedule,
  scheduleHyper,
  type ScheduleHyper
} from './schedule.js'
export {
  isTextShard,
  type LocalEvaluation,
  type LocalRoundOptions,
  type LocalRoundResult,
  type LocalRounds,
  type LocalRoundsInit,
  type ParamLayout,
  type ShardData,
  type TextShard
} from './types.js'
