/**
 * The builder API: functions that emit ONNX opset-17 nodes into a `Graph`, infer the
 * output shapes, and — for differentiable ops — record a gradient rule on the tape.
 *
 * Differentiable: add, sub, mul, matmul, gemm, relu, conv, maxPool, reshape, flatten,
 * reduceSum, softmaxCrossEntropy. Others are helpers for backward passes and optimizers;
 * they refuse trainable inputs while the graph is recording, so that a missing gradient
 * rule can never be silent.
 */
import { GraphBuildError } from './errors.js'
import {
  attr,
  broadcastShapes,
  fmtShape,
  type Attr,
  type DType,
  type Dim,
  type Graph,
  type Shape,
  type Value
} from './graph.js'

// ---------------------------------------------------------------------------------------------
// Plumbing

/** A helper op with no gradient rule: refuses trainable inputs while recording. */
function plain(
  g: Graph,
  op: string,
  inputs: ReadonlyArray<Value | undefined>,
  dtype: DType,
  shape: Shape,
  attrs: Record<string, Attr> = {}
): Value {
  if (g.recording) {
    const v = inputs.find((i) => i?.requiresGrad === true)
    if (v !== undefined) {
      throw new GraphBuildError(`${op} has no gradient rule but its input '${v.name}' requires grad`, {
        op,
        input: v.name
      })
    }
  }
  return g.node1(op, inputs, { dtype, shape }, attrs)
}

function normAxes(axes: readonly number[], rank: number): number[] {
  return axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b)
}

/** Dims for a Reshape target: a symbolic dim is copied (0) when the input has it at the same index, else -1. */
function reshapeDims(from: Shape, to: Shape): number[] {
  let inferred = 0
  const dims = to.map((d, i) => {
    if (typeof d === 'number') return d
    if (from[i] === d) return 0
    inferred++
    return -1
  })
  if (inferred > 1)
    throw new GraphBuildError(`cannot reshape ${fmtShape(from)} to ${fmtShape(to)} statically`)
  return dims
}

/** Element count of a shape; symbolic when a dim is (e.g. 'B*256'). */
function numel(shape: Shape): Dim {
  let n = 1
  const syms: string[] = []
  for (const d of shape) {
    if (typeof d === 'number') n *= d
    else syms.push(d)
  }
  if (syms.length === 0) return n
  return n === 1 ? syms.join('*') : `${syms.join('*')}*${n}`
}

const NO_GRAD = { noGrad: true }

// ---------------------------------------------------------------------------------------------
// Helpers without gradients (used by backward passes, optimizers, metrics)

export function identity(g: Graph, x: Value): Value {
  return plain(g, 'Identity', [x], x.dtype, x.shape)
}
export function neg(g: Graph, x: Value): Value {
  return plain(g, 'Neg', [x], x.dtype, x.shape)
}
export function exp(g: Graph, x: Value): Value {
  return plain(g, 'Exp', [x], x.dtype, x.shape)
}
export function sqrt(g: Graph, x: Value): Value {
  return plain(g, 'Sqrt', [x], x.dtype, x.shape)
}
export function div(g: Graph, a: Value, b: Value): Value {
  return plain(g, 'Div', [a, b], a.dtype, broadcastShapes(a.shape, b.shape))
}
export function pow(g: Graph, a: Value, b: Value): Value {
  return plain(g, 'Pow', [a, b], a.dtype, broadcastShapes(a.shape, b.shape))
}
export function equal(g: Graph, a: Value, b: Value): Value {
  return g.node1('Equal', [a, b], { dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) }, {}, NO_GRAD)
}
export function greater(g: Graph, a: Value, b: Value): Value {
  return g.node1('Greater', [a, b], { dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) }, {}, NO_GRAD)
}
export function where(g: Graph, cond: Value, a: Value, b: Value): Value {
  const shape = broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape))
  return plain(g, 'Where', [cond, a, b], a.dtype, shape)
}

const ONNX_TYPE: Record<DType, number> = { float: 1, int64: 7, bool: 9, double: 11 }

