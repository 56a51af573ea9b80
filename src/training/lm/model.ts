/**
 * GPT graphs: the train step (forward, mean next-token cross-entropy, backward, global-norm
 * clipping, optimizer update), an evaluation graph (the loss alone) and the inference graph
 * (next-token logits at every position).
 */
import { Rng, logger } from '../../common/index.js'
import {
  Graph,
  WeightsMismatchError,
  outputOptimizerStep,
  clipByGlobalNorm,
  gradients,
  nn,
  ops,
  optimizerState,
  serializeGraph,
  validateOptimizer,
  type Dim,
  type OptimizerSpec,
  type TensorInfo,
  type Value
} from '../graph/index.js'
import { DEFAULT_LM_OPTIMIZER, DEFAULT_MAX_GRAD_NORM, LM_BATCH } from './constants.js'
import { LmOptionsError } from './errors.js'
import { gptParams, validateGptSpec, type GptParam, type GptSpec } from './spec.js'

const log = logger('shoal:training:lm')

export interface CompileGptOptions {
  /** Default AdamW (β2 0.99, weight decay 0.1). */
  optimizer?: OptimizerSpec
  /** Global-norm gradient clipping bound (default 1); `null` turns clipping off. */
  maxGradNorm?: number | null
}

export interface CompiledGpt {
  spec: Required<GptSpec>
  optimizer: OptimizerSpec
  maxGradNorm: number | null
  /** Parameters, in graph input order. */
  params: GptParam[]
  /** Optimizer state tensors (Adam moments and step counter). */
  state: TensorInfo[]
  /**
   * Inputs: each param and state tensor, `x` and `y` int64 [B, context] (y: the next tokens),
   * `lr` float32 []. Outputs: `new:<name>` for each param and state tensor, `loss` float32 []
   * (mean cross-entropy in nats per token, before the update), `gradNorm` float32 [] (the global
   * gradient norm before clipping).
   */
  trainStep: Uint8Array
  /** Inputs: each param, `x`, `y`. Output: `loss` (mean nats per token). */
  evalStep: Uint8Array
  /** Inputs: each param and `x` int64 [B, context]. Output: `logits` float32 [B, context, vocab]. */
  inference: Uint8Array
}

/** The forward pass on `x` int64 [B, context]; returns logits [B·context, vocab]. */
export function buildGptForward(
  g: Graph,
  spec: Required<GptSpec>,
  params: ReadonlyMap<string, Value>,
  x: Value
): Value {
  const p = (name: string): Value => {
    const v = params.get(name)
    if (v === undefined) throw new WeightsMismatchError(`missing parameter '${name}'`, { name })
    return v
  }
  const { context: t, dModel: d, heads } = spec
  const batch: Dim = x.shape[0]!
  const rows: Dim = typeof batch === 'number' ? batch * t : `${batch}*${t}`
  const emb = ops.add(g, nn.embedding(g, p('tok.weight'), x), p('pos.weight')) // [B, T, D]
  let h = ops.reshape(g, emb, [rows, d])
  const mask = nn.causalMask(g, t)
  for (let l = 0; l < spec.layers; l++) {
    const q = (n: string): Value => p(`h${l}.${n}`)
    const a = nn.layerNorm(g, h, q('ln1.gain'), q('ln1.bias'))
    const att = nn.causalSelfAttention(
      g,
      a,
      {
        wq: q('attn.q.weight'),
        bq: q('attn.q.bias'),
        wk: q('attn.k.weight'),
        bk: q('attn.k.bias'),
        wv: q('attn.v.weight'),
        bv: q('attn.v.bias'),
        wo: q('attn.out.weight'),
        bo: q('attn.out.bias')
      },
      { batch, context: t, heads, mask }
    )
    h = ops.add(g, h, att)
    const m = nn.layerNorm(g, h, q('ln2.gain'), q('ln2.bias'))
    const fc = nn.gelu(g, ops.gemm(g, m, q('mlp.fc.weight'), q('mlp.fc.bias')))
    h = ops.add(g, h, ops.gemm(g, fc, q('mlp.proj.weight'), q('mlp.proj.bias')))
  }
  const f = nn.layerNorm(g, h, p('lnf.gain'), p('lnf.bias'))
  return spec.tied
    ? ops.gemm(g, f, p('tok.weight'), undefined, { transB: true })
    : ops.gemm(g, f, p('head.weight'))
}

function lossOf(g: Graph, spec: Required<GptSpec>, logits: Value, y: Value): Value {
  const rows = logits.shape[0]!
  return ops.softmaxCrossEntropy(g, logits, ops.reshape(g, y, [rows])).loss
}

/**
 * Build the train-step, evaluation and inference graphs of a GPT spec.
 *
 * @throws {GptSpecError} for an impossible spec; OptimizerSpecError for a bad optimizer;
 *   LmOptionsError for a clipping bound that is not finite and > 0.
 */
