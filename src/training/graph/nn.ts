/**
 * Transformer building blocks with gradient rules, in the standard ONNX opset 17: token
 * embedding (Gather forward, ScatterND-add backward), batched MatMul, Transpose, LayerNorm
 * (LayerNormalization forward), GELU (tanh approximation, from primitives: opset 17 has no
 * Gelu), Softmax over the last axis, and causal multi-head self-attention built from them.
 *
 * Each composite op records one tape entry whose backward emits its own nodes (the same
 * contract as `ops.ts`), so every op here is checked against finite differences on its own.
 */
import { GraphBuildError } from './errors.js'
import { attr, fmtShape, type Dim, type Graph, type Shape, type Value } from './graph.js'
import { add, gemm, mul, reduceSum, reshape, sub, sumToShape } from './ops.js'

function last(shape: Shape): Dim {
  return shape[shape.length - 1]!
}

/** A `[d]` shaped Expand of a scalar zero: a zero tensor built at run time (no initializer). */
function zeros(g: Graph, shape: readonly number[], dtype: Value['dtype']): Value {
  return g.node1('Expand', [g.scalar(0, dtype), g.ints(shape)], { dtype, shape })
}

/**
 * Token embedding: rows of `table` [V, D] picked by int64 `ids` [...]; the result is [..., D].
 * Backward: the rows of dY are added into a zero [V, D] at their ids (ScatterND, reduction
 * `add`), so a token seen several times in a batch gets the sum of its gradients.
 */
export function embedding(g: Graph, table: Value, ids: Value): Value {
  if (table.shape.length !== 2 || ids.dtype !== 'int64') {
    throw new GraphBuildError(
      `embedding needs a table [V,D] and int64 ids, got ${fmtShape(table.shape)} and ${ids.dtype} ${fmtShape(ids.shape)}`
    )
  }
  const [v, d] = table.shape as [Dim, Dim]
  if (typeof v !== 'number' || typeof d !== 'number')
    throw new GraphBuildError('embedding needs a static table shape')
  const y = g.node1(
    'Gather',
    [table, ids],
    { dtype: table.dtype, shape: [...ids.shape, d] },
    { axis: attr.int(0) }
  )
  g.record({
    op: 'Embedding',
    inputs: [table],
    outputs: [y],
    backward: ([dy]) => {
      const idx = g.node1('Unsqueeze', [ids, g.ints([ids.shape.length])], {
        dtype: 'int64',
        shape: [...ids.shape, 1]
      })
      const dt = g.node1(
        'ScatterND',
        [zeros(g, [v, d], table.dtype), idx, dy!],
        { dtype: table.dtype, shape: [v, d] },
        { reduction: attr.string('add') }
      )
      return [dt]
    }
  })
  return y
}

/** Transpose by `perm`, differentiable (the backward transposes by the inverse permutation). */
export function permute(g: Graph, x: Value, perm: readonly number[]): Value {
  if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new GraphBuildError(`permutation [${perm.join(',')}] does not fit ${fmtShape(x.shape)}`)
  }
  const y = g.node1(
    'Transpose',
    [x],
    { dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) },
    { perm: attr.ints(perm) }
  )
  const inverse = perm.map((_, i) => perm.indexOf(i))
  g.record({
    op: 'Transpose',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => [
      g.node1('Transpose', [dy!], { dtype: x.dtype, shape: x.shape }, { perm: attr.ints(inverse) })
    ]
  })
  return y
}

/** Swap the last two axes (no tape entry: a helper for backward passes). */
function swapLast(g: Graph, x: Value): Value {
  const r = x.shape.length
  const perm = x.shape.map((_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i))
  return g.node1(
    'Transpose',
    [x],
    { dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) },
    { perm: attr.ints(perm) }
  )
}

/**
 * Batched matrix product `[..., M, K] × [..., K, N] → [..., M, N]`; both operands have the
 * same leading (batch) dims. Backward: dA = dY·Bᵀ, dB = Aᵀ·dY per batch entry.
 */
