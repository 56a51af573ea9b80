/**
 * Compression of exchanged models: symmetric int8 quantization with one scale per tensor, and
 * a compact binary encoding (optionally of a delta against a base both sides hold).
 *
 * ```
 * offset  size  content
 * 0       4     magic, ASCII "SHCU"
 * 4       1     version (1)
 * 5       1     kind: 0 = float32 ('none'), 1 = int8
 * 6       2     zero
 * 8       4     H: header length in bytes, uint32 little-endian
 * 12      H     UTF-8 JSON {"tensors":[{"name":…,"shape":[…],"scale":…},…]} ("scale" only for
 *               int8), right-padded with spaces (0x20) so that 12 + H is a multiple of 4
 * 12+H    …     each tensor's values in header order, back to back: float32 little-endian
 *               ('none') or int8 in [-127, 127] ('int8'); the bytes end after the last value
 * ```
 *
 * Tensors are sorted by name and the JSON has no optional whitespace, so equal inputs encode
 * to equal bytes.
 */
import {
  COMPRESSED_MAGIC,
  COMPRESSED_VERSION,
  MAX_COMPRESSED_HEADER_BYTES,
  MAX_COMPRESSED_RANK,
  MAX_COMPRESSED_TENSORS
} from './constants.js'
import {
  isTensorShape,
  readFloat32LE,
  readJsonTensorHeader,
  writeFloat32LE,
  writeJsonTensorHeader
} from '../export/index.js'
import { AggregationError, UpdateDecodeError, UpdateRejectedError } from './errors.js'
import type { Weights } from './rules.js'

/** How values are stored: float32 as is, or int8 with a per-tensor scale. */
export type CompressionKind = 'none' | 'int8'

/** One int8-quantized tensor: value ≈ `data[i] * scale`. */
export interface QuantizedTensor {
  name: string
  /** max |x| / 127, rounded to float32; 0 for an all-zero tensor. */
  scale: number
  data: Int8Array
}

/** A quantized model, tensors sorted by name. */
export interface QuantizedWeights {
  tensors: QuantizedTensor[]
}

/** One tensor as described by a compressed header. */
export interface CompressedTensorInfo {
  name: string
  shape: number[]
  /** Present for int8. */
  scale?: number
}

/** Tensor shapes for the header (e.g. a compiled model's `params`); `[length]` when absent. */
export type ShapeList = ReadonlyArray<{ name: string; shape: readonly number[] }>

const PREFIX = 12
const KINDS: readonly CompressionKind[] = ['none', 'int8']

/**
 * Quantize each tensor to int8: scale = max|x| / 127 (float32), q = round(x / scale). The
 * dequantized value differs from x by at most scale / 2 (plus float32 rounding of q · scale).
 *
 * @example
 * ```ts
 * const q = quantizeInt8(weights)
 * const approx = dequantizeInt8(q)
 * ```
 * @throws {UpdateRejectedError} `UPDATE_NON_FINITE` when a value is NaN or ±Infinity.
 */
export function quantizeInt8(weights: Weights): QuantizedWeights {
  const tensors = [...weights.keys()].sort().map((name) => {
    const x = weights.get(name)!
    let max = 0
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]!)
      if (!(a <= Number.MAX_VALUE)) {
        throw new UpdateRejectedError('UPDATE_NON_FINITE', `tensor '${name}' has ${x[i]} at index ${i}`, {
          param: name,
          index: i
        })
      }
      if (a > max) max = a
    }
    const scale = Math.fround(max / 127)
    const data = new Int8Array(x.length)
    if (scale > 0) {
      for (let i = 0; i < x.length; i++) {
        const q = Math.round(x[i]! / scale)
        data[i] = q > 127 ? 127 : q < -127 ? -127 : q
      }
    }
    return { name, scale, data }
  })
  return { tensors }
}

/** Float32 values `q · scale` of every quantized tensor. */
export function dequantizeInt8(q: QuantizedWeights): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>()
  for (const { name, scale, data } of q.tensors) {
    const x = new Float32Array(data.length)
    for (let i = 0; i < data.length; i++) x[i] = data[i]! * scale
    out.set(name, x)
  }
  return out
}