/** Cast. Casts from or to integers and booleans stop gradients; float-to-float casts have no rule. */
export function cast(g: Graph, x: Value, to: DType): Value {
  const floats = (t: DType): boolean => t === 'float' || t === 'double'
  if (floats(x.dtype) && floats(to))
    return plain(g, 'Cast', [x], to, x.shape, { to: attr.int(ONNX_TYPE[to]) })
  return g.node1('Cast', [x], { dtype: to, shape: x.shape }, { to: attr.int(ONNX_TYPE[to]) }, NO_GRAD)
}
export function shapeOf(g: Graph, x: Value): Value {
  return g.node1('Shape', [x], { dtype: 'int64', shape: [x.shape.length] }, {}, NO_GRAD)
}
export function argMax(g: Graph, x: Value, axis: number): Value {
  const a = axis < 0 ? axis + x.shape.length : axis
  const shape = x.shape.filter((_, i) => i !== a)
  return g.node1(
    'ArgMax',
    [x],
    { dtype: 'int64', shape },
    { axis: attr.int(a), keepdims: attr.int(0) },
    NO_GRAD
  )
}
export function transpose(g: Graph, x: Value, perm: readonly number[]): Value {
  return plain(
    g,
    'Transpose',
    [x],
    x.dtype,
    perm.map((p) => x.shape[p]!),
    { perm: attr.ints(perm) }
  )
}
export function unsqueeze(g: Graph, x: Value, axes: readonly number[]): Value {
  const rank = x.shape.length + axes.length
  const ax = normAxes(axes, rank)
  const shape: Dim[] = []
  let j = 0
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]!)
  return plain(g, 'Unsqueeze', [x, g.ints(ax)], x.dtype, shape)
}
export function expand(g: Graph, x: Value, shapeTensor: Value, shape: Shape): Value {
  return plain(g, 'Expand', [x, shapeTensor], x.dtype, shape)
}
export function reduceMean(g: Graph, x: Value, axes?: readonly number[], keepdims = false): Value {
  const ax = axes === undefined ? x.shape.map((_, i) => i) : normAxes(axes, x.shape.length)
  const shape = keepdims
    ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !ax.includes(i))
  const attrs: Record<string, Attr> = { keepdims: attr.int(keepdims ? 1 : 0) }
  if (axes !== undefined) attrs.axes = attr.ints(ax)
  return plain(g, 'ReduceMean', [x], x.dtype, shape, attrs)
}
export function logSoftmax(g: Graph, x: Value, axis = -1): Value {
  return plain(g, 'LogSoftmax', [x], x.dtype, x.shape, { axis: attr.int(axis) })
}
export function softmax(g: Graph, x: Value, axis = -1): Value {
  return plain(g, 'Softmax', [x], x.dtype, x.shape, { axis: attr.int(axis) })
}
export function gatherElements(g: Graph, x: Value, idx: Value, axis: number): Value {
  return plain(g, 'GatherElements', [x, idx], x.dtype, idx.shape, { axis: attr.int(axis) })
}
export function slice(
  g: Graph,
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[]
): Value {
  const ax = axes.map((a) => (a < 0 ? a + x.shape.length : a))
  const shape = x.shape.map((d, i) => {
    const k = ax.indexOf(i)
    if (k < 0) return d
    if (typeof d !== 'number') throw new GraphBuildError(`cannot slice symbolic dim ${d}`)
    return Math.max(0, Math.min(ends[k]!, d) - Math.max(0, starts[k]!))
  })
  return plain(g, 'Slice', [x, g.ints(starts), g.ints(ends), g.ints(ax)], x.dtype, shape)
}

/** Sum `dy` (of shape `from`) down to `to`, undoing numpy broadcasting. */
export function sumToShape(g: Graph, dy: Value, to: Shape): Value {
  const from = dy.shape
  const lead = from.length - to.length
  const axes: number[] = []
  for (let i = 0; i < from.length; i++) {
    if (i < lead) axes.push(i)
    else if (to[i - lead] === 1 && from[i] !== 1) axes.push(i)
  }
  if (axes.length === 0) return dy
  const onlyLead = axes.length === lead
  const r = reduceSum(g, dy, axes, !onlyLead)
  if (onlyLead || r.shape.length === to.length) return r
  return reshape(g, r, to)
}

// ---------------------------------------------------------------------------------------------
// Differentiable ops

