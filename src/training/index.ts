/**
 * The training layer: ONNX graphs built from model specs (`graph/`), the onnxruntime-node
 * trainer and local training loop (`runtime/`), the data pipeline (`data/`), model export
 * plus the weights format used by checkpoints and gossip (`export/`), differential
 * privacy for shared updates (`privacy/`), and small transformer language models (`lm/`) over
 * byte-tokenized text (`text/`).
 *
 * @example
 * ```ts
 * import { MODELS, trainLocal, exportOnnx, encodeWeights } from './index.js'
 * const images = { images: new Uint8Array(64 * 784), labels: new Uint8Array(64), count: 64, rows: 28, cols: 28 }
 * const { weights } = await trainLocal({
 *   spec: MODELS.mlp,
 *   optimizer: { type: 'sgd', momentum: 0.9 },
 *   lr: 0.05,
 *   epochs: 1,
 *   batchSize: 32,
 *   seed: 1,
 *   train: images,
 *   deterministic: true
 * })
 * const onnx = exportOnnx(MODELS.mlp, weights, { job: 'job-1' })
 * const blob = encodeWeights(weights)
 * ```
 */
export * from './data/index.js'
export * from './runtime/index.js'
export * from './export/index.js'
export * from './privacy/index.js'
export {
  MODELS,
  validateSpec,
  validateOptimizer,
  inferShapes,
  paramsOf,
  compileModel,
  buildInferenceModel,
  initParams,
  initState,
  ADAM_DEFAULTS,
  ADAM_STEP,
  OPSET,
  IR_VERSION,
  ModelSpecError,
  OptimizerSpecError,
  GraphBuildError,
  WeightsMismatchError,
  type ModelSpec,
  type LayerSpec,
  type OptimizerSpec,
  type CompiledModel,
  type ParamInfo,
  type TensorInfo
} from './graph/index.js'
export * from './swarm/index.js'
export * from './receipts/index.js'
export * from './dpsgd/index.js'
export * from './aggregate/index.js'
export * from './text/index.js'
export * from './lm/index.js'
export * from './governance/index.js'
