/**
 * A tiny hand-written train-step graph for testing the runtime without the graph builder:
 * softmax regression (one dense layer) trained by SGD with momentum, gradient written by hand.
 *
 *   z = Flatten(x) · W + b;  loss = mean(-log softmax(z)[y])
 *   g = (softmax(z) - onehot(y)) / B;  gW = zᵀ… (xᵀ g), gb = Σ_batch g
 *   v' = μ v + gW;  W' = W - lr v'   (same for b)
 *
 * Same input/output contract as the graph module's CompiledModel.
 */
import onnxProto from 'onnx-proto'
import { Rng } from '../../../../src/common/rng.js'

const { onnx } = onnxProto
type INode = onnxProto.onnx.INodeProto
type IAttr = onnxProto.onnx.IAttributeProto

const FLOAT = onnx.TensorProto.DataType.FLOAT
const INT64 = onnx.TensorProto.DataType.INT64

export interface TinyModel {
  spec: { name: string; input: number[]; classes: number }
  optimizer: { kind: 'momentum'; momentum: number }
  params: Array<{ name: string; shape: number[]; fanIn: number; init: 'glorot' | 'zeros' }>
  state: Array<{ name: string; shape: number[] }>
  trainStep: Uint8Array
  inference: Uint8Array
}

function attrInt(name: string, i: number): IAttr {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i }
}
function attrInts(name: string, ints: number[]): IAttr {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints }
}
function node(op: string, inputs: string[], outputs: string[], attribute: IAttr[] = []): INode {
  return { opType: op, input: inputs, output: outputs, attribute, name: outputs[0] ?? op }
}
function valueInfo(
  name: string,
  elemType: number,
  dims: Array<number | string>
): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
      }
    }
  }
}
function constFloat(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, floatData: values }
}
function constInt64(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: INT64, int64Data: values }
}
function model(graph: onnxProto.onnx.IGraphProto, metadata: Record<string, string> = {}): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'shoal-test',
    graph,
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value }))
  }).finish()
}

function forwardNodes(): INode[] {
  return [
    node('Flatten', ['x'], ['xf'], [attrInt('axis', 1)]),
    node('MatMul', ['xf', 'W'], ['xw']),
    node('Add', ['xw', 'b'], ['logits']),
    node('Softmax', ['logits'], ['probs'], [attrInt('axis', 1)])
  ]
}

/** Build the tiny model for an input shape (e.g. [784] or [1, 28, 28]) and class count. */
export function tinyModel(input: number[] = [784], classes = 10, momentum = 0.9): TinyModel {
  const features = input.reduce((a, b) => a * b, 1)
  const params = [
    { name: 'W', shape: [features, classes], fanIn: features, init: 'glorot' as const },
    { name: 'b', shape: [classes], fanIn: features, init: 'zeros' as const }
  ]
  const state = [
    { name: 'v:W', shape: [features, classes] },
    { name: 'v:b', shape: [classes] }
  ]
  const xInfo = valueInfo('x', FLOAT, ['B', ...input])
  const paramInfos = params.map((p) => valueInfo(p.name, FLOAT, p.shape))
  const stateInfos = state.map((s) => valueInfo(s.name, FLOAT, s.shape))

  const train: INode[] = [
    ...forwardNodes(),
    node('LogSoftmax', ['logits'], ['logp'], [attrInt('axis', 1)]),
    node('OneHot', ['y', 'depth', 'onoff'], ['onehot'], [attrInt('axis', -1)]),
    node('Mul', ['onehot', 'logp'], ['picked']),
    node('ReduceSum', ['picked', 'axis1'], ['rowll'], [attrInt('keepdims', 0)]),
    node('ReduceMean', ['rowll'], ['meanll'], [attrInt('keepdims', 0)]),
    node('Neg', ['meanll'], ['loss']),
    // batch size as float
    node('Shape', ['x'], ['xshape']),
    node('Gather', ['xshape', 'zero'], ['bsz_i'], [attrInt('axis', 0)]),
    node('Cast', ['bsz_i'], ['bsz'], [attrInt('to', FLOAT)]),
    node('Sub', ['probs', 'onehot'], ['dz_sum']),
    node('Div', ['dz_sum', 'bsz'], ['dz']),
    node('Transpose', ['xf'], ['xt'], [attrInts('perm', [1, 0])]),
    node('MatMul', ['xt', 'dz'], ['gW']),
    node('ReduceSum', ['dz', 'axis0'], ['gb'], [attrInt('keepdims', 0)]),
    // momentum
    node('Mul', ['v:W', 'mu'], ['vWm']),
    node('Add', ['vWm', 'gW'], ['new:v:W']),
    node('Mul', ['v:b', 'mu'], ['vbm']),
    node('Add', ['vbm', 'gb'], ['new:v:b']),
    node('Mul', ['new:v:W', 'lr'], ['dW']),
    node('Sub', ['W', 'dW'], ['new:W']),
    node('Mul', ['new:v:b', 'lr'], ['db']),
    node('Sub', ['b', 'db'], ['new:b']),
    // correct count
    node('ArgMax', ['logits'], ['pred'], [attrInt('axis', 1), attrInt('keepdims', 0)]),
    node('Equal', ['pred', 'y'], ['hit']),
    node('Cast', ['hit'], ['hitf'], [attrInt('to', FLOAT)]),
    node('ReduceSum', ['hitf'], ['correct'], [attrInt('keepdims', 0)])
  ]
  const trainStep = model({
    name: 'tiny_train_step',
    node: train,
    initializer: [
      constInt64('depth', [], [classes]),
      constFloat('onoff', [2], [0, 1]),
      constInt64('axis1', [1], [1]),
      constInt64('axis0', [1], [0]),
      constInt64('zero', [], [0]),
      constFloat('mu', [], [momentum])
    ],
    input: [...paramInfos, ...stateInfos, xInfo, valueInfo('y', INT64, ['B']), valueInfo('lr', FLOAT, [])],
    output: [
      ...params.map((p) => valueInfo(`new:${p.name}`, FLOAT, p.shape)),
      ...state.map((s) => valueInfo(`new:${s.name}`, FLOAT, s.shape)),
      valueInfo('loss', FLOAT, []),
      valueInfo('correct', FLOAT, [])
    ]
  })
  const inference = tinyInference(input, classes)
  return {
    spec: { name: 'tiny', input, classes },
    optimizer: { kind: 'momentum', momentum },
    params,
    state,
    trainStep,
    inference
  }
}

