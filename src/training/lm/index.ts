/**
 * Small transformer language models: the `gpt` spec (decoder-only, pre-norm, byte vocabulary
 * by default: 4 layers, d 128, 4 heads, context 128, ≈ 0.8 M parameters), its train-step,
 * evaluation and inference graphs (standard ONNX opset 17, built with the graph module's
 * autodiff, AdamW and global-norm clipping), a trainer, the warm-up + cosine schedule,
 * seeded text generation, and ONNX export for any runtime (`exportGptOnnx`).
 *
 * @example
 * ```ts
 * import { WindowSampler, textTokens } from '../text/index.js'
 * import { LmTrainer, compileGpt, generate, initGptParams, warmupCosineLr } from './index.js'
 *
 * const spec = { type: 'gpt', name: 'tiny', vocab: 256, context: 32, layers: 1, heads: 2, dModel: 16 } as const
 * const model = compileGpt(spec)
 * const trainer = await LmTrainer.create(model, { weights: initGptParams(model, 1), deterministic: true })
 * const sampler = new WindowSampler(textTokens('Call me Ishmael. '.repeat(20)), { batchSize: 8, context: 32, seed: 1 })
 * for (let step = 0; step < 100; step++) {
 *   await trainer.step(sampler.next(), warmupCosineLr({ lr: 3e-3, warmupSteps: 10, totalSteps: 100 }, step))
 * }
 * const { text } = await generate(trainer.weights(), 'Call me', { spec, tokens: 40, temperature: 0.8, seed: 1 })
 * await trainer.close()
 * void text
 * ```
 */
export {
  GPT_DEFAULT,
  GPT_LIMITS,
  gptParamCount,
  gptParams,
  validateGptSpec,
  type GptParam,
  type GptSpec
} from './spec.js'
export {
  buildGptForward,
  buildGptInference,
  compileGpt,
  initGptParams,
  type CompileGptOptions,
  type CompiledGpt
} from './model.js'
export { LmTrainer, type LmStepResult, type LmTrainerOptions } from './trainer.js'
export {
  defaultWarmupSteps,
  roundLr,
  warmupCosineLr,
  type RoundSchedule,
  type WarmupCosine
} from './schedule.js'
export { trainLmRound, type LmRoundOptions, type LmRoundResult } from './round.js'
export { generate, sampleToken, type GenerateOptions, type Generated } from './generate.js'
export { GptSpecError, LmOptionsError, PromptTooLongError } from './errors.js'
export {
  exportGptOnnx,
  METADATA_LM_INPUT_KEY,
  METADATA_TOKENIZER_KEY,
  type LmInputContract
} from './export.js'
export {
  DEFAULT_GENERATE_TOKENS,
  DEFAULT_LM_BATCH_SIZE,
  DEFAULT_LM_LR,
  DEFAULT_LM_OPTIMIZER,
  DEFAULT_MAX_GRAD_NORM,
  DEFAULT_TEMPERATURE,
  LM_BATCH
} from './constants.js'