export function batchMatmul(g: Graph, a: Value, b: Value): Value {
  const ra = a.shape.length
  if (ra < 3 || b.shape.length !== ra) {
    throw new GraphBuildError(
      `batchMatmul needs two tensors of the same rank ≥ 3, got ${fmtShape(a.shape)}, ${fmtShape(b.shape)}`
    )
  }
  const lead = a.shape.slice(0, -2)
  if (fmtShape(lead) !== fmtShape(b.shape.slice(0, -2)) || a.shape[ra - 1] !== b.shape[ra - 2]) {
    throw new GraphBuildError(`batchMatmul shapes do not fit: ${fmtShape(a.shape)} x ${fmtShape(b.shape)}`)
  }
  const y = g.node1('MatMul', [a, b], {
    dtype: a.dtype,
    shape: [...lead, a.shape[ra - 2]!, b.shape[ra - 1]!]
  })
  g.record({
    op: 'BatchMatMul',
    inputs: [a, b],
    outputs: [y],
    backward: ([dy]) => [
      a.requiresGrad
        ? g.node1('MatMul', [dy!, swapLast(g, b)], { dtype: a.dtype, shape: a.shape })
        : undefined,
      b.requiresGrad
        ? g.node1('MatMul', [swapLast(g, a), dy!], { dtype: b.dtype, shape: b.shape })
        : undefined
    ]
  })
  return y
}

/** Softmax over the last axis, differentiable: dX = Y ⊙ (dY − Σ(dY ⊙ Y)) along that axis. */
export function softmaxLast(g: Graph, x: Value): Value {
  const y = g.node1('Softmax', [x], { dtype: x.dtype, shape: x.shape }, { axis: attr.int(-1) })
  g.record({
    op: 'Softmax',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => {
      const dot = reduceSum(g, mul(g, dy!, y), [-1], true)
      return [mul(g, y, sub(g, dy!, dot))]
    }
  })
  return y
}

/**
 * Layer normalisation over the last axis: `(x − mean) / √(var + eps) · gamma + beta`, with
 * `gamma`, `beta` of shape [D]. Forward: one LayerNormalization node (its Mean and InvStdDev
 * outputs feed the backward pass); in float64, the same from primitives (onnxruntime's kernel
 * keeps float statistics). Backward, with x̂ the normalised input and r = 1/σ:
 * dX = r · (dX̂ − mean(dX̂) − x̂ · mean(dX̂ ⊙ x̂)), dX̂ = dY ⊙ gamma; dgamma = Σ dY ⊙ x̂; dbeta = Σ dY.
 */
export function layerNorm(g: Graph, x: Value, gamma: Value, beta: Value, eps = 1e-5): Value {
  const d = last(x.shape)
  if (
    typeof d !== 'number' ||
    gamma.shape.length !== 1 ||
    gamma.shape[0] !== d ||
    fmtShape(beta.shape) !== fmtShape(gamma.shape)
  ) {
    throw new GraphBuildError(
      `layerNorm needs x [..., D] with static D and gamma, beta [D]; got ${fmtShape(x.shape)}, ${fmtShape(gamma.shape)}, ${fmtShape(beta.shape)}`
    )
  }
  const stats = [...x.shape.slice(0, -1), 1]
  const grad = g.recording && [x, gamma, beta].some((v) => v.requiresGrad)
  const axes = { axes: attr.ints([x.shape.length - 1]), keepdims: attr.int(1) }
  let outs: Value[]
  if (x.dtype === 'float') {
    // onnxruntime implements LayerNormalization with float statistics only.
    outs = g.node(
      'LayerNormalization',
      [x, gamma, beta],
      grad
        ? [
            { dtype: x.dtype, shape: x.shape },
            { dtype: x.dtype, shape: stats },
            { dtype: x.dtype, shape: stats }
          ]
        : [{ dtype: x.dtype, shape: x.shape }],
      { axis: attr.int(-1), epsilon: attr.float(eps) }
    )
  } else {
    // float64 (gradient checks): the same function from primitives.
    const like = { dtype: x.dtype, shape: x.shape }
    const mean = g.node1('ReduceMean', [x], { dtype: x.dtype, shape: stats }, axes)
    const xc = g.node1('Sub', [x, mean], like)
    const variance = g.node1(
      'ReduceMean',
      [g.node1('Mul', [xc, xc], like)],
      { dtype: x.dtype, shape: stats },
      axes
    )
    const std = g.node1(
      'Sqrt',
      [g.node1('Add', [variance, g.scalar(eps, x.dtype)], { dtype: x.dtype, shape: stats })],
      {
        dtype: x.dtype,
        shape: stats
      }
    )
    const rstd = g.node1('Reciprocal', [std], { dtype: x.dtype, shape: stats })
    const xhat = g.node1('Mul', [xc, rstd], like)
    const y = g.node1('Add', [g.node1('Mul', [xhat, gamma], like), beta], like)
    outs = [y, mean, rstd]
  }
  const y = outs[0]!
  if (grad) {
    const mean = outs[1]!
    const rstd = outs[2]!
    g.record({
      op: 'LayerNorm',
      inputs: [x, gamma, beta],
      outputs: [y],
      backward: ([dy]) => {
        const xhat = mul(g, sub(g, x, mean), rstd)
        let dx: Value | undefined
        if (x.requiresGrad) {
          const dxhat = mul(g, dy!, gamma)
          const m1 = g.node1('ReduceMean', [dxhat], { dtype: x.dtype, shape: stats }, axes)
          const m2 = g.node1('ReduceMean', [mul(g, dxhat, xhat)], { dtype: x.dtype, shape: stats }, axes)
          dx = mul(g, rstd, sub(g, sub(g, dxhat, m1), mul(g, xhat, m2)))
        }
        return [
          dx,
          gamma.requiresGrad ? sumToShape(g, mul(g, dy!, xhat), gamma.shape) : undefined,
          beta.requiresGrad ? sumToShape(g, dy!, beta.shape) : undefined
        ]
      }
    })
  }
  return y
}