export function add(g: Graph, a: Value, b: Value): Value {
  const y = g.node1('Add', [a, b], { dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape) })
  g.record({
    op: 'Add',
    inputs: [a, b],
    outputs: [y],
    backward: ([dy]) => [
      a.requiresGrad ? sumToShape(g, dy!, a.shape) : undefined,
      b.requiresGrad ? sumToShape(g, dy!, b.shape) : undefined
    ]
  })
  return y
}

export function sub(g: Graph, a: Value, b: Value): Value {
  const y = g.node1('Sub', [a, b], { dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape) })
  g.record({
    op: 'Sub',
    inputs: [a, b],
    outputs: [y],
    backward: ([dy]) => [
      a.requiresGrad ? sumToShape(g, dy!, a.shape) : undefined,
      b.requiresGrad ? sumToShape(g, neg(g, dy!), b.shape) : undefined
    ]
  })
  return y
}

export function mul(g: Graph, a: Value, b: Value): Value {
  const y = g.node1('Mul', [a, b], { dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape) })
  g.record({
    op: 'Mul',
    inputs: [a, b],
    outputs: [y],
    backward: ([dy]) => [
      a.requiresGrad ? sumToShape(g, mul(g, dy!, b), a.shape) : undefined,
      b.requiresGrad ? sumToShape(g, mul(g, dy!, a), b.shape) : undefined
    ]
  })
  return y
}

/** Sum over `axes` (all axes when omitted). ReduceSum takes axes as an input tensor in opset 13+. */
export function reduceSum(g: Graph, x: Value, axes?: readonly number[], keepdims = false): Value {
  const ax = axes === undefined ? x.shape.map((_, i) => i) : normAxes(axes, x.shape.length)
  const shape = keepdims
    ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !ax.includes(i))
  const inputs = axes === undefined ? [x] : [x, g.ints(ax)]
  const y = g.node1('ReduceSum', inputs, { dtype: x.dtype, shape }, { keepdims: attr.int(keepdims ? 1 : 0) })
  g.record({
    op: 'ReduceSum',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => {
      const kept = keepdims || ax.length === 0 ? dy! : unsqueeze(g, dy!, ax)
      return [expand(g, kept, shapeOf(g, x), x.shape)]
    }
  })
  return y
}

/** Matrix product of two rank-2 tensors. */
export function matmul(g: Graph, a: Value, b: Value): Value {
  if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0]) {
    throw new GraphBuildError(`MatMul needs [M,K]x[K,N], got ${fmtShape(a.shape)}x${fmtShape(b.shape)}`)
  }
  const y = g.node1('MatMul', [a, b], { dtype: a.dtype, shape: [a.shape[0]!, b.shape[1]!] })
  g.record({
    op: 'MatMul',
    inputs: [a, b],
    outputs: [y],
    backward: ([dy]) => [
      a.requiresGrad ? gemm(g, dy!, b, undefined, { transB: true }) : undefined,
      b.requiresGrad ? gemm(g, a, dy!, undefined, { transA: true }) : undefined
    ]
  })
  return y
}

/** `op(A)·op(B) + C` (alpha = beta = 1), where op transposes when asked; C broadcasts to [M,N]. */
export function gemm(
  g: Graph,
  a: Value,
  b: Value,
  c?: Value,
  opts: { transA?: boolean; transB?: boolean } = {}
): Value {
  const ta = opts.transA === true
  const tb = opts.transB === true
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new GraphBuildError(`Gemm needs rank-2 inputs, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`)
  }
  const [m, k1] = ta ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!]
  const [k2, n] = tb ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!]
  if (k1 !== k2) {
    throw new GraphBuildError(
      `Gemm inner dims differ: ${fmtShape(a.shape)}${ta ? 'ᵀ' : ''} x ${fmtShape(b.shape)}${tb ? 'ᵀ' : ''}`
    )
  }
  const shape = [m, n]
  if (c !== undefined && fmtShape(broadcastShapes(shape, c.shape)) !== fmtShape(shape)) {
    throw new GraphBuildError(`Gemm bias ${fmtShape(c.shape)} does not broadcast to ${fmtShape(shape)}`)
  }
  const attrs: Record<string, Attr> = {}
  if (ta) attrs.transA = attr.int(1)
  if (tb) attrs.transB = attr.int(1)
  const y = g.node1('Gemm', c === undefined ? [a, b] : [a, b, c], { dtype: a.dtype, shape }, attrs)
  g.record({
    op: 'Gemm',
    inputs: c === undefined ? [a, b] : [a, b, c],
    outputs: [y],
    backward: ([dy]) => {
      const d = dy!
      // Gradient with respect to op(A) is dY·op(B)ᵀ; with respect to op(B) it is op(A)ᵀ·dY.
      const da = !a.requiresGrad
        ? undefined
        : ta
          ? gemm(g, b, d, undefined, { transA: tb, transB: true })
          : gemm(g, d, b, undefined, { transB: !tb })
      const db = !b.requiresGrad
        ? undefined
        : tb
          ? gemm(g, d, a, undefined, { transA: true, transB: ta })
          : gemm(g, a, d, undefined, { transA: !ta })
      const dc = c?.requiresGrad === true ? sumToShape(g, d, c.shape) : undefined
      return [da, db, dc]
    }
  })
  return y
}

