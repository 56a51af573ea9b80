/**
 * A small graph IR for ONNX: typed values with (partly symbolic) shapes, nodes in
 * topological order, initializers, and a tape of differentiable operations that
 * reverse-mode autodiff walks backwards (see `autodiff.ts`).
 */
import { GraphBuildError } from './errors.js'

/** Element types the builder emits. `float` is float32, `double` float64. */
export type DType = 'float' | 'double' | 'int64' | 'bool'

/** A dimension: a number, or a symbol such as `'B'` for the batch. */
export type Dim = number | string

export type Shape = readonly Dim[]

/** A value (tensor) in the graph. Nodes refer to values by object, names are resolved on export. */
export class Value {
  /** The ONNX name; may be changed by `Graph.output()` until the graph is serialised. */
  name: string
  readonly dtype: DType
  readonly shape: Shape
  /** True when the value depends on a trainable input, so that gradients flow through it. */
  readonly requiresGrad: boolean

  constructor(name: string, dtype: DType, shape: Shape, requiresGrad: boolean) {
    this.name = name
    this.dtype = dtype
    this.shape = shape
    this.requiresGrad = requiresGrad
  }
}

/** An ONNX attribute, tagged with its type. */
export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string }

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  ints: (value: readonly number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): Attr => ({ kind: 'floats', value }),
  string: (value: string): Attr => ({ kind: 'string', value })
}

export interface GraphNode {
  op: string
  /** `undefined` marks an omitted optional input. */
  inputs: ReadonlyArray<Value | undefined>
  outputs: readonly Value[]
  attrs: Readonly<Record<string, Attr>>
}

export type TensorData = Float32Array | Float64Array | BigInt64Array | Uint8Array

/** A constant tensor stored in the graph (ONNX initializer). */
export interface Initializer {
  value: Value
  data: TensorData
}

/**
 * One differentiable operation on the tape. `backward` receives the gradient of each output
 * (undefined where no gradient flows) and returns the gradient of each input (undefined where
 * not needed); it emits its nodes into the same graph.
 */
export interface TapeEntry {
  op: string
  inputs: readonly Value[]
  outputs: readonly Value[]
  backward: (dOutputs: ReadonlyArray<Value | undefined>) => Array<Value | undefined>
}

/** Spec of a node output for `Graph.node()`. */
export interface OutputSpec {
  dtype: DType
  shape: Shape
  name?: string
}

export class Graph {
  readonly nodes: GraphNode[] = []
  readonly inputs: Value[] = []
  readonly outputs: Value[] = []
  readonly initializers: Initializer[] = []
  readonly tape: TapeEntry[] = []
  /** When false, differentiable ops do not record tape entries (set while emitting the backward pass). */
  recording = true
  private readonly names = new Set<string>()
  private readonly constCache = new Map<string, Value>()
  private counter = 0

  /** A fresh name starting with `prefix`. */
  fresh(prefix: string): string {
    let name: string
    do name = `${prefix}_${this.counter++}`
    while (this.names.has(name))
    return name
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new GraphBuildError(`duplicate value name '${name}'`, { name })
    this.names.add(name)
    return name
  }

  /** Declare a graph input. `requiresGrad` marks it trainable (gradients can be taken with respect to it). */
  input(name: string, dtype: DType, shape: Shape, opts: { requiresGrad?: boolean } = {}): Value {
    const v = new Value(this.claim(name), dtype, shape, opts.requiresGrad ?? false)
    this.inputs.push(v)
    return v
  }

  /** A constant tensor (initializer). */
  constant(data: TensorData, shape: readonly number[], dtype: DType, name?: string): Value {
    const size = shape.reduce((a, b) => a * b, 1)
    if (data.length !== size) {
      throw new GraphBuildError(
        `constant of shape [${shape.join(',')}] needs ${size} elements, got ${data.length}`
      )
    }
    const v = new Value(this.claim(name ?? this.fresh('const')), dtype, shape, false)
    this.initializers.push({ value: v, data })
    return v
  }

