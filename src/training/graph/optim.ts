/**
 * Optimizers as graph ops: the update of every parameter (and of the optimizer state) is
 * computed inside the train-step graph, with the learning rate as a graph input.
 */
import { OptimizerSpecError } from './errors.js'
import type { Graph, Value } from './graph.js'
import { add, div, mul, pow, reduceSum, sqrt, sub } from './ops.js'
import type { ParamInfo, TensorInfo } from './spec.js'

export type OptimizerSpec =
  | { type: 'sgd'; momentum?: number; weightDecay?: number }
  | { type: 'adam'; beta1?: number; beta2?: number; eps?: number }
  /**
   * Adam with decoupled weight decay (Loshchilov & Hutter): p ← p − lr·(m̂/(√v̂ + ε) + wd·p),
   * the decay applied to matrices only (params of rank ≥ 2), not to biases and norm gains.
   */
  | { type: 'adamw'; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }

/** Adam defaults (Kingma & Ba). */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const

/** AdamW's default decoupled weight decay (PyTorch's). */
export const ADAMW_WEIGHT_DECAY = 0.01

/** Name of the Adam step counter state tensor (float [1], counts completed steps). */
export const ADAM_STEP = 'adam.t'

function inRange(x: unknown, lo: number, hi: number, loOpen = false): boolean {
  return typeof x === 'number' && Number.isFinite(x) && (loOpen ? x > lo : x >= lo) && x < hi
}

/**
 * Check an untrusted optimizer spec; returns a clean copy.
 *
 * Thrown: OptimizerSpecError (code OPTIMIZER_SPEC_INVALID) for an unknown type or a value out of range.
 */
export function validateOptimizer(spec: unknown): OptimizerSpec {
  if (typeof spec !== 'object' || spec === null)
    throw new OptimizerSpecError('optimizer spec must be an object')
  const o = spec as Record<string, unknown>
  const check = (key: string, ok: boolean, range: string): void => {
    if (!ok) {
      throw new OptimizerSpecError(
        `optimizer ${String(o.type)}: ${key} must be in ${range}, got ${JSON.stringify(o[key])}`,
        {
          field: key
        }
      )
    }
  }
  if (o.type === 'sgd') {
    check('momentum', o.momentum === undefined || inRange(o.momentum, 0, 1), '[0, 1)')
    check('weightDecay', o.weightDecay === undefined || inRange(o.weightDecay, 0, Infinity), '[0, ∞)')
    const out: OptimizerSpec = { type: 'sgd' }
    if (o.momentum !== undefined) out.momentum = o.momentum as number
    if (o.weightDecay !== undefined) out.weightDecay = o.weightDecay as number
    return out
  }
  if (o.type === 'adam' || o.type === 'adamw') {
    check('beta1', o.beta1 === undefined || inRange(o.beta1, 0, 1), '[0, 1)')
    check('beta2', o.beta2 === undefined || inRange(o.beta2, 0, 1), '[0, 1)')
    check('eps', o.eps === undefined || inRange(o.eps, 0, Infinity, true), '(0, ∞)')
    const out: OptimizerSpec = o.type === 'adam' ? { type: 'adam' } : { type: 'adamw' }
    if (o.beta1 !== undefined) out.beta1 = o.beta1 as number
    if (o.beta2 !== undefined) out.beta2 = o.beta2 as number
    if (o.eps !== undefined) out.eps = o.eps as number
    if (out.type === 'adamw') {
      check('weightDecay', o.weightDecay === undefined || inRange(o.weightDecay, 0, Infinity), '[0, ∞)')
      if (o.weightDecay !== undefined) out.weightDecay = o.weightDecay as number
    }
    return out
  }
  throw new OptimizerSpecError(
    `unknown optimizer type ${JSON.stringify(o.type)} (expected sgd, adam or adamw)`,
    {
      type: o.type
    }
  )
}

/** The optimizer state tensors for these params, in graph input order. */
export function optimizerState(opt: OptimizerSpec, params: readonly ParamInfo[]): TensorInfo[] {
  if (opt.type === 'sgd') {
    if ((opt.momentum ?? 0) === 0) return []
    return params.map((p) => ({ name: `momentum:${p.name}`, shape: [...p.shape] }))
  }
  return [
    { name: ADAM_STEP, shape: [1] },
    ...params.map((p) => ({ name: `adam.m:${p.name}`, shape: [...p.shape] })),
    ...params.map((p) => ({ name: `adam.v:${p.name}`, shape: [...p.shape] }))
  ]
}

/**
 * Emit the update of each param. `state` maps state names (from `optimizerState`) to graph
 * inputs. Returns the new param and state values, keyed by their names.
 */