function checkSameLayout(a: Weights, b: Weights): void {
  if (a.size !== b.size) {
    throw new AggregationError(`the maps have ${a.size} and ${b.size} tensors`, {
      expected: a.size,
      actual: b.size
    })
  }
  for (const [name, x] of a) {
    const y = b.get(name)
    if (y === undefined || y.length !== x.length) {
      throw new AggregationError(`tensor '${name}' is missing from the base or has the wrong length`, {
        param: name,
        expected: x.length,
        actual: y?.length ?? null
      })
    }
  }
}

/**
 * `model − base`, per tensor (float32). Quantizing a delta keeps more precision than
 * quantizing the weights: `encodeCompressed(weightsDelta(model, base), 'int8')`.
 *
 * @throws {AggregationError} when the two maps differ in names or lengths.
 */
export function weightsDelta(model: Weights, base: Weights): Map<string, Float32Array> {
  checkSameLayout(model, base)
  const out = new Map<string, Float32Array>()
  for (const [name, x] of model) {
    const b = base.get(name)!
    const d = new Float32Array(x.length)
    for (let i = 0; i < x.length; i++) d[i] = x[i]! - b[i]!
    out.set(name, d)
  }
  return out
}

/**
 * `base + delta`, per tensor (float32): the inverse of `weightsDelta`.
 *
 * @example
 * ```ts
 * const bytes = encodeCompressed(weightsDelta(model, base), 'int8')
 * const received = applyDelta(base, decodeCompressed(bytes))
 * ```
 * @throws {AggregationError} when the two maps differ in names or lengths.
 */
export function applyDelta(base: Weights, delta: Weights): Map<string, Float32Array> {
  checkSameLayout(delta, base)
  const out = new Map<string, Float32Array>()
  for (const [name, d] of delta) {
    const b = base.get(name)!
    const x = new Float32Array(d.length)
    for (let i = 0; i < d.length; i++) x[i] = b[i]! + d[i]!
    out.set(name, x)
  }
  return out
}

function sizeOf(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

function shapeFor(shapes: ShapeList | undefined, name: string, length: number): number[] {
  const shape = shapes?.find((s) => s.name === name)?.shape
  if (shape === undefined) return [length]
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || sizeOf(shape) !== length) {
    throw new AggregationError(`tensor '${name}' has ${length} values but shape [${shape.join(', ')}]`, {
      param: name,
      shape: [...shape],
      length
    })
  }
  return [...shape]
}

/**
 * Encode a model (or a delta) in the compressed format; int8 takes about a quarter of the
 * float32 size.
 *
 * @example
 * ```ts
 * const bytes = encodeCompressed(weights, 'int8', compiled.params)
 * const back = decodeCompressed(bytes) // each value within its tensor's scale / 2
 * ```
 * @throws {UpdateRejectedError} `UPDATE_NON_FINITE` for int8 of a non-finite value.
 * @throws {AggregationError} for an unknown kind or a shape that does not match its tensor.
 */
export function encodeCompressed(weights: Weights, kind: CompressionKind, shapes?: ShapeList): Uint8Array {
  const code = KINDS.indexOf(kind)
  if (code < 0) throw new AggregationError(`unknown compression kind ${JSON.stringify(kind)}`, { kind })
  const names = [...weights.keys()].sort()
  const quantized = kind === 'int8' ? quantizeInt8(weights).tensors : undefined
  const tensors = names.map((name, k) => {
    const shape = shapeFor(shapes, name, weights.get(name)!.length)
    return quantized === undefined ? { name, shape } : { name, shape, scale: quantized[k]!.scale }
  })
  const bytesPer = kind === 'int8' ? 1 : 4
  let values = 0
  for (const name of names) values += weights.get(name)!.length
  const { out, offset: start } = writeJsonTensorHeader(COMPRESSED_MAGIC, tensors, values * bytesPer)
  out[4] = COMPRESSED_VERSION
  out[5] = code
  let offset = start
  names.forEach((name, k) => {
    if (quantized !== undefined) {
      const q = quantized[k]!.data
      out.set(new Uint8Array(q.buffer, q.byteOffset, q.byteLength), offset)
      offset += q.byteLength
      return
    }
    offset = writeFloat32LE(out, offset, weights.get(name)!)
  })
  return out
}

function fail(message: string, fields: Record<string, unknown> = {}): never {
  throw new UpdateDecodeError(message, fields)
}

