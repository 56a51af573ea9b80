/**
 * Read the weights back out of an ONNX model exported by {@link exportOnnx}: each parameter
 * of the spec is an initializer of the same name (float32, raw little-endian data).
 */
import onnxProto from 'onnx-proto'
import { paramsOf, type ModelSpec } from '../graph/index.js'
import { OnnxModelError } from './errors.js'

const { onnx } = onnxProto
const FLOAT = 1

export function extractWeights(model: Uint8Array, spec: ModelSpec): Map<string, Float32Array> {
  let decoded: onnxProto.onnx.ModelProto
  try {
    decoded = onnx.ModelProto.decode(model)
  } catch (err) {
    throw new OnnxModelError(`not an ONNX model: ${(err as Error).message}`, {}, { cause: err })
  }
  const inits = new Map((decoded.graph?.initializer ?? []).map((t) => [t.name ?? '', t]))
  const out = new Map<string, Float32Array>()
  for (const p of paramsOf(spec)) {
    const t = inits.get(p.name)
    const size = p.shape.reduce((a, b) => a * b, 1)
    if (t === undefined || t.dataType !== FLOAT) {
      throw new OnnxModelError(`the model has no float32 initializer "${p.name}"`, { param: p.name })
    }
    let values: Float32Array
    if (t.rawData !== undefined && t.rawData !== null && t.rawData.length > 0) {
      const raw = t.rawData
      if (raw.length % 4 !== 0) {
        throw new OnnxModelError(`initializer "${p.name}" has ${raw.length} raw bytes, not whole float32s`, {
          param: p.name,
          bytes: raw.length
        })
      }
      const copy = new Uint8Array(raw.length)
      copy.set(raw)
      values = new Float32Array(copy.buffer)
    } else {
      values = Float32Array.from(t.floatData ?? [])
    }
    if (values.length !== size) {
      throw new OnnxModelError(`initializer "${p.name}" has ${values.length} values, expected ${size}`, {
        param: p.name,
        expected: size,
        actual: values.length
      })
    }
    out.set(p.name, values)
  }
  return out
}
