/**
 * Serialise a `Graph` to ONNX ModelProto bytes (IR version 8, default domain opset 17)
 * with the `onnx-proto` encoder.
 */
import onnxProto from 'onnx-proto'
import type { onnx as proto } from 'onnx-proto'
import type { Attr, DType, Graph, Shape, TensorData, Value } from './graph.js'

const { onnx } = onnxProto

/** The opset the builder targets (ai.onnx domain only). */
export const OPSET = 17
/** ONNX IR version 8 is the first to support opset 17. */
export const IR_VERSION = 8

const ELEM_TYPE: Record<DType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  double: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL
}

export interface SerializeOptions {
  graphName?: string
  producerName?: string
  producerVersion?: string
  docString?: string
  metadata?: Record<string, string>
}

function valueInfo(v: Value): proto.IValueInfoProto {
  return {
    name: v.name,
    type: { tensorType: { elemType: ELEM_TYPE[v.dtype], shape: shapeProto(v.shape) } }
  }
}

function shapeProto(shape: Shape): proto.ITensorShapeProto {
  return { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
}

function attrProto(name: string, a: Attr): proto.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value }
    case 'float':
      return { name, type: T.FLOAT, f: a.value }
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] }
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] }
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) }
  }
}

function rawBytes(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice()
}

/** Encode the graph as ONNX model bytes. */
export function serializeGraph(g: Graph, opts: SerializeOptions = {}): Uint8Array {
  const initializer: proto.ITensorProto[] = g.initializers.map(({ value, data }) => ({
    name: value.name,
    dims: value.shape.map((d) => d as number),
    dataType: ELEM_TYPE[value.dtype],
    rawData: rawBytes(data)
  }))
  const node: proto.INodeProto[] = g.nodes.map((n, i) => ({
    name: `${n.op}_${i}`,
    opType: n.op,
    input: n.inputs.map((v) => v?.name ?? ''),
    output: n.outputs.map((v) => v.name),
    attribute: Object.entries(n.attrs).map(([k, a]) => attrProto(k, a))
  }))
  const model: proto.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: opts.producerName ?? 'shoal',
    producerVersion: opts.producerVersion ?? '0.1.0',
    docString: opts.docString ?? '',
    graph: {
      name: opts.graphName ?? 'graph',
      node,
      initializer,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo)
    },
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value }))
  }
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish()
}
