/**
 * ONNX graph builder with reverse-mode autodiff. onnxruntime-node has no training API, so a
 * model spec compiles into a standard ONNX (opset 17, ai.onnx domain only) **train-step graph**
 * — forward, mean softmax cross-entropy, backward, SGD/Adam update — that any ONNX runtime can
 * run as plain inference, plus an inference graph that can be exported with embedded weights.
 *
 * Transformer blocks (`nn`: embedding, LayerNorm, GELU, causal self-attention, …) are built
 * the same way; `clipByGlobalNorm` and AdamW serve language-model train steps.
 *
 * Lower level: `Graph` and the op builders record a tape of differentiable ops; `gradients()`
 * walks it backwards, each op's gradient rule emitting backward nodes into the same graph.
 *
 * @example
 * ```ts
 * import * as ort from 'onnxruntime-node'
 * import { MODELS, compileModel, initParams, initState } from './index.js'
 *
 * const model = compileModel(MODELS.mlp, { type: 'sgd', momentum: 0.9 })
 * const session = await ort.InferenceSession.create(model.trainStep)
 * const params = initParams(model, 42)
 * const state = initState(model)
 * const feeds: Record<string, ort.Tensor> = {
 *   x: new ort.Tensor('float32', new Float32Array(64 * 784), [64, 784]),
 *   y: new ort.Tensor('int64', new BigInt64Array(64), [64]),
 *   lr: new ort.Tensor('float32', Float32Array.of(0.05), [])
 * }
 * for (const p of model.params) feeds[p.name] = new ort.Tensor('float32', params.get(p.name)!, p.shape)
 * for (const s of model.state) feeds[s.name] = new ort.Tensor('float32', state.get(s.name)!, s.shape)
 * const out = await session.run(feeds)
 * const loss = out.loss!.data[0] // then feed out['new:<name>'] back as the next step's params and state
 * ```
 */
export {
  MODELS,
  inferShapes,
  paramsOf,
  validateSpec,
  type LayerSpec,
  type ModelSpec,
  type ParamInfo,
  type TensorInfo
} from './spec.js'
export {
  ADAM_DEFAULTS,
  ADAM_STEP,
  ADAMW_WEIGHT_DECAY,
  applyOptimizer,
  outputOptimizerStep,
  clipByGlobalNorm,
  optimizerState,
  validateOptimizer,
  type OptimizerSpec
} from './optim.js'
export { BATCH, buildForward, buildInferenceModel, compileModel, type CompiledModel } from './model.js'
export { initParams, initState } from './init.js'
export { GraphBuildError, ModelSpecError, OptimizerSpecError, WeightsMismatchError } from './errors.js'
export {
  Graph,
  Value,
  attr,
  broadcastShapes,
  pruneGraph,
  type Attr,
  type DType,
  type Dim,
  type GraphNode,
  type Initializer,
  type Shape,
  type TapeEntry
} from './graph.js'
export { gradients } from './autodiff.js'
export { IR_VERSION, OPSET, serializeGraph, type SerializeOptions } from './onnx.js'
export * as ops from './ops.js'
export * as nn from './nn.js'
export type { AttentionWeights } from './nn.js'
