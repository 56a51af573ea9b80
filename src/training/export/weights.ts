/**
 * A simple, deterministic binary format for named float32 tensors (checkpoints, gossip).
 *
 * ```
 * offset  size  content
 * 0       8     magic, ASCII "SHOALWT1"
 * 8       4     H: header length in bytes, uint32 little-endian
 * 12      H     header: UTF-8 JSON {"tensors":[{"name":…,"shape":[…]},…]}, right-padded
 *               with spaces (0x20) so that 12 + H is a multiple of 4
 * 12+H    …     each tensor's values as float32 little-endian, row-major, in header order,
 *               back to back; the file ends exactly after the last value
 * ```
 *
 * Tensors are sorted by name (JavaScript string order) and the JSON has no optional
 * whitespace, so equal weights always encode to equal bytes (and equal CIDs).
 */
import { endianness } from 'node:os'
import { shapeSize } from '../data/index.js'
import { WeightsFormatError } from './errors.js'

/** The format's magic bytes. */
export const WEIGHTS_MAGIC = 'SHOALWT1'
/** Largest header accepted when decoding. */
export const MAX_WEIGHTS_HEADER_BYTES = 1 << 20
/** Most tensors accepted when decoding. */
export const MAX_WEIGHTS_TENSORS = 4096

const PREFIX = 12
const LITTLE_ENDIAN = endianness() === 'LE'

/** Write `x` as float32 little-endian into `out` at `offset`; returns the offset after it. */
export function writeFloat32LE(out: Uint8Array, offset: number, x: Float32Array): number {
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), offset)
  } else {
    const view = new DataView(out.buffer, out.byteOffset + offset, x.byteLength)
    for (let i = 0; i < x.length; i++) view.setFloat32(i * 4, x[i]!, true)
  }
  return offset + x.byteLength
}

/**
 * Lay out either of Shoal's binary tensor formats: a 12-byte preamble (`magic`, up to 8 ASCII
 * bytes, at 0; the header length, uint32 LE, at 8), the JSON header `{ tensors }` padded with
 * spaces so that the values start 4-byte aligned, then `valueBytes` zero bytes for the caller
 * to fill from `offset`. The reading side is {@link readJsonTensorHeader}.
 */
export function writeJsonTensorHeader(
  magic: string,
  tensors: readonly object[],
  valueBytes: number
): { out: Uint8Array; offset: number } {
  let header = new TextEncoder().encode(JSON.stringify({ tensors }))
  const padded = Math.ceil((PREFIX + header.length) / 4) * 4 - PREFIX
  if (padded !== header.length) {
    const h = new Uint8Array(padded).fill(0x20)
    h.set(header)
    header = h
  }
  const out = new Uint8Array(PREFIX + header.length + valueBytes)
  out.set(new TextEncoder().encode(magic), 0)
  new DataView(out.buffer).setUint32(8, header.length, true)
  out.set(header, PREFIX)
  return { out, offset: PREFIX + header.length }
}

/**
 * The JSON header both of Shoal's binary tensor formats (SHOALWT1 weights and compressed
 * updates) carry after a `prefix`-byte preamble whose last 4 bytes (at `prefix − 4`) are its
 * length: bounds-checked (at most `maxBytes`, within `bytes`, values 4-byte aligned after it),
 * parsed, and its `tensors` list (at most `maxTensors`) returned with where the values begin.
 * `fail` throws the caller's format error; `what` names the format in messages.
 */
export function readJsonTensorHeader(
  bytes: Uint8Array,
  opts: {
    prefix: number
    maxBytes: number
    maxTensors: number
    what: string
    fail: (message: string, fields?: Record<string, unknown>) => never
  }
): { list: unknown[]; dataOffset: number } {
  const { prefix, fail } = opts
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(prefix - 4, true)
  if (h > opts.maxBytes || prefix + h > bytes.length || (prefix + h) % 4 !== 0) {
    fail(`bad header length ${h}`, { headerLength: h, length: bytes.length })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(prefix, prefix + h)))
  } catch (err) {
    fail(`${opts.what} header is not JSON: ${(err as Error).message}`)
  }
  const list = (parsed as { tensors?: unknown } | null)?.tensors
  if (!Array.isArray(list) || list.length > opts.maxTensors) {
    return fail(`${opts.what} header lacks a valid "tensors" list`)
  }
  return { list, dataOffset: prefix + h }
}

/** A tensor shape as a header may state it: at most `maxRank` whole dimensions in [0, 2³¹). */
export function isTensorShape(shape: unknown, maxRank: number): shape is number[] {
  return (
    Array.isArray(shape) &&
    shape.length <= maxRank &&
    shape.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 31)
  )
}

