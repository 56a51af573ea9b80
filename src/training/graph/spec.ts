/**
 * Model specs: a list of layers over a per-sample input shape, their validation and
 * shape inference, and the parameter tensors each layer owns.
 */
import { ModelSpecError } from './errors.js'
import { windowOut } from './ops.js'

export type LayerSpec =
  | { type: 'dense'; units: number }
  | { type: 'relu' }
  | { type: 'conv'; filters: number; kernel: number; stride?: number; padding?: number }
  | { type: 'maxpool'; size: number; stride?: number }
  | { type: 'flatten' }

export interface ModelSpec {
  name: string
  /** Per-sample input shape, e.g. [784] or [1, 28, 28] (channels, height, width). */
  input: number[]
  layers: LayerSpec[]
  classes: number
}

export interface TensorInfo {
  name: string
  shape: number[]
}

export interface ParamInfo extends TensorInfo {
  fanIn: number
  init: 'he' | 'zeros'
}

/** Built-in models for 28×28 digits. */
export const MODELS: { mlp: ModelSpec; cnn: ModelSpec } = {
  mlp: {
    name: 'mlp',
    input: [784],
    layers: [{ type: 'dense', units: 128 }, { type: 'relu' }, { type: 'dense', units: 10 }],
    classes: 10
  },
  cnn: {
    name: 'cnn',
    input: [1, 28, 28],
    layers: [
      { type: 'conv', filters: 8, kernel: 5 },
      { type: 'relu' },
      { type: 'maxpool', size: 2 },
      { type: 'conv', filters: 16, kernel: 5 },
      { type: 'relu' },
      { type: 'maxpool', size: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 10 }
    ],
    classes: 10
  }
}

const LAYER_TYPES = ['dense', 'relu', 'conv', 'maxpool', 'flatten'] as const

function fmt(shape: readonly number[]): string {
  return `[${shape.join(',')}]`
}

function isPosInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** Check one integer field of a layer; returns it (or undefined when optional and absent). */
function intField(
  layer: Record<string, unknown>,
  index: number,
  key: string,
  opts: { optional?: boolean; min?: number } = {}
): number | undefined {
  const v = layer[key]
  if (v === undefined && opts.optional === true) return undefined
  const min = opts.min ?? 1
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new ModelSpecError(
      `layer ${index} (${String(layer.type)}): '${key}' must be an integer ≥ ${min}, got ${JSON.stringify(v)}`,
      { layer: index, type: layer.type, field: key }
    )
  }
  return v
}

/** Output shape of one layer, or a ModelSpecError naming the layer and the shapes. */
function layerOutput(layer: LayerSpec, index: number, input: readonly number[]): number[] {
  const fail = (msg: string): never => {
    throw new ModelSpecError(`layer ${index} (${layer.type}): ${msg}`, {
      layer: index,
      type: layer.type,
      inputShape: [...input]
    })
  }
  switch (layer.type) {
    case 'dense':
      if (input.length !== 1) fail(`expects input [N] but got ${fmt(input)}`)
      return [layer.units]
    case 'relu':
      return [...input]
    case 'flatten':
      return [input.reduce((a, b) => a * b, 1)]
    case 'conv': {
      if (input.length !== 3) fail(`expects input [C,H,W] but got ${fmt(input)}`)
      const [, h, w] = input as [number, number, number]
      const s = layer.stride ?? 1
      const p = layer.padding ?? 0
      if (layer.kernel > h + 2 * p || layer.kernel > w + 2 * p) {
        fail(`kernel ${layer.kernel}x${layer.kernel} larger than input ${fmt(input)} with padding ${p}`)
      }
      return [layer.filters, windowOut(h, layer.kernel, s, p, p), windowOut(w, layer.kernel, s, p, p)]
    }
    case 'maxpool': {
      if (input.length !== 3) fail(`expects input [C,H,W] but got ${fmt(input)}`)
      const [c, h, w] = input as [number, number, number]
      const s = layer.stride ?? layer.size
      if (layer.size > h || layer.size > w)
        fail(`window ${layer.size}x${layer.size} larger than input ${fmt(input)}`)
      return [c, windowOut(h, layer.size, s, 0, 0), windowOut(w, layer.size, s, 0, 0)]
    }
  }
}

