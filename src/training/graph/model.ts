/**
 * Compile a model spec into ONNX graphs: the train step (forward, loss, backward,
 * optimizer update) and the inference model (logits and probabilities).
 */
import { logger } from '../../common/index.js'
import { gradients } from './autodiff.js'
import { WeightsMismatchError } from './errors.js'
import { Graph, type Value } from './graph.js'
import { serializeGraph } from './onnx.js'
import { optimizerState, outputOptimizerStep, validateOptimizer, type OptimizerSpec } from './optim.js'
import {
  argMax,
  cast,
  conv,
  div,
  equal,
  flatten,
  gemm,
  maxPool,
  reduceSum,
  relu,
  softmax,
  softmaxCrossEntropy,
  sub
} from './ops.js'
import { paramsOf, validateSpec, type ModelSpec, type ParamInfo, type TensorInfo } from './spec.js'

const log = logger('shoal:training:graph')

/** Symbolic batch dimension of `x`, `y` and the outputs. */
export const BATCH = 'B'

export interface CompiledModel {
  spec: ModelSpec
  optimizer: OptimizerSpec
  /** Parameters, in graph input order. */
  params: ParamInfo[]
  /** Optimizer state tensors: momentum buffers; Adam m, v and the step counter `adam.t` (float [1]). */
  state: TensorInfo[]
  /**
   * ONNX train step. Inputs: every param and state tensor (by name), 'x' float32 [B, ...input],
   * 'y' int64 [B], 'lr' float32 []. Outputs: 'new:<name>' for each param and state tensor,
   * 'loss' float32 [] (mean cross-entropy before the update), 'correct' float32 [] (argmax == y count).
   */
  trainStep: Uint8Array
  /** ONNX inference: inputs params + 'x', outputs 'logits' and 'probs' [B, classes]. */
  inference: Uint8Array
}

/** Emit the forward pass of `spec` on `x` [B, ...input]; returns the logits [B, classes]. */
export function buildForward(g: Graph, spec: ModelSpec, params: ReadonlyMap<string, Value>, x: Value): Value {
  const p = (name: string): Value => {
    const v = params.get(name)
    if (v === undefined) throw new WeightsMismatchError(`missing parameter '${name}'`, { name })
    return v
  }
  let h = x
  const layers = spec.layers
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!
    const next = layers[i + 1]
    switch (layer.type) {
      case 'dense':
        h = gemm(g, h, p(`dense${i}.weight`), p(`dense${i}.bias`))
        break
      case 'relu':
        if (next?.type === 'maxpool') {
          // max and relu commute (relu is monotone), so pool first: the relu and its backward
          // then run on the pooled tensor, a fraction of the size. Values are bit-identical.
          h = relu(g, maxPool(g, h, { size: next.size, stride: next.stride ?? next.size }))
          i++
        } else {
          h = relu(g, h)
        }
        break
      case 'conv':
        h = conv(g, h, p(`conv${i}.weight`), p(`conv${i}.bias`), {
          stride: layer.stride ?? 1,
          padding: layer.padding ?? 0
        })
        break
      case 'maxpool':
        h = maxPool(g, h, { size: layer.size, stride: layer.stride ?? layer.size })
        break
      case 'flatten':
        h = flatten(g, h, 1)
        break
    }
  }
  return h
}

/**
 * Build the train-step and inference graphs for a model and optimizer.
 *
 * Thrown: ModelSpecError / OptimizerSpecError when a spec is invalid.
 */
export function compileModel(spec: ModelSpec, optimizer: OptimizerSpec): CompiledModel {
  const s = validateSpec(spec)
  const opt = validateOptimizer(optimizer)
  const params = paramsOf(s)
  const state = optimizerState(opt, params)

  const g = new Graph()
  const pv = new Map(params.map((p) => [p.name, g.input(p.name, 'float', p.shape, { requiresGrad: true })]))
  const sv = new Map(state.map((t) => [t.name, g.input(t.name, 'float', t.shape)]))
  const x = g.input('x', 'float', [BATCH, ...s.input])
  const y = g.input('y', 'int64', [BATCH])
  const lr = g.input('lr', 'float', [])

  const logits = buildForward(g, s, pv, x)
  const { loss } = softmaxCrossEntropy(g, logits, y)
  const paramValues = params.map((p) => pv.get(p.name)!)
  const grads = gradients(g, loss, paramValues)
  const correct = reduceSum(g, cast(g, equal(g, argMax(g, logits, 1), y), 'float'))
  outputOptimizerStep(g, opt, params, paramValues, grads, { infos: state, values: sv }, lr)
  g.output(loss, 'loss')
  g.output(correct, 'correct')

  const trainStep = serializeGraph(g, { graphName: `${s.name}-train-step` })
  const inference = buildInferenceModel(s)
  log.debug(
    { model: s.name, optimizer: opt.type, nodes: g.nodes.length, bytes: trainStep.byteLength },
    'compiled train step'
  )
  return { spec: s, optimizer: opt, params, state, trainStep, inference }
}

/**
 * The inference model: 'x' [B, ...input] → 'logits' and 'probs' [B, classes]. With `weights`,
 * the parameters are embedded as initializers (a standalone model with the single input 'x');
 * without, they are graph inputs. `metadata` goes into the model's metadata_props. Weights
 * not named by the spec are ignored. With `normalization`, 'x' takes inputs as the data comes
 * (e.g. pixels in [0, 1]) and the graph standardises them first, `(x − mean) / std`, as the
 * model was trained.
 *
 * Thrown: ModelSpecError for an invalid spec; WeightsMismatchError when a weight is missing or has the wrong size.
 */
export function buildInferenceModel(
  spec: ModelSpec,
  weights?: ReadonlyMap<string, Float32Array>,
  metadata?: Record<string, string>,
  normalization?: { mean: number; std: number }
): Uint8Array {
  const s = validateSpec(spec)
  const params = paramsOf(s)
  const g = new Graph()
  g.recording = false
  const pv = new Map<string, Value>()
  for (const p of params) {
    if (weights === undefined) {
      pv.set(p.name, g.input(p.name, 'float', p.shape))
      continue
    }
    const w = weights.get(p.name)
    const size = p.shape.reduce((a, b) => a * b, 1)
    if (w === undefined) throw new WeightsMismatchError(`missing weight '${p.name}'`, { name: p.name })
    if (w.length !== size) {
      throw new WeightsMismatchError(
        `weight '${p.name}' has ${w.length} values, expected ${size} for [${p.shape.join(',')}]`,
        {
          name: p.name,
          expected: size,
          actual: w.length
        }
      )
    }
    pv.set(p.name, g.constant(w, p.shape, 'float', p.name))
  }
  const x = g.input('x', 'float', [BATCH, ...s.input])
  const standardised =
    normalization === undefined
      ? x
      : div(
          g,
          sub(g, x, g.constant(new Float32Array([normalization.mean]), [], 'float', 'input_mean')),
          g.constant(new Float32Array([normalization.std]), [], 'float', 'input_std')
        )
  const logits = buildForward(g, s, pv, standardised)
  const probs = softmax(g, logits, 1)
  g.output(logits, 'logits')
  g.output(probs, 'probs')
  return serializeGraph(g, {
    graphName: `${s.name}-inference`,
    ...(metadata === undefined ? {} : { metadata })
  })
}