export function relu(g: Graph, x: Value): Value {
  const y = g.node1('Relu', [x], { dtype: x.dtype, shape: x.shape })
  g.record({
    op: 'Relu',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => {
      const zero = g.scalar(0, x.dtype)
      return [where(g, greater(g, y, zero), dy!, zero)]
    }
  })
  return y
}

/** Reshape to `shape`; a symbolic dim is copied from the input (same index) or inferred. */
export function reshape(g: Graph, x: Value, shape: Shape): Value {
  const dims = reshapeDims(x.shape, shape)
  const y = g.node1('Reshape', [x, g.ints(dims)], { dtype: x.dtype, shape })
  g.record({
    op: 'Reshape',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => [reshapeBack(g, dy!, x)]
  })
  return y
}

/** Flatten to rank 2 at `axis` (ONNX Flatten). */
export function flatten(g: Graph, x: Value, axis = 1): Value {
  const shape = [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))]
  const y = g.node1('Flatten', [x], { dtype: x.dtype, shape }, { axis: attr.int(axis) })
  g.record({
    op: 'Flatten',
    inputs: [x],
    outputs: [y],
    backward: ([dy]) => [reshapeBack(g, dy!, x)]
  })
  return y
}

function reshapeBack(g: Graph, dy: Value, x: Value): Value {
  const symbols = x.shape.filter((d) => typeof d !== 'number').length
  if (symbols <= 1) {
    const dims = x.shape.map((d) => (typeof d === 'number' ? d : -1))
    return g.node1('Reshape', [dy, g.ints(dims)], { dtype: dy.dtype, shape: x.shape })
  }
  return g.node1('Reshape', [dy, shapeOf(g, x)], { dtype: dy.dtype, shape: x.shape })
}

export interface ConvOptions {
  stride?: number
  padding?: number
}

/** Output size of a window op along one axis. */
export function windowOut(
  size: number,
  kernel: number,
  stride: number,
  padBegin: number,
  padEnd: number
): number {
  return Math.floor((size + padBegin + padEnd - kernel) / stride) + 1
}