/** The inference graph; with `weights`, they are embedded as initializers (inputs become just `x`). */
export function tinyInference(
  input: number[],
  classes: number,
  weights?: Map<string, Float32Array>,
  metadata?: Record<string, string>
): Uint8Array {
  const features = input.reduce((a, b) => a * b, 1)
  const shapes: Record<string, number[]> = { W: [features, classes], b: [classes] }
  const paramNames = ['W', 'b']
  const initializer = weights
    ? paramNames.map((n) => ({
        name: n,
        dims: shapes[n]!,
        dataType: FLOAT,
        rawData: new Uint8Array(weights.get(n)!.slice().buffer)
      }))
    : []
  return model(
    {
      name: 'tiny_inference',
      node: forwardNodes(),
      initializer,
      input: [
        ...(weights ? [] : paramNames.map((n) => valueInfo(n, FLOAT, shapes[n]!))),
        valueInfo('x', FLOAT, ['B', ...input])
      ],
      output: [valueInfo('logits', FLOAT, ['B', classes]), valueInfo('probs', FLOAT, ['B', classes])]
    },
    metadata
  )
}

/** Seeded Glorot-uniform weights, zero bias. */
export function tinyInitParams(m: TinyModel, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed)
  const out = new Map<string, Float32Array>()
  for (const p of m.params) {
    const size = p.shape.reduce((a, b) => a * b, 1)
    const arr = new Float32Array(size)
    if (p.init === 'glorot') {
      const fanOut = p.shape[p.shape.length - 1]!
      const limit = Math.sqrt(6 / (p.fanIn + fanOut))
      for (let i = 0; i < size; i++) arr[i] = (rng.next() * 2 - 1) * limit
    }
    out.set(p.name, arr)
  }
  return out
}

/** Zero optimizer state. */
export function tinyInitState(m: TinyModel): Map<string, Float32Array> {
  return new Map(m.state.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]))
}

/** A small synthetic, linearly separable-ish data set: class c has a bright block at a class-specific spot. */
export function syntheticImages(
  count: number,
  seed: number
): { images: Uint8Array; labels: Uint8Array; count: number; rows: number; cols: number } {
  const rng = new Rng(seed)
  const images = new Uint8Array(count * 784)
  const labels = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const c = rng.int(10)
    labels[i] = c
    for (let p = 0; p < 784; p++) images[i * 784 + p] = rng.int(60)
    const r0 = 2 + (c % 5) * 5
    const c0 = 4 + Math.floor(c / 5) * 12
    for (let r = r0; r < r0 + 4; r++)
      for (let col = c0; col < c0 + 8; col++) images[i * 784 + r * 28 + col] = 200 + rng.int(56)
  }
  return { images, labels, count, rows: 28, cols: 28 }
}