/** Per-layer output shapes (without the batch dim). Thrown: ModelSpecError when shapes do not fit. */
export function inferShapes(spec: ModelSpec): number[][] {
  const shapes: number[][] = []
  let cur: readonly number[] = spec.input
  spec.layers.forEach((layer, i) => {
    cur = layerOutput(layer, i, cur)
    shapes.push([...cur])
  })
  return shapes
}

/**
 * Check an untrusted model spec: field types and ranges, known layer types, and that each
 * layer's input shape fits and the last output is [classes]. Returns a clean copy.
 *
 * Thrown: ModelSpecError (code MODEL_SPEC_INVALID) naming the layer index, type and shapes.
 */
export function validateSpec(spec: unknown): ModelSpec {
  if (!isRecord(spec)) throw new ModelSpecError('model spec must be an object')
  const { name, input, layers, classes } = spec
  if (typeof name !== 'string' || name.length === 0)
    throw new ModelSpecError('model spec: name must be a non-empty string')
  if (!Array.isArray(input) || input.length === 0 || !input.every(isPosInt)) {
    throw new ModelSpecError(
      `model spec: input must be a non-empty list of positive integers, got ${JSON.stringify(input)}`
    )
  }
  if (!isPosInt(classes) || classes < 2) {
    throw new ModelSpecError(`model spec: classes must be an integer ≥ 2, got ${JSON.stringify(classes)}`)
  }
  if (!Array.isArray(layers) || layers.length === 0)
    throw new ModelSpecError('model spec: layers must be a non-empty list')
  const clean: LayerSpec[] = layers.map((raw: unknown, i): LayerSpec => {
    if (!isRecord(raw)) throw new ModelSpecError(`layer ${i}: must be an object`, { layer: i })
    const type = raw.type
    switch (type) {
      case 'dense':
        return { type, units: intField(raw, i, 'units')! }
      case 'relu':
      case 'flatten':
        return { type }
      case 'conv': {
        const l: LayerSpec = {
          type,
          filters: intField(raw, i, 'filters')!,
          kernel: intField(raw, i, 'kernel')!
        }
        const stride = intField(raw, i, 'stride', { optional: true })
        const padding = intField(raw, i, 'padding', { optional: true, min: 0 })
        if (stride !== undefined) l.stride = stride
        if (padding !== undefined) l.padding = padding
        return l
      }
      case 'maxpool': {
        const l: LayerSpec = { type, size: intField(raw, i, 'size')! }
        const stride = intField(raw, i, 'stride', { optional: true })
        if (stride !== undefined) l.stride = stride
        return l
      }
      default:
        throw new ModelSpecError(
          `layer ${i}: unknown layer type ${JSON.stringify(type)} (expected one of ${LAYER_TYPES.join(', ')})`,
          { layer: i, type }
        )
    }
  })
  const out: ModelSpec = { name, input: [...(input as number[])], layers: clean, classes }
  const shapes = inferShapes(out)
  const last = shapes[shapes.length - 1]!
  if (last.length !== 1 || last[0] !== classes) {
    const i = clean.length - 1
    throw new ModelSpecError(
      `layer ${i} (${clean[i]!.type}): model output ${fmt(last)} must be [${classes}] (one logit per class)`,
      { layer: i, type: clean[i]!.type, outputShape: last, classes }
    )
  }
  return out
}

/** The parameter tensors of a (valid) spec, in graph input order. */
export function paramsOf(spec: ModelSpec): ParamInfo[] {
  const params: ParamInfo[] = []
  let cur: readonly number[] = spec.input
  spec.layers.forEach((layer, i) => {
    if (layer.type === 'dense') {
      const fanIn = cur[0]!
      params.push({ name: `dense${i}.weight`, shape: [fanIn, layer.units], fanIn, init: 'he' })
      params.push({ name: `dense${i}.bias`, shape: [layer.units], fanIn, init: 'zeros' })
    } else if (layer.type === 'conv') {
      const c = cur[0]!
      const fanIn = c * layer.kernel * layer.kernel
      params.push({
        name: `conv${i}.weight`,
        shape: [layer.filters, c, layer.kernel, layer.kernel],
        fanIn,
        init: 'he'
      })
      params.push({ name: `conv${i}.bias`, shape: [layer.filters], fanIn, init: 'zeros' })
    }
    cur = layerOutput(layer, i, cur)
  })
  return params
}