/** Read `n` float32 little-endian values at absolute `offset` of `buffer` into a new array. */
export function readFloat32LE(buffer: ArrayBufferLike, offset: number, n: number): Float32Array {
  const x = new Float32Array(n)
  if (LITTLE_ENDIAN) {
    new Uint8Array(x.buffer).set(new Uint8Array(buffer, offset, n * 4))
  } else {
    const view = new DataView(buffer, offset, n * 4)
    for (let i = 0; i < n; i++) x[i] = view.getFloat32(i * 4, true)
  }
  return x
}

export interface WeightsEntry {
  name: string
  shape: number[]
  data: Float32Array
}

/** Shapes by tensor name, or a list of `{ name, shape }` (e.g. a compiled model's `params`). */
export type ShapeSource =
  ReadonlyMap<string, readonly number[]> | ReadonlyArray<{ name: string; shape: readonly number[] }>

function shapeOf(shapes: ShapeSource | undefined, name: string, length: number): number[] {
  let shape: readonly number[] | undefined
  if (shapes instanceof Map) shape = shapes.get(name)
  else if (Array.isArray(shapes))
    shape = (shapes as ReadonlyArray<{ name: string; shape: readonly number[] }>).find(
      (s) => s.name === name
    )?.shape
  if (shape === undefined) return [length]
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || shapeSize(shape) !== length) {
    throw new WeightsFormatError(`tensor '${name}' has ${length} values but shape [${shape.join(', ')}]`, {
      name,
      shape: [...shape],
      length
    })
  }
  return [...shape]
}

/**
 * Encode named float32 tensors. Without a shape for a tensor it is stored as `[length]`.
 *
 * @throws {WeightsFormatError} when a given shape does not match its tensor's length.
 */
export function encodeWeights(weights: ReadonlyMap<string, Float32Array>, shapes?: ShapeSource): Uint8Array {
  const names = [...weights.keys()].sort()
  const tensors = names.map((name) => ({ name, shape: shapeOf(shapes, name, weights.get(name)!.length) }))
  let values = 0
  for (const name of names) values += weights.get(name)!.length
  const { out, offset: start } = writeJsonTensorHeader(WEIGHTS_MAGIC, tensors, values * 4)
  let offset = start
  for (const name of names) offset = writeFloat32LE(out, offset, weights.get(name)!)
  return out
}

function fail(message: string, fields: Record<string, unknown> = {}): never {
  throw new WeightsFormatError(message, fields)
}

/**
 * Read the header: tensor names and shapes in stored order, and where the values begin.
 *
 * @throws {WeightsFormatError} for a bad magic, header or length.
 */
export function readWeightsHeader(bytes: Uint8Array): {
  tensors: Array<{ name: string; shape: number[] }>
  dataOffset: number
} {
  if (bytes.length < PREFIX) fail(`weights blob too short (${bytes.length} bytes)`, { length: bytes.length })
  const magic = new TextDecoder().decode(bytes.subarray(0, 8))
  if (magic !== WEIGHTS_MAGIC) fail(`not a Shoal weights blob (magic ${JSON.stringify(magic)})`)
  const { list, dataOffset } = readJsonTensorHeader(bytes, {
    prefix: PREFIX,
    maxBytes: MAX_WEIGHTS_HEADER_BYTES,
    maxTensors: MAX_WEIGHTS_TENSORS,
    what: 'weights',
    fail
  })
  const seen = new Set<string>()
  const tensors = list.map((t: unknown, i) => {
    const { name, shape } = (t ?? {}) as { name?: unknown; shape?: unknown }
    if (typeof name !== 'string' || name.length === 0 || seen.has(name))
      fail(`tensor ${i}: missing or duplicate name`, { index: i })
    if (!isTensorShape(shape, 8)) fail(`tensor '${name}': bad shape ${JSON.stringify(shape)}`, { name })
    seen.add(name)
    return { name, shape }
  })
  return { tensors, dataOffset }
}

/**
 * Decode every tensor, with its shape, in stored order (copies; the input may be released).
 *
 * @throws {WeightsFormatError} for a malformed blob or one whose length does not match its header.
 */
export function decodeWeightsEntries(bytes: Uint8Array): WeightsEntry[] {
  const { tensors, dataOffset } = readWeightsHeader(bytes)
  const total = tensors.reduce((n, t) => n + shapeSize(t.shape), 0)
  if (dataOffset + total * 4 !== bytes.length) {
    fail(`weights blob is ${bytes.length} bytes; its header describes ${dataOffset + total * 4}`, {
      length: bytes.length,
      expected: dataOffset + total * 4
    })
  }
  let offset = bytes.byteOffset + dataOffset
  return tensors.map(({ name, shape }) => {
    const n = shapeSize(shape)
    const data = readFloat32LE(bytes.buffer, offset, n)
    offset += n * 4
    return { name, shape, data }
  })
}

/**
 * Decode to a map of name → values (copies).
 *
 * @throws {WeightsFormatError} for a malformed blob.
 */
export function decodeWeights(bytes: Uint8Array): Map<string, Float32Array> {
  return new Map(decodeWeightsEntries(bytes).map((e) => [e.name, e.data]))
}