  /** A cached scalar constant (shape []) of a float type. */
  scalar(x: number, dtype: DType = 'float'): Value {
    const key = `s:${dtype}:${x}`
    let v = this.constCache.get(key)
    if (v === undefined) {
      const data =
        dtype === 'double'
          ? Float64Array.of(x)
          : dtype === 'int64'
            ? BigInt64Array.of(BigInt(x))
            : Float32Array.of(x)
      v = this.constant(data, [], dtype)
      this.constCache.set(key, v)
    }
    return v
  }

  /** A cached 1-D int64 constant (axes, shapes, pads given as tensors). */
  ints(xs: readonly number[]): Value {
    const key = `i:${xs.join(',')}`
    let v = this.constCache.get(key)
    if (v === undefined) {
      v = this.constant(
        BigInt64Array.from(xs, (x) => BigInt(x)),
        [xs.length],
        'int64'
      )
      this.constCache.set(key, v)
    }
    return v
  }

  /**
   * Emit one ONNX node; returns its outputs. Outputs require grad when any input does, unless
   * `noGrad` marks the op as having no gradient (comparisons, ArgMax, Shape, integer casts).
   */
  node(
    op: string,
    inputs: ReadonlyArray<Value | undefined>,
    outputs: readonly OutputSpec[],
    attrs: Record<string, Attr> = {},
    opts: { noGrad?: boolean } = {}
  ): Value[] {
    const requiresGrad = opts.noGrad !== true && inputs.some((v) => v?.requiresGrad === true)
    const outs = outputs.map(
      (o) => new Value(this.claim(o.name ?? this.fresh(op.toLowerCase())), o.dtype, o.shape, requiresGrad)
    )
    this.nodes.push({ op, inputs, outputs: outs, attrs })
    return outs
  }

  /** Emit a node with a single output. */
  node1(
    op: string,
    inputs: ReadonlyArray<Value | undefined>,
    out: OutputSpec,
    attrs: Record<string, Attr> = {},
    opts: { noGrad?: boolean } = {}
  ): Value {
    return this.node(op, inputs, [out], attrs, opts)[0]!
  }

  /** Record a differentiable operation (only while recording and when an input requires grad). */
  record(entry: TapeEntry): void {
    if (this.recording && entry.inputs.some((v) => v.requiresGrad)) this.tape.push(entry)
  }

  /**
   * Expose `v` as a graph output named `name`. The value is renamed in place when it is a
   * node output not yet exposed; otherwise an Identity node is added.
   */
  output(v: Value, name: string = v.name): Value {
    const producedHere = this.nodes.some((n) => n.outputs.includes(v))
    if (producedHere && !this.outputs.includes(v) && (name === v.name || !this.names.has(name))) {
      if (name !== v.name) {
        this.names.delete(v.name)
        v.name = this.claim(name)
      }
      this.outputs.push(v)
      return v
    }
    const out = this.node1('Identity', [v], { dtype: v.dtype, shape: v.shape, name })
    this.outputs.push(out)
    return out
  }
}

/** Numpy-style broadcast of two shapes; symbolic dims broadcast only against 1 or themselves. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] {
  const n = Math.max(a.length, b.length)
  const out: Dim[] = []
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!
    if (da === db || db === 1) out.push(da)
    else if (da === 1) out.push(db)
    else throw new GraphBuildError(`shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`)
  }
  return out
}

/** Format a shape for messages: `[16,4,4]`. */
export function fmtShape(s: Shape): string {
  return `[${s.join(',')}]`
}

/**
 * Remove the nodes whose outputs nothing uses (no later node, no graph output), repeatedly, and the
 * initializers left unused. Reverse-mode autodiff emits every gradient rule's backward nodes, some of which
 * a caller may not need (e.g. the batch-summed weight gradients when per-example gradients are built from
 * the layer-output gradients instead). Returns how many nodes were removed.
 */
export function pruneGraph(g: Graph): number {
  const before = g.nodes.length
  const used = new Set<Value>(g.outputs)
  const keep: GraphNode[] = []
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!
    if (!n.outputs.some((o) => used.has(o))) continue
    keep.push(n)
    for (const v of n.inputs) if (v !== undefined) used.add(v)
  }
  keep.reverse()
  g.nodes.splice(0, g.nodes.length, ...keep)
  const inits = g.initializers.filter((t) => used.has(t.value))
  g.initializers.splice(0, g.initializers.length, ...inits)
  return before - g.nodes.length
}
