/**
 * The `gpt` model spec: a decoder-only transformer (GPT-2 layout, pre-norm blocks) over a
 * token vocabulary, its validation and its parameter tensors.
 */
import { GptSpecError } from './errors.js'

export interface GptSpec {
  type: 'gpt'
  name: string
  /** Tokens in the vocabulary (256 for bytes). */
  vocab: number
  /** Context length: positions the model sees (and is trained on) at once. */
  context: number
  layers: number
  heads: number
  /** Width of the residual stream; must be divisible by `heads`. */
  dModel: number
  /** Hidden width of each block's MLP (default 4 · dModel). */
  mlp?: number
  /** Output projection tied to the token embedding (default true). */
  tied?: boolean
}

/** The default: byte vocabulary, 4 layers, d 128, 4 heads, context 128 (≈ 0.8 M parameters). */
export const GPT_DEFAULT: GptSpec = {
  type: 'gpt',
  name: 'gpt-bytes',
  vocab: 256,
  context: 128,
  layers: 4,
  heads: 4,
  dModel: 128
}

/** Upper bounds that keep a spec from a peer within what a node can build. */
export const GPT_LIMITS = {
  vocab: 65536,
  context: 4096,
  layers: 64,
  heads: 64,
  dModel: 4096,
  mlp: 16384
} as const

export interface GptParam {
  name: string
  shape: number[]
  /** `normal`: N(0, std²); `zeros`; `ones` (LayerNorm gains). */
  init: 'normal' | 'zeros' | 'ones'
  std?: number
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/**
 * Check an untrusted GPT spec; returns a clean copy with defaults filled in.
 *
 * @throws {GptSpecError} GPT_SPEC_INVALID naming the field: not an integer in range, dModel not
 *   divisible by heads, an unknown key.
 */
export function validateGptSpec(spec: unknown): Required<GptSpec> {
  if (!isRecord(spec)) throw new GptSpecError('gpt spec must be an object')
  if (spec.type !== 'gpt')
    throw new GptSpecError(`gpt spec: type must be 'gpt', got ${JSON.stringify(spec.type)}`, {
      field: 'type'
    })
  const known = ['type', 'name', 'vocab', 'context', 'layers', 'heads', 'dModel', 'mlp', 'tied']
  for (const k of Object.keys(spec)) {
    if (!known.includes(k)) throw new GptSpecError(`gpt spec: unknown field '${k}'`, { field: k })
  }
  if (typeof spec.name !== 'string' || spec.name.length === 0)
    throw new GptSpecError('gpt spec: name must be a non-empty string', { field: 'name' })
  const int = (field: keyof typeof GPT_LIMITS, min: number): number => {
    const v = spec[field]
    const max = GPT_LIMITS[field]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new GptSpecError(
        `gpt spec: ${field} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`,
        {
          field,
          value: v,
          min,
          max
        }
      )
    }
    return v
  }
  const vocab = int('vocab', 2)
  const context = int('context', 1)
  const layers = int('layers', 1)
  const heads = int('heads', 1)
  const dModel = int('dModel', 1)
  if (dModel % heads !== 0) {
    throw new GptSpecError(`gpt spec: dModel ${dModel} is not divisible by ${heads} heads`, {
      field: 'dModel',
      dModel,
      heads
    })
  }
  const mlp = spec.mlp === undefined ? 4 * dModel : int('mlp', 1)
  if (spec.tied !== undefined && typeof spec.tied !== 'boolean')
    throw new GptSpecError('gpt spec: tied must be a boolean', { field: 'tied' })
  return { type: 'gpt', name: spec.name, vocab, context, layers, heads, dModel, mlp, tied: spec.tied ?? true }
}

/**
 * The parameter tensors of a (valid) spec, in graph input order, with GPT-2's initialisation:
 * N(0, 0.02²) for weights and embeddings, the residual projections scaled by 1/√(2·layers).
 */
export function gptParams(spec: Required<GptSpec>): GptParam[] {
  const { vocab: v, context: c, dModel: d, mlp: m, layers } = spec
  const std = 0.02
  const resid = std / Math.sqrt(2 * layers)
  const out: GptParam[] = [
    { name: 'tok.weight', shape: [v, d], init: 'normal', std },
    { name: 'pos.weight', shape: [c, d], init: 'normal', std: std / 2 }
  ]
  for (let l = 0; l < layers; l++) {
    const p = `h${l}.`
    out.push(
      { name: `${p}ln1.gain`, shape: [d], init: 'ones' },
      { name: `${p}ln1.bias`, shape: [d], init: 'zeros' },
      ...['q', 'k', 'v'].flatMap((n): GptParam[] => [
        { name: `${p}attn.${n}.weight`, shape: [d, d], init: 'normal', std },
        { name: `${p}attn.${n}.bias`, shape: [d], init: 'zeros' }
      ]),
      { name: `${p}attn.out.weight`, shape: [d, d], init: 'normal', std: resid },
      { name: `${p}attn.out.bias`, shape: [d], init: 'zeros' },
      { name: `${p}ln2.gain`, shape: [d], init: 'ones' },
      { name: `${p}ln2.bias`, shape: [d], init: 'zeros' },
      { name: `${p}mlp.fc.weight`, shape: [d, m], init: 'normal', std },
      { name: `${p}mlp.fc.bias`, shape: [m], init: 'zeros' },
      { name: `${p}mlp.proj.weight`, shape: [m, d], init: 'normal', std: resid },
      { name: `${p}mlp.proj.bias`, shape: [d], init: 'zeros' }
    )
  }
  out.push({ name: 'lnf.gain', shape: [d], init: 'ones' }, { name: 'lnf.bias', shape: [d], init: 'zeros' })
  if (!spec.tied) out.push({ name: 'head.weight', shape: [d, v], init: 'normal', std })
  return out
}

/** Number of trainable values of a spec. */
export function gptParamCount(spec: GptSpec): number {
  return gptParams(validateGptSpec(spec)).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0)
}
