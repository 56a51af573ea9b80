/**
 * A GPT language model's rounds: H steps on random next-token windows of the node's text shards
 * (`trainLmRound`, AdamW from a zeroed state) at the job's rate or at round r's share of its
 * warm-up + cosine schedule (`hyper.schedule`, over rounds × H steps; the receipt carries it),
 * evaluated on the held-out text in nats per token (nats per character for the byte tokenizer).
 */
import { LmTrainer, compileGpt, initGptParams, trainLmRound, type CompiledGpt } from '../../lm/index.js'
import { isDpsgd } from '../../dpsgd/index.js'
import type { ExecutionProviderName } from '../../runtime/index.js'
import { ContextTooLongError, evalWindows, requireWindow, type WindowBatch } from '../../text/index.js'
import { LM_EVAL_BATCH, LM_EVAL_WINDOWS } from './constants.js'
import { SwarmOptionsError, SwarmStateError } from '../errors.js'
import type { LmJobSpec } from '../job.js'
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

/** The tokens of text shards, concatenated in order (one shard as it is). */
export function concatTokens(shards: ShardData | readonly ShardData[], option = 'train'): Uint8Array {
  const list: readonly ShardData[] = Array.isArray(shards) ? shards : [shards as ShardData]
  const texts = list.map((d) => {
    if (!isTextShard(d)) {
      throw new SwarmOptionsError(`${option} data are tensors, but the job's model is a language model`, {
        option
      })
    }
    return d.tokens
  })
  if (texts.length === 1) return texts[0]!
  const out = new Uint8Array(texts.reduce((n, t) => n + t.length, 0))
  let at = 0
  for (const t of texts) {
    out.set(t, at)
    at += t.length
  }
  return out
}

/** `requireWindow`, as the option error a SwarmTrainer reports for data that does not fit. */
function checkWindow(tokens: Uint8Array, context: number, option: string): void {
  try {
    requireWindow(tokens, context, `the ${option} text`)
  } catch (err) {
    if (!(err instanceof ContextTooLongError)) throw err
    throw new SwarmOptionsError(err.message, { option, tokens: tokens.length, context })
  }
}

/** The rounds of a language-model job. */
export class LmRounds implements LocalRounds {
  readonly model: CompiledGpt
  private readonly init: LocalRoundsInit
  private readonly tokens: Uint8Array
  private readonly test: WindowBatch[] | undefined
  private trainer: LmTrainer | undefined

  /**
   * @throws {SwarmOptionsError} for tensors instead of text, a shard shorter than a window, or
   *   DP-SGD (not supported for language models yet; whole-update privacy is, in `shareRound`).
   * @throws {GptSpecError} / {OptimizerSpecError} from compiling the job's model.
   */
  constructor(job: LmJobSpec, init: LocalRoundsInit) {
    this.init = init
    if (isDpsgd(job.privacy)) {
      throw new SwarmOptionsError(
        "DP-SGD (privacy.mode 'dp-sgd') is not supported for language-model jobs yet: it needs per-example gradients, which the GPT graph does not compute; whole-update privacy (privacy: { clipNorm, noiseMultiplier }) works",
        { option: 'privacy' }
      )
    }
    this.model = compileGpt(job.model, { optimizer: job.optimizer })
    const context = this.model.spec.context
    this.tokens = concatTokens(init.train)
    checkWindow(this.tokens, context, 'train')
    if (init.test !== undefined) {
      const held = concatTokens(init.test, 'test')
      checkWindow(held, context, 'test')
      this.test = evalWindows(held, { context, batchSize: LM_EVAL_BATCH, maxWindows: LM_EVAL_WINDOWS })
    }
  }

  get params(): ParamLayout {
    return this.model.params
  }

  get executionProvider(): ExecutionProviderName {
    return this.runtime().executionProvider
  }

  initialWeights(seed: number): Map<string, Float32Array> {
    return initGptParams(this.model, seed)
  }

  async open(weights: Map<string, Float32Array>, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    this.trainer ??= await LmTrainer.create(this.model, { weights, ...sessionConfig(this.init.options) })
  }

  setWeights(weights: Map<string, Float32Array>): void {
    this.runtime().setWeights(weights)
  }

  getWeights(): Map<string, Float32Array> {
    return this.runtime().weights()
  }

  async train(o: LocalRoundOptions): Promise<LocalRoundResult> {
    return await trainLmRound(this.runtime(), this.tokens, {
      H: o.H,
      batchSize: o.batchSize,
      lr: o.lr,
      schedule: localRoundSchedule(this.init, o.round, o.lr),
      seed: o.seed,
      signal: o.signal,
      ...(o.beforeStep !== undefined ? { beforeStep: o.beforeStep } : {})
    })
  }

  async evaluate(signal: AbortSignal): Promise<LocalEvaluation | undefined> {
    if (this.test === undefined) return undefined
    signal.throwIfAborted()
    return { loss: await this.runtime().evaluate(this.test) }
  }

  receiptHyper(round: number): Record<string, unknown> {
    return scheduleReceiptHyper(localRoundSchedule(this.init, round, this.init.options.lr))
  }

  async close(): Promise<void> {
    const t = this.trainer
    this.trainer = undefined
    await t?.close()
  }

  private runtime(): LmTrainer {
    if (this.trainer === undefined)
      throw new SwarmStateError('SWARM_STOPPED', 'the local trainer is not open')
    return this.trainer
  }
}