/** 2-D convolution, NCHW, weights [M, C, kh, kw], optional bias [M]; square stride and symmetric padding. */
export function conv(g: Graph, x: Value, w: Value, b: Value | undefined, opts: ConvOptions = {}): Value {
  const s = opts.stride ?? 1
  const p = opts.padding ?? 0
  if (x.shape.length !== 4 || w.shape.length !== 4) {
    throw new GraphBuildError(
      `Conv needs NCHW input and MCkk weights, got ${fmtShape(x.shape)}, ${fmtShape(w.shape)}`
    )
  }
  const [n, c, h, wd] = x.shape as [Dim, Dim, Dim, Dim]
  const [m, cw, kh, kw] = w.shape as [Dim, Dim, Dim, Dim]
  if (typeof h !== 'number' || typeof wd !== 'number' || typeof kh !== 'number' || typeof kw !== 'number') {
    throw new GraphBuildError('Conv needs static spatial dims')
  }
  if (c !== cw)
    throw new GraphBuildError(
      `Conv channels differ: input ${fmtShape(x.shape)}, weights ${fmtShape(w.shape)}`
    )
  const ho = windowOut(h, kh, s, p, p)
  const wo = windowOut(wd, kw, s, p, p)
  if (ho < 1 || wo < 1)
    throw new GraphBuildError(`Conv kernel ${kh}x${kw} larger than input ${fmtShape(x.shape)}`)
  const strides = [s, s]
  const pads = [p, p, p, p]
  const y = g.node1(
    'Conv',
    b === undefined ? [x, w] : [x, w, b],
    { dtype: x.dtype, shape: [n, m, ho, wo] },
    { kernel_shape: attr.ints([kh, kw]), strides: attr.ints(strides), pads: attr.ints(pads) }
  )
  g.record({
    op: 'Conv',
    inputs: b === undefined ? [x, w] : [x, w, b],
    outputs: [y],
    backward: ([dy]) => {
      const d = dy!
      let dx: Value | undefined
      if (x.requiresGrad) {
        // The adjoint of Conv is ConvTranspose with the same weights, strides and pads;
        // output_padding restores the rows/columns that the forward stride dropped.
        const oph = h - (s * (ho - 1) + kh - 2 * p)
        const opw = wd - (s * (wo - 1) + kw - 2 * p)
        dx = g.node1(
          'ConvTranspose',
          [d, w],
          { dtype: x.dtype, shape: x.shape },
          {
            kernel_shape: attr.ints([kh, kw]),
            strides: attr.ints(strides),
            pads: attr.ints(pads),
            output_padding: attr.ints([oph, opw])
          }
        )
      }
      let dw: Value | undefined
      if (w.requiresGrad) {
        // dW[m,c,i,j] = Σ_{n,ho,wo} dY[n,m,ho,wo]·X[n,c,ho·s+i−p,wo·s+j−p]: a Conv of Xᵀ (channels↔batch)
        // with dYᵀ as the kernel, the forward stride becoming the dilation.
        const xt = transpose(g, x, [1, 0, 2, 3])
        const dyt = transpose(g, d, [1, 0, 2, 3])
        const remH = (h + 2 * p - kh) % s
        const remW = (wd + 2 * p - kw) % s
        const endH = Math.max(p - remH, 0)
        const endW = Math.max(p - remW, 0)
        const outH = h + p + endH - (ho - 1) * s
        const outW = wd + p + endW - (wo - 1) * s
        let k = g.node1(
          'Conv',
          [xt, dyt],
          { dtype: x.dtype, shape: [c, m, outH, outW] },
          {
            kernel_shape: attr.ints([ho, wo]),
            dilations: attr.ints([s, s]),
            strides: attr.ints([1, 1]),
            pads: attr.ints([p, p, endH, endW])
          }
        )
        if (outH !== kh || outW !== kw) k = slice(g, k, [0, 0], [kh, kw], [2, 3])
        dw = transpose(g, k, [1, 0, 2, 3])
      }
      const db = b?.requiresGrad === true ? reduceSum(g, d, [0, 2, 3]) : undefined
      return [dx, dw, db]
    }
  })
  return y
}

export interface PoolOptions {
  size: number
  stride?: number
}