export function compileGpt(spec: GptSpec, opts: CompileGptOptions = {}): CompiledGpt {
  const s = validateGptSpec(spec)
  const opt = validateOptimizer(opts.optimizer ?? DEFAULT_LM_OPTIMIZER)
  const maxGradNorm = opts.maxGradNorm === undefined ? DEFAULT_MAX_GRAD_NORM : opts.maxGradNorm
  if (maxGradNorm !== null && !(Number.isFinite(maxGradNorm) && maxGradNorm > 0)) {
    throw new LmOptionsError(`maxGradNorm must be finite and > 0 (or null), got ${maxGradNorm}`, {
      maxGradNorm
    })
  }
  const params = gptParams(s)
  const state = optimizerState(
    opt,
    params.map((p) => ({ name: p.name, shape: p.shape, fanIn: 1, init: 'zeros' as const }))
  )

  const g = new Graph()
  const pv = new Map(params.map((p) => [p.name, g.input(p.name, 'float', p.shape, { requiresGrad: true })]))
  const sv = new Map(state.map((t) => [t.name, g.input(t.name, 'float', t.shape)]))
  const x = g.input('x', 'int64', [LM_BATCH, s.context])
  const y = g.input('y', 'int64', [LM_BATCH, s.context])
  const lr = g.input('lr', 'float', [])
  const loss = lossOf(g, s, buildGptForward(g, s, pv, x), y)
  const values = params.map((p) => pv.get(p.name)!)
  let grads = gradients(g, loss, values)
  let gradNorm: Value
  if (maxGradNorm === null) {
    let sq: Value | undefined
    for (const d of grads) {
      const r = ops.reduceSum(g, ops.mul(g, d, d))
      sq = sq === undefined ? r : ops.add(g, sq, r)
    }
    gradNorm = ops.sqrt(g, sq!)
  } else {
    const clipped = clipByGlobalNorm(g, grads, maxGradNorm)
    grads = clipped.grads
    gradNorm = clipped.norm
  }
  outputOptimizerStep(g, opt, params, values, grads, { infos: state, values: sv }, lr)
  g.output(loss, 'loss')
  g.output(gradNorm, 'gradNorm')
  const trainStep = serializeGraph(g, { graphName: `${s.name}-train-step` })

  const e = new Graph()
  e.recording = false
  const ev = new Map(params.map((p) => [p.name, e.input(p.name, 'float', p.shape)]))
  const ex = e.input('x', 'int64', [LM_BATCH, s.context])
  const ey = e.input('y', 'int64', [LM_BATCH, s.context])
  e.output(lossOf(e, s, buildGptForward(e, s, ev, ex), ey), 'loss')
  const evalStep = serializeGraph(e, { graphName: `${s.name}-eval` })

  const inference = buildGptInference(s)
  log.debug({ model: s.name, nodes: g.nodes.length, bytes: trainStep.byteLength }, 'compiled gpt train step')
  return { spec: s, optimizer: opt, maxGradNorm, params, state, trainStep, evalStep, inference }
}

/**
 * The inference graph: `x` int64 [B, context] → `logits` float32 [B, context, vocab] (row t:
 * the next-token logits after x[0..t]; causal, so a shorter prompt may be right-padded). With
 * `weights`, they are embedded as initializers (a standalone model with the single input `x`).
 *
 * @throws {GptSpecError} for an impossible spec; WeightsMismatchError for a missing or mis-sized weight.
 */
export function buildGptInference(
  spec: GptSpec,
  weights?: ReadonlyMap<string, Float32Array>,
  metadata?: Record<string, string>
): Uint8Array {
  const s = validateGptSpec(spec)
  const g = new Graph()
  g.recording = false
  const pv = new Map<string, Value>()
  for (const p of gptParams(s)) {
    if (weights === undefined) {
      pv.set(p.name, g.input(p.name, 'float', p.shape))
      continue
    }
    const w = weights.get(p.name)
    const size = p.shape.reduce((a, b) => a * b, 1)
    if (w === undefined) throw new WeightsMismatchError(`missing weight '${p.name}'`, { name: p.name })
    if (w.length !== size) {
      throw new WeightsMismatchError(`weight '${p.name}' has ${w.length} values, expected ${size}`, {
        name: p.name,
        expected: size,
        actual: w.length
      })
    }
    pv.set(p.name, g.constant(w, p.shape, 'float', p.name))
  }
  const x = g.input('x', 'int64', [LM_BATCH, s.context])
  const logits = buildGptForward(g, s, pv, x)
  g.output(ops.reshape(g, logits, [LM_BATCH, s.context, s.vocab]), 'logits')
  return serializeGraph(g, {
    graphName: `${s.name}-inference`,
    ...(metadata === undefined ? {} : { metadata })
  })
}

/** Seeded initial parameters (GPT-2's scheme, see `gptParams`), drawn in param order from one Rng. */
export function initGptParams(model: Pick<CompiledGpt, 'params'>, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed)
  const out = new Map<string, Float32Array>()
  for (const p of model.params) {
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1))
    if (p.init === 'ones') data.fill(1)
    else if (p.init === 'normal') for (let i = 0; i < data.length; i++) data[i] = rng.gaussian() * p.std!
    out.set(p.name, data)
  }
  return out
}