/**
 * Read and check the header of compressed bytes: kind, tensors, where the values begin, and
 * that the byte length matches the header exactly.
 *
 * @throws {UpdateDecodeError} `UPDATE_DECODE_FAILED` for truncated, garbled or unknown input.
 */
export function readCompressedHeader(bytes: Uint8Array): {
  kind: CompressionKind
  tensors: CompressedTensorInfo[]
  dataOffset: number
} {
  if (!(bytes instanceof Uint8Array)) fail('compressed update is not a Uint8Array')
  if (bytes.length < PREFIX)
    fail(`compressed update too short (${bytes.length} bytes)`, { length: bytes.length })
  const magic = String.fromCharCode(...bytes.subarray(0, 4))
  if (magic !== COMPRESSED_MAGIC) fail(`not a compressed Shoal update (magic ${JSON.stringify(magic)})`)
  if (bytes[4] !== COMPRESSED_VERSION) fail(`unsupported version ${bytes[4]}`, { version: bytes[4] })
  const kind = KINDS[bytes[5]!]
  if (kind === undefined) fail(`unknown compression kind ${bytes[5]}`, { kind: bytes[5] })
  if (bytes[6] !== 0 || bytes[7] !== 0) fail('reserved bytes are not zero')
  const { list, dataOffset } = readJsonTensorHeader(bytes, {
    prefix: PREFIX,
    maxBytes: MAX_COMPRESSED_HEADER_BYTES,
    maxTensors: MAX_COMPRESSED_TENSORS,
    what: 'compressed update',
    fail
  })
  let previous: string | undefined
  let total = 0
  const tensors = list.map((t: unknown, i): CompressedTensorInfo => {
    const { name, shape, scale } = (t ?? {}) as { name?: unknown; shape?: unknown; scale?: unknown }
    if (typeof name !== 'string' || (previous !== undefined && name <= previous)) {
      fail(`tensor ${i}: missing name, or names not strictly ascending`, { index: i })
    }
    previous = name
    if (!isTensorShape(shape, MAX_COMPRESSED_RANK)) {
      fail(`tensor '${name}': bad shape ${JSON.stringify(shape)}`, { param: name })
    }
    total += sizeOf(shape)
    if (!(total <= Number.MAX_SAFE_INTEGER)) fail('header describes too many values')
    if (kind === 'int8') {
      if (typeof scale !== 'number' || !(scale >= 0 && scale <= 3.4e38) || Math.fround(scale) !== scale) {
        fail(`tensor '${name}': bad scale ${JSON.stringify(scale)}`, { param: name })
      }
      return { name, shape, scale }
    }
    if (scale !== undefined) fail(`tensor '${name}': unexpected scale for float32 values`, { param: name })
    return { name, shape }
  })
  const expected = dataOffset + total * (kind === 'int8' ? 1 : 4)
  if (bytes.length !== expected) {
    fail(`compressed update is ${bytes.length} bytes; its header describes ${expected}`, {
      length: bytes.length,
      expected
    })
  }
  return { kind, tensors, dataOffset }
}

/**
 * Decode compressed bytes to float32 tensors (copies; int8 values are dequantized).
 *
 * @throws {UpdateDecodeError} `UPDATE_DECODE_FAILED` for truncated, garbled or unknown input,
 *   including an int8 value of -128.
 */
export function decodeCompressed(bytes: Uint8Array): Map<string, Float32Array> {
  const { kind, tensors, dataOffset } = readCompressedHeader(bytes)
  const out = new Map<string, Float32Array>()
  let offset = bytes.byteOffset + dataOffset
  for (const { name, shape, scale } of tensors) {
    const n = sizeOf(shape)
    let x: Float32Array
    if (kind === 'int8') {
      x = new Float32Array(n)
      const q = new Int8Array(bytes.buffer, offset, n)
      for (let i = 0; i < n; i++) {
        const v = q[i]!
        if (v === -128) fail(`tensor '${name}': int8 value -128 at index ${i}`, { param: name, index: i })
        x[i] = v * scale!
      }
      offset += n
    } else {
      x = readFloat32LE(bytes.buffer, offset, n)
      offset += n * 4
    }
    out.set(name, x)
  }
  return out
}
