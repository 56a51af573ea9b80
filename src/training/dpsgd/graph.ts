/**
 * The DP-SGD train-step graph: per-example gradient norms, per-example clipping, the clipped sum, Gaussian
 * noise fed in as a graph input, and the optimizer update, all in one standard ONNX graph.
 *
 * Per-example gradients come from the gradients of the summed loss with respect to each layer's output
 * (pre-activation) Z, which for example i depend on example i alone (no layer mixes examples):
 * - dense `Z = A·W + b`: the per-example gradient of W is the outer product aᵢ ⊗ gᵢ, so
 *   ‖∇W‖² = ‖aᵢ‖²·‖gᵢ‖² and ∇b = gᵢ ("ghost clipping": no per-example tensor is built), and the clipped sum
 *   is Aᵀ·(s ⊙ G);
 * - conv: the input is unfolded (im2col, itself a Conv with a 0/1 kernel, exact in floating point) into
 *   Uᵢ [C·k·k, T], and the per-example gradient Gᵢ·Uᵢᵀ [M, C·k·k] is one batched MatMul; ∇b = Σₜ Gᵢ.
 * Each example is scaled by sᵢ = maskᵢ · min(1, C / (‖∇ᵢ‖ + 1e-6)) over the whole model's per-example gradient
 * norm, the scaled gradients are summed, `dp.std · dp.noise` is added and the sum divided by `dp.denom`
 * (the expected batch size, q·N, not the realised one: dividing by the latter would leak it).
 */
import {
  outputOptimizerStep,
  BATCH,
  buildForward,
  buildInferenceModel,
  gradients,
  Graph,
  ops,
  optimizerState,
  paramsOf,
  pruneGraph,
  serializeGraph,
  validateOptimizer,
  validateSpec,
  attr,
  type CompiledModel,
  type ModelSpec,
  type OptimizerSpec,
  type Value
} from '../graph/index.js'
import { logger } from '../../common/index.js'
import { CLIP_EPSILON, DP_INPUTS, DP_OUTPUTS } from './constants.js'
import { DpsgdGraphError } from './errors.js'

const log = logger('shoal:training:dpsgd')

/** A model compiled for DP-SGD: the runtime's model contract plus the extra inputs of each step. */
export interface DpsgdModel extends CompiledModel {
  /** Number of noise values per step (the sum of the params' sizes); `dp.noise` is float32 [noiseSize]. */
  noiseSize: number
}

/** Options of {@link compileDpsgdModel}. */
export interface CompileDpsgdOptions {
  /** Also output the clipped, noised, divided gradient of each param as `dp.grad:<name>` (for tests). */
  exposeGradients?: boolean
}

