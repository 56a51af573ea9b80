/**
 * The training runtime: a `Trainer` that runs a model's train-step graph with
 * onnxruntime-node (one session per job, params and optimizer state kept in reused
 * buffers, CUDA/WebGPU/CPU execution providers, a bit-reproducible deterministic CPU mode),
 * learning-rate schedules, and the local training loop (`trainLocal`).
 *
 * @example
 * ```ts
 * import { MODELS } from '../graph/index.js'
 * import { trainLocal } from './index.js'
 * const images = { images: new Uint8Array(64 * 784), labels: new Uint8Array(64), count: 64, rows: 28, cols: 28 }
 * const result = await trainLocal({
 *   spec: MODELS.mlp,
 *   optimizer: { type: 'sgd', momentum: 0.9 },
 *   lr: { kind: 'cosine', lr: 0.05 },
 *   epochs: 1,
 *   batchSize: 32,
 *   seed: 1,
 *   train: images,
 *   deterministic: true
 * })
 * void result.weights
 * ```
 */
export { Trainer, type TrainerOptions, type BatchLabels } from './trainer.js'
export {
  trainLocal,
  trainEpoch,
  DEFAULT_PROGRESS_EVERY,
  type TrainLocalOptions,
  type TrainLocalResult,
  type EpochResult,
  type EpochStats,
  type EpochOptions
} from './loop.js'
export { lrAt, validateSchedule, describeSchedule, type LrSchedule, type SchedulePoint } from './schedule.js'
export {
  createSession,
  planProvider,
  sessionOptions,
  cudaProviderInstalled,
  ortBinaryDir,
  type Device,
  type ExecutionProviderName,
  type ProviderPlan,
  type SessionConfig
} from './providers.js'
export { probeProviders, vulkanLoaderPresent, type ProviderProbe } from './probe.js'
export {
  NonFiniteLossError,
  ExecutionProviderError,
  ModelContractError,
  TrainerOptionsError,
  TrainerStateError
} from './errors.js'
export type { TrainableModel, TensorInfo, StepResult, EvalResult, ProgressEvent } from './types.js'
export {
  DEFAULT_DEVICE,
  DEFAULT_INTRA_OP_THREADS,
  DEFAULT_INTER_OP_THREADS,
  DEFAULT_EVAL_BATCH_SIZE,
  CUDA_PROVIDER_LIBRARY
} from './constants.js'
export { perSampleLoss, perSampleLossOf, type PerSampleLossOptions, type LogitsSource } from './per-sample.js'
