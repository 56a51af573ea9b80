/**
 * A classifier's rounds (mlp, cnn on tensors): plain local steps (`trainRound`, at a constant rate
 * or the job's warm-up + cosine schedule, which the receipt carries) or DP-SGD ones under a
 * `dp-sgd` job, on the onnxruntime `Trainer`; evaluated for accuracy and loss.
 */
import { shapeSize, type TensorDataset } from '../../data/index.js'
import { DpsgdRounds, isDpsgd } from '../../dpsgd/index.js'
import { compileModel, initParams, initState, type CompiledModel } from '../../graph/index.js'
import { Trainer, type ExecutionProviderName } from '../../runtime/index.js'
import { SwarmOptionsError, SwarmStateError } from '../errors.js'
import type { ClassifierJobSpec } from '../job.js'
import { concatDatasets, trainRound } from '../round.js'
import { localRoundSchedule, scheduleReceiptHyper } from './schedule.js'
import {
  isTextShard,
  type LocalEvaluation,
  type LocalRoundOptions,
  type LocalRoundResult,
  type LocalRounds,
  type LocalRoundsInit,
  type ParamLayout,
  type ShardData,
  sessionConfig
} from './types.js'

function tensors(d: ShardData, option: string): TensorDataset {
  if (isTextShard(d)) {
    throw new SwarmOptionsError(`${option} data is text, but the job's model is a classifier`, { option })
  }
  return d
}

/** The rounds of a classifier job. */
export class ClassifierRounds implements LocalRounds {
  readonly compiled: CompiledModel
  /** The job's DP-SGD rounds (its plan solved before any round), when its privacy mode is dp-sgd. */
  readonly dpsgd: DpsgdRounds | undefined
  private readonly init: LocalRoundsInit
  private readonly data: TensorDataset
  private readonly test: TensorDataset | undefined
  private readonly zeroState: Map<string, Float32Array>
  private trainer: Trainer | undefined

  /**
   * @throws {SwarmOptionsError} for data that does not fit the model.
   * @throws {ModelSpecError} / {OptimizerSpecError} from compiling the job's model.
   */
  constructor(job: ClassifierJobSpec, init: LocalRoundsInit) {
    this.init = init
    const shards = Array.isArray(init.train) ? init.train : [init.train as ShardData]
    this.data = concatDatasets(shards.map((d) => tensors(d, 'train')))
    this.test = init.test === undefined ? undefined : tensors(init.test, 'test')
    const p = job.privacy
    this.dpsgd = isDpsgd(p)
      ? new DpsgdRounds({
          ...init.options,
          privacy: p,
          model: job.model,
          optimizer: job.optimizer,
          jobId: init.jobId,
          records: this.data.count,
          secret: init.noiseSeed
        })
      : undefined
    this.compiled = this.dpsgd?.model ?? compileModel(job.model, job.optimizer)
    const inputSize = shapeSize(job.model.input)
    for (const [name, d] of [
      ['train', this.data],
      ['test', this.test]
    ] as const) {
      if (d !== undefined && shapeSize(d.sampleShape) !== inputSize) {
        throw new SwarmOptionsError(
          `${name} samples of [${d.sampleShape.join(', ')}] do not fit model input [${job.model.input.join(', ')}]`,
          { option: name }
        )
      }
    }
    this.zeroState = initState(this.compiled)
  }

  get params(): ParamLayout {
    return this.compiled.params
  }

  get executionProvider(): ExecutionProviderName {
    return this.runtime().executionProvider
  }

  initialWeights(seed: number): Map<string, Float32Array> {
    return initParams(this.compiled, seed)
  }

  async open(weights: Map<string, Float32Array>, signal: AbortSignal): Promise<void> {
    this.trainer ??= await Trainer.create(this.compiled, {
      weights,
      ...sessionConfig(this.init.options),
      signal
    })
  }

  setWeights(weights: Map<string, Float32Array>): void {
    this.runtime().setWeights(weights)
  }

  getWeights(): Map<string, Float32Array> {
    return this.runtime().getWeights()
  }

  async train(o: LocalRoundOptions): Promise<LocalRoundResult> {
    const trainer = this.runtime()
    const steps = { H: o.H, lr: o.lr, seed: o.seed, zeroState: this.zeroState, signal: o.signal }
    const beforeStep = o.beforeStep
    const schedule = localRoundSchedule(this.init, o.round, o.lr)
    return await (this.dpsgd?.run(trainer, this.data, {
      ...steps,
      round: o.round,
      ...(beforeStep ? { beforeStep } : {})
    }) ??
      trainRound(trainer, this.data, {
        ...steps,
        batchSize: o.batchSize,
        ...(schedule !== undefined ? { schedule } : {}),
        ...(beforeStep ? { beforeStep } : {})
      }))
  }

  async evaluate(signal: AbortSignal): Promise<LocalEvaluation | undefined> {
    if (this.test === undefined) return undefined
    const ev = await this.runtime().evaluate(this.test, undefined, { signal })
    return { loss: ev.loss, accuracy: ev.accuracy }
  }

  receiptHyper(round: number): Record<string, unknown> {
    if (this.dpsgd !== undefined) return { dp: this.dpsgd.receiptHyper(round) }
    return scheduleReceiptHyper(localRoundSchedule(this.init, round, this.init.options.lr))
  }

  async close(): Promise<void> {
    const t = this.trainer
    this.trainer = undefined
    await t?.close()
  }

  private runtime(): Trainer {
    if (this.trainer === undefined)
      throw new SwarmStateError('SWARM_STOPPED', 'the local trainer is not open')
    return this.trainer
  }
}