interface Layer {
  kind: 'dense' | 'conv'
  /** Layer input. */
  a: Value
  /** Layer output (pre-activation). */
  z: Value
  weight: string
  bias: string
  conv?: { kernel: number; stride: number; padding: number; channels: number; filters: number }
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

/**
 * Compile the DP-SGD train step of a model. Inputs: the params and optimizer state, `x` [B, ...input],
 * `y` int64 [B], `lr` [], and {@link DP_INPUTS}: `dp.mask` float [B] (1 for a sampled example, 0 for padding),
 * `dp.clip` [] (C), `dp.std` [] (σC), `dp.denom` [] (the expected batch size) and `dp.noise` [noiseSize]
 * (standard normal draws, params in order, each row-major). Outputs: `new:<name>` for params and state,
 * `loss` (mean over the masked-in examples, 0 when there is none), `correct` (among them), and `dp.norms` [B]
 * (each example's gradient norm before clipping).
 *
 * @throws ModelSpecError / OptimizerSpecError for an invalid spec.
 * @throws DpsgdGraphError when a layer has no per-example gradient rule.
 */
export function compileDpsgdModel(
  spec: ModelSpec,
  optimizer: OptimizerSpec,
  opts: CompileDpsgdOptions = {}
): DpsgdModel {
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
  const mask = g.input(DP_INPUTS.mask, 'float', [BATCH])
  const clip = g.input(DP_INPUTS.clip, 'float', [])
  const std = g.input(DP_INPUTS.std, 'float', [])
  const denom = g.input(DP_INPUTS.denom, 'float', [])
  const noiseSize = params.reduce((n, p) => n + size(p.shape), 0)
  const noise = g.input(DP_INPUTS.noise, 'float', [noiseSize])

  const tapeStart = g.tape.length
  const logits = buildForward(g, s, pv, x)
  const layers = findLayers(g, tapeStart, s, pv)
  const { loss: meanLoss, logProbs } = ops.softmaxCrossEntropy(g, logits, y)

  // Seeding the mean loss with B makes dZ the gradient of the summed loss: each row is one example's.
  const batchF = ops.cast(
    g,
    g.node1('Gather', [ops.shapeOf(g, x), g.scalar(0, 'int64')], { dtype: 'int64', shape: [] }),
    'float'
  )
  const dZ = gradients(
    g,
    [[meanLoss, batchF]],
    layers.map((l) => l.z)
  )

  // Per-example squared norms, layer by layer.
  const sq: Value[] = []
  const perExample: Array<{ layer: Layer; dz: Value; convGrads?: { w: Value; b: Value } }> = []
  layers.forEach((layer, i) => {
    const dz = dZ[i]!
    if (layer.kind === 'dense') {
      const na = ops.reduceSum(g, ops.mul(g, layer.a, layer.a), [1])
      const nz = ops.reduceSum(g, ops.mul(g, dz, dz), [1])
      sq.push(ops.add(g, ops.mul(g, na, nz), nz))
      perExample.push({ layer, dz })
    } else {
      const c = layer.conv!
      const ckk = c.channels * c.kernel * c.kernel
      const [, , ho, wo] = layer.z.shape as [unknown, unknown, number, number]
      const T = ho * wo
      const unfolded = g.node1(
        'Conv',
        [
          layer.a,
          g.constant(im2colKernel(c.channels, c.kernel), [ckk, c.channels, c.kernel, c.kernel], 'float')
        ],
        { dtype: 'float', shape: [BATCH, ckk, ho, wo] },
        {
          kernel_shape: attr.ints([c.kernel, c.kernel]),
          strides: attr.ints([c.stride, c.stride]),
          pads: attr.ints([c.padding, c.padding, c.padding, c.padding])
        }
      )
      const u = g.node1('Reshape', [unfolded, g.ints([0, ckk, T])], {
        dtype: 'float',
        shape: [BATCH, ckk, T]
      })
      const gz = g.node1('Reshape', [dz, g.ints([0, c.filters, T])], {
        dtype: 'float',
        shape: [BATCH, c.filters, T]
      })
      const ut = ops.transpose(g, u, [0, 2, 1])
      const gw = g.node1('MatMul', [gz, ut], { dtype: 'float', shape: [BATCH, c.filters, ckk] })
      const gb = ops.reduceSum(g, gz, [2])
      sq.push(
        ops.add(g, ops.reduceSum(g, ops.mul(g, gw, gw), [1, 2]), ops.reduceSum(g, ops.mul(g, gb, gb), [1]))
      )
      perExample.push({ layer, dz, convGrads: { w: gw, b: gb } })
    }
  })
  let total = sq[0]!
  for (const t of sq.slice(1)) total = ops.add(g, total, t)
  const norms = ops.sqrt(g, total)
  const factor = g.node1('Min', [ops.div(g, clip, ops.add(g, norms, g.scalar(CLIP_EPSILON))), g.scalar(1)], {
    dtype: 'float',
    shape: [BATCH]
  })
  const scale = ops.mul(g, factor, mask)
  const scaleCol = ops.unsqueeze(g, scale, [1])

  // Clipped sums, per param.
  const grads = new Map<string, Value>()
  for (const { layer, dz, convGrads } of perExample) {
    if (convGrads === undefined) {
      const sdz = ops.mul(g, dz, scaleCol)
      grads.set(layer.weight, ops.gemm(g, layer.a, sdz, undefined, { transA: true }))
      grads.set(layer.bias, ops.reduceSum(g, sdz, [0]))
    } else {
      const c = layer.conv!
      const scale3 = ops.unsqueeze(g, scale, [1, 2])
      const w = ops.reduceSum(g, ops.mul(g, convGrads.w, scale3), [0])
      grads.set(
        layer.weight,
        g.node1('Reshape', [w, g.ints([c.filters, c.channels, c.kernel, c.kernel])], {
          dtype: 'float',
          shape: [c.filters, c.channels, c.kernel, c.kernel]
        })
      )
      grads.set(layer.bias, ops.reduceSum(g, ops.mul(g, convGrads.b, scaleCol), [0]))
    }
  }

  // Noise and the division by the expected batch size.
  let offset = 0
  const noisy = params.map((p) => {
    const n = size(p.shape)
    const z = ops.slice(g, noise, [offset], [offset + n], [0])
    offset += n
    const zs = g.node1('Reshape', [z, g.ints(p.shape)], { dtype: 'float', shape: p.shape })
    const sum = grads.get(p.name)
    if (sum === undefined)
      throw new DpsgdGraphError(`no per-example gradient for '${p.name}'`, { param: p.name })
    return ops.div(g, ops.add(g, sum, ops.mul(g, zs, std)), denom)
  })

  outputOptimizerStep(
    g,
    opt,
    params,
    params.map((p) => pv.get(p.name)!),
    noisy,
    { infos: state, values: sv },
    lr
  )

  // Metrics over the masked-in examples.
  const lab = ops.unsqueeze(g, y, [1])
  const perLoss = ops.neg(g, ops.reshape(g, ops.gatherElements(g, logProbs, lab, 1), [BATCH]))
  const count = ops.reduceSum(g, mask)
  const lossOut = ops.div(
    g,
    ops.reduceSum(g, ops.mul(g, perLoss, mask)),
    g.node1('Max', [count, g.scalar(1)], { dtype: 'float', shape: [] })
  )
  const hit = ops.cast(g, ops.equal(g, ops.argMax(g, logits, 1), y), 'float')
  const correct = ops.reduceSum(g, ops.mul(g, hit, mask))

  g.output(lossOut, 'loss')
  g.output(correct, 'correct')
  g.output(norms, DP_OUTPUTS.norms)
  if (opts.exposeGradients === true)
    params.forEach((p, i) => g.output(noisy[i]!, `${DP_OUTPUTS.gradPrefix}${p.name}`))

  const pruned = pruneGraph(g)
  const trainStep = serializeGraph(g, { graphName: `${s.name}-dpsgd-train-step` })
  log.debug(
    { model: s.name, optimizer: opt.type, nodes: g.nodes.length, pruned, bytes: trainStep.byteLength },
    'compiled DP-SGD train step'
  )
  return { spec: s, optimizer: opt, params, state, trainStep, inference: buildInferenceModel(s), noiseSize }
}

/** The dense and conv layers of the forward pass, from the tape: input, output and param names. */
function findLayers(g: Graph, from: number, spec: ModelSpec, pv: ReadonlyMap<string, Value>): Layer[] {
  const byValue = new Map([...pv].map(([name, v]) => [v, name]))
  const layers: Layer[] = []
  let shape: readonly number[] = spec.input
  const convs = new Map<string, Layer['conv']>()
  spec.layers.forEach((l, i) => {
    if (l.type === 'conv') {
      convs.set(`conv${i}.weight`, {
        kernel: l.kernel,
        stride: l.stride ?? 1,
        padding: l.padding ?? 0,
        channels: shape[0]!,
        filters: l.filters
      })
    }
    shape = nextShape(shape, l)
  })
  for (const e of g.tape.slice(from)) {
    if (e.op !== 'Gemm' && e.op !== 'Conv') continue
    const [a, w, b] = e.inputs
    const weight = w === undefined ? undefined : byValue.get(w)
    const bias = b === undefined ? undefined : byValue.get(b)
    if (a === undefined || weight === undefined || bias === undefined) {
      throw new DpsgdGraphError(`${e.op} without a weight and bias param has no per-example rule`, {
        op: e.op
      })
    }
    const conv = convs.get(weight)
    layers.push(
      e.op === 'Gemm'
        ? { kind: 'dense', a, z: e.outputs[0]!, weight, bias }
        : { kind: 'conv', a, z: e.outputs[0]!, weight, bias, ...(conv !== undefined ? { conv } : {}) }
    )
  }
  for (const l of layers) {
    if (l.kind === 'conv' && l.conv === undefined) throw new DpsgdGraphError(`unknown conv layer ${l.weight}`)
  }
  return layers
}

function nextShape(shape: readonly number[], l: ModelSpec['layers'][number]): number[] {
  switch (l.type) {
    case 'dense':
      return [l.units]
    case 'relu':
      return [...shape]
    case 'flatten':
      return [size(shape)]
    case 'conv': {
      const s = l.stride ?? 1
      const p = l.padding ?? 0
      return [l.filters, ...shape.slice(1).map((d) => Math.floor((d + 2 * p - l.kernel) / s) + 1)]
    }
    case 'maxpool': {
      const s = l.stride ?? l.size
      return [shape[0]!, ...shape.slice(1).map((d) => Math.floor((d - l.size) / s) + 1)]
    }
  }
}

/** The 0/1 kernel [C·k·k, C, k, k] whose Conv is im2col: output channel (c, i, j) picks input (c, i, j). */
function im2colKernel(channels: number, k: number): Float32Array {
  const out = new Float32Array(channels * k * k * channels * k * k)
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const o = (c * k + i) * k + j
        out[((o * channels + c) * k + i) * k + j] = 1
      }
    }
  }
  return out
}