/** 2-D max pooling, NCHW, no padding. The backward pass scatters dY to the argmax positions. */
export function maxPool(g: Graph, x: Value, opts: PoolOptions): Value {
  const k = opts.size
  const s = opts.stride ?? k
  if (x.shape.length !== 4) throw new GraphBuildError(`MaxPool needs NCHW input, got ${fmtShape(x.shape)}`)
  const [n, c, h, wd] = x.shape as [Dim, Dim, Dim, Dim]
  if (typeof h !== 'number' || typeof wd !== 'number')
    throw new GraphBuildError('MaxPool needs static spatial dims')
  const ho = windowOut(h, k, s, 0, 0)
  const wo = windowOut(wd, k, s, 0, 0)
  if (ho < 1 || wo < 1)
    throw new GraphBuildError(`MaxPool window ${k} larger than input ${fmtShape(x.shape)}`)
  const attrs = { kernel_shape: attr.ints([k, k]), strides: attr.ints([s, s]) }
  const outShape = [n, c, ho, wo]
  const wantIndices = g.recording && x.requiresGrad
  const outs = g.node(
    'MaxPool',
    [x],
    wantIndices
      ? [
          { dtype: x.dtype, shape: outShape },
          { dtype: 'int64', shape: outShape }
        ]
      : [{ dtype: x.dtype, shape: outShape }],
    attrs
  )
  const y = outs[0]!
  const indices = outs[1]
  if (indices !== undefined) {
    g.record({
      op: 'MaxPool',
      inputs: [x],
      outputs: [y],
      backward: ([dy]) => {
        if (s >= k && x.dtype === 'float') {
          // Windows do not overlap: each input element is selected at most once, and MaxUnpool
          // (the inverse of MaxPool with indices; float only on the CPU provider) places dY at
          // the argmax positions exactly, several times faster than ScatterElements.
          return [
            g.node1('MaxUnpool', [dy!, indices, shapeOf(g, x)], { dtype: x.dtype, shape: x.shape }, attrs)
          ]
        }
        // Overlapping windows can select the same element twice: scatter-add into a flat zero
        // tensor (indices are flat over the whole input, N·C·H·W). Also the float64 path.
        const size = numel(x.shape)
        const count = g.node1('Size', [x], { dtype: 'int64', shape: [] })
        const count1 = g.node1('Unsqueeze', [count, g.ints([0])], { dtype: 'int64', shape: [1] })
        const zeros = g.node1('Expand', [g.scalar(0, x.dtype), count1], { dtype: x.dtype, shape: [size] })
        const flat = [numel(outShape)]
        const flatIdx = g.node1('Reshape', [indices, g.ints([-1])], { dtype: 'int64', shape: flat })
        const flatDy = g.node1('Reshape', [dy!, g.ints([-1])], { dtype: dy!.dtype, shape: flat })
        const scattered = g.node1(
          'ScatterElements',
          [zeros, flatIdx, flatDy],
          { dtype: x.dtype, shape: [size] },
          { axis: attr.int(0), reduction: attr.string('add') }
        )
        return [reshapeBack(g, scattered, x)]
      }
    })
  }
  return y
}

/**
 * Mean softmax cross-entropy of `logits` [B, K] against int64 `labels` [B], computed stably
 * with LogSoftmax. Gradient: (softmax − onehot)·dLoss / B.
 */
export function softmaxCrossEntropy(
  g: Graph,
  logits: Value,
  labels: Value
): { loss: Value; logProbs: Value } {
  if (logits.shape.length !== 2 || labels.shape.length !== 1) {
    throw new GraphBuildError(
      `softmaxCrossEntropy needs logits [B,K] and labels [B], got ${fmtShape(logits.shape)}, ${fmtShape(labels.shape)}`
    )
  }
  const k = logits.shape[1]!
  if (typeof k !== 'number') throw new GraphBuildError('softmaxCrossEntropy needs a static class count')
  const dt = logits.dtype
  const logProbs = g.node1('LogSoftmax', [logits], { dtype: dt, shape: logits.shape }, { axis: attr.int(1) })
  const lab = g.node1('Unsqueeze', [labels, g.ints([1])], { dtype: 'int64', shape: [labels.shape[0]!, 1] })
  const picked = g.node1(
    'GatherElements',
    [logProbs, lab],
    { dtype: dt, shape: [labels.shape[0]!, 1] },
    { axis: attr.int(1) }
  )
  const mean = g.node1('ReduceMean', [picked], { dtype: dt, shape: [] }, { keepdims: attr.int(0) })
  const loss = g.node1('Neg', [mean], { dtype: dt, shape: [] })
  g.record({
    op: 'SoftmaxCrossEntropy',
    inputs: [logits],
    outputs: [loss],
    backward: ([dl]) => {
      const classes = g.constant(
        BigInt64Array.from({ length: k }, (_, i) => BigInt(i)),
        [k],
        'int64'
      )
      const onehot = cast(g, equal(g, lab, classes), dt)
      const probs = exp(g, logProbs)
      const batch = cast(
        g,
        g.node1('Gather', [shapeOf(g, logits), g.scalar(0, 'int64')], { dtype: 'int64', shape: [] }),
        dt
      )
      const scale = div(g, dl!, batch)
      return [mul(g, sub(g, probs, onehot), scale)]
    }
  })
  return { loss, logProbs }
}