export function applyOptimizer(
  g: Graph,
  opt: OptimizerSpec,
  params: ReadonlyArray<{ name: string; value: Value; grad: Value }>,
  state: ReadonlyMap<string, Value>,
  lr: Value
): { params: Map<string, Value>; state: Map<string, Value> } {
  const newParams = new Map<string, Value>()
  const newState = new Map<string, Value>()
  const st = (name: string): Value => {
    const v = state.get(name)
    if (v === undefined) throw new OptimizerSpecError(`missing optimizer state '${name}'`)
    return v
  }
  if (opt.type === 'sgd') {
    const mu = opt.momentum ?? 0
    const wd = opt.weightDecay ?? 0
    for (const { name, value: p, grad } of params) {
      let d = grad
      if (wd !== 0) d = add(g, d, mul(g, p, g.scalar(wd)))
      if (mu !== 0) {
        // PyTorch convention: v ← μ·v + g; p ← p − lr·v.
        d = add(g, mul(g, st(`momentum:${name}`), g.scalar(mu)), d)
        newState.set(`momentum:${name}`, d)
      }
      newParams.set(name, sub(g, p, mul(g, d, lr)))
    }
    return { params: newParams, state: newState }
  }
  const b1 = opt.beta1 ?? ADAM_DEFAULTS.beta1
  const b2 = opt.beta2 ?? ADAM_DEFAULTS.beta2
  const eps = opt.eps ?? ADAM_DEFAULTS.eps
  const wd = opt.type === 'adamw' ? (opt.weightDecay ?? ADAMW_WEIGHT_DECAY) : 0
  const one = g.scalar(1)
  const t = add(g, st(ADAM_STEP), one)
  newState.set(ADAM_STEP, t)
  // p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε), which equals lr·m̂/(√v̂ + ε).
  const stepSize = div(g, lr, sub(g, one, pow(g, g.scalar(b1), t)))
  const invSqrtBc2 = div(g, one, sqrt(g, sub(g, one, pow(g, g.scalar(b2), t))))
  for (const { name, value: p, grad } of params) {
    const m = add(g, mul(g, st(`adam.m:${name}`), g.scalar(b1)), mul(g, grad, g.scalar(1 - b1)))
    const v = add(g, mul(g, st(`adam.v:${name}`), g.scalar(b2)), mul(g, mul(g, grad, grad), g.scalar(1 - b2)))
    newState.set(`adam.m:${name}`, m)
    newState.set(`adam.v:${name}`, v)
    const denom = add(g, mul(g, sqrt(g, v), invSqrtBc2), g.scalar(eps))
    let next = sub(g, p, mul(g, div(g, m, denom), stepSize))
    // Decoupled decay, on the weights before this step: p ← p − lr·wd·p (matrices only).
    if (wd !== 0 && p.shape.length >= 2) next = sub(g, next, mul(g, p, mul(g, lr, g.scalar(wd))))
    newParams.set(name, next)
  }
  return { params: newParams, state: newState }
}

/**
 * Apply the optimizer to `params` (with their gradients, in order) and output the updated
 * parameters and state as `new:<name>` — the tail every train-step graph shares.
 */
export function outputOptimizerStep(
  g: Graph,
  opt: OptimizerSpec,
  params: ReadonlyArray<{ name: string }>,
  values: readonly Value[],
  grads: readonly Value[],
  state: { infos: ReadonlyArray<{ name: string }>; values: ReadonlyMap<string, Value> },
  lr: Value
): void {
  const updated = applyOptimizer(
    g,
    opt,
    params.map((p, i) => ({ name: p.name, value: values[i]!, grad: grads[i]! })),
    state.values,
    lr
  )
  for (const p of params) g.output(updated.params.get(p.name)!, `new:${p.name}`)
  for (const t of state.infos) g.output(updated.state.get(t.name)!, `new:${t.name}`)
}

/**
 * Global-norm gradient clipping: with n = √(Σ‖gᵢ‖²) over all gradients, each gradient is scaled
 * by min(1, maxNorm / (n + 1e-6)). Returns the clipped gradients and n (before clipping).
 *
 * Thrown: OptimizerSpecError when maxNorm is not a positive finite number.
 */
export function clipByGlobalNorm(
  g: Graph,
  grads: readonly Value[],
  maxNorm: number
): { grads: Value[]; norm: Value } {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
    throw new OptimizerSpecError(`gradient clipping: maxNorm must be finite and > 0, got ${maxNorm}`, {
      field: 'maxNorm'
    })
  }
  if (grads.length === 0) throw new OptimizerSpecError('gradient clipping needs at least one gradient')
  const dt = grads[0]!.dtype
  let sq: Value | undefined
  for (const d of grads) {
    const s = reduceSum(g, mul(g, d, d))
    sq = sq === undefined ? s : add(g, sq, s)
  }
  const norm = sqrt(g, sq!)
  const factor = g.node1(
    'Min',
    [g.scalar(1, dt), div(g, g.scalar(maxNorm, dt), add(g, norm, g.scalar(1e-6, dt)))],
    {
      dtype: dt,
      shape: []
    }
  )
  return { grads: grads.map((d) => mul(g, d, factor)), norm }
}