const GELU_C = Math.sqrt(2 / Math.PI)
const GELU_K = 0.044715

/**
 * GELU, tanh approximation: `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (GPT-2's), computed as the
 * equal `x·σ(z)` with `z = x(2c + 2ck·x²)`, c = √(2/π), k = 0.044715 (½(1 + tanh u) = σ(2u)):
 * fewer elementwise nodes, which dominate a small transformer's step on CPU. Backward:
 * `σ(z) + y(1 − σ(z))·(2c + 6ck·x²)`.
 */
export function gelu(g: Graph, x: Value): Value {
  const dt = x.dtype
  const s = (v: number): Value => g.scalar(v, dt)
  const like = { dtype: dt, shape: x.shape }
  const x2 = g.node1('Mul', [x, x], like)
  const q = g.node1('Add', [g.node1('Mul', [x2, s(2 * GELU_C * GELU_K)], like), s(2 * GELU_C)], like)
  const sig = g.node1('Sigmoid', [g.node1('Mul', [x, q], like)], like)
  const y = g.node1('Mul', [x, sig], like)
  g.record({
    op: 'Gelu',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => {
      const r = add(g, mul(g, x2, s(6 * GELU_C * GELU_K)), s(2 * GELU_C))
      const slope = add(g, sig, mul(g, mul(g, y, sub(g, s(1), sig)), r))
      return [mul(g, dy!, slope)]
    }
  })
  return y
}

/** Additive causal mask [T, T]: 0 where key ≤ query, a large negative number above the diagonal. */
export function causalMask(g: Graph, t: number, dtype: Value['dtype'] = 'float'): Value {
  const n = t * t
  const data = dtype === 'double' ? new Float64Array(n) : new Float32Array(n)
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) data[i * t + j] = -1e9
  return g.constant(data, [t, t], dtype)
}

export interface AttentionWeights {
  wq: Value
  bq: Value
  wk: Value
  bk: Value
  wv: Value
  bv: Value
  wo: Value
  bo: Value
}

/**
 * Causal multi-head self-attention on `x` [N, D], N = batch·T rows in sequence order:
 * projections q, k, v ([D, D] weights, [D] biases), split into `heads` heads of D/heads,
 * softmax(q·kᵀ/√(D/heads) + causal mask)·v, heads joined, output projection. Returns [N, D].
 */
export function causalSelfAttention(
  g: Graph,
  x: Value,
  w: AttentionWeights,
  opts: { batch: Dim; context: number; heads: number; mask?: Value }
): Value {
  const d = last(x.shape)
  const { batch: b, context: t, heads: h } = opts
  if (x.shape.length !== 2 || typeof d !== 'number' || d % h !== 0) {
    throw new GraphBuildError(
      `attention needs x [N, D] with D divisible by ${h} heads, got ${fmtShape(x.shape)}`
    )
  }
  const dh = d / h
  const split = (v: Value, perm: number[]): Value => permute(g, reshape(g, v, [b, t, h, dh]), perm)
  // 1/√dh scales q [N, D] rather than the scores [B, H, T, T]: the same product, T/dh times fewer values.
  const q = split(mul(g, gemm(g, x, w.wq, w.bq), g.scalar(1 / Math.sqrt(dh), x.dtype)), [0, 2, 1, 3]) // [B,H,T,dh]
  const kT = split(gemm(g, x, w.wk, w.bk), [0, 2, 3, 1]) // [B,H,dh,T]
  const v = split(gemm(g, x, w.wv, w.bv), [0, 2, 1, 3]) // [B,H,T,dh]
  const scores = add(g, batchMatmul(g, q, kT), opts.mask ?? causalMask(g, t, x.dtype))
  const att = softmaxLast(g, scores)
  const out = permute(g, batchMatmul(g, att, v), [0, 2, 1, 3]) // [B,T,H,dh]
  return gemm(g, reshape(g, out, x.shape), w.wo, w.bo)
}
