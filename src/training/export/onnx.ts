/**
 * Export trained weights as a standard ONNX inference model (weights as initializers,
 * provenance in metadata_props), read that metadata back, and run predictions.
 */
import onnxProto from 'onnx-proto'
import * as ort from 'onnxruntime-node'
import { ShapeError, shapeSize } from '../data/index.js'
import { buildInferenceModel, validateSpec, type ModelSpec } from '../graph/index.js'
import { createSession, type Device, type ExecutionProviderName } from '../runtime/index.js'
import { OnnxModelError } from './errors.js'

const { onnx } = onnxProto

/** metadata_props key holding the model spec (JSON), so that a reader can rebuild the graphs. */
export const METADATA_SPEC_KEY = 'shoal.spec'
/** metadata_props key naming the producer format. */
export const METADATA_FORMAT_KEY = 'shoal.format'
/** Value of {@link METADATA_FORMAT_KEY}. */
export const EXPORT_FORMAT = 'shoal-onnx/1'
/** metadata_props key holding the model's input contract ({@link InputContract}, JSON). */
export const METADATA_INPUT_KEY = 'shoal.input'

/**
 * What a model's input `x` expects and what its outputs mean, recorded in every export so a
 * consumer need not guess our preprocessing: float32 samples of `shape` (the batch first),
 * values in `range` as the data comes (pixels / 255 for images); `normalization`, when present,
 * is applied inside the graph (a Sub and a Div at its input), so the caller must not apply it
 * again; `labels` names the classes of `logits`/`probs` in order.
 */
export interface InputContract {
  name: 'x'
  dtype: 'float32'
  /** `[-1, ...spec.input]` (-1: any batch size). */
  shape: number[]
  range: [number, number]
  normalization: { mean: number; std: number; inGraph: true } | null
  labels: string[]
}

/** Options of {@link exportOnnx}. */
export interface ExportOptions {
  /** The standardisation the model was trained with; put into the graph (default none). */
  normalization?: { mean: number; std: number }
  /** Value range of raw inputs (default [0, 1]). */
  range?: [number, number]
  /** Class names (default '0', '1', …). */
  labels?: string[]
}

/** The input contract of a spec exported with `opts`. */
export function inputContract(spec: ModelSpec, opts: ExportOptions = {}): InputContract {
  const n = opts.normalization
  if (n !== undefined && !(Number.isFinite(n.mean) && Number.isFinite(n.std) && n.std > 0)) {
    throw new OnnxModelError('normalization needs a finite mean and a positive std', { ...n })
  }
  const labels = opts.labels ?? Array.from({ length: spec.classes }, (_, i) => String(i))
  if (labels.length !== spec.classes) {
    throw new OnnxModelError(`${labels.length} labels for ${spec.classes} classes`, {
      labels: labels.length,
      classes: spec.classes
    })
  }
  return {
    name: 'x',
    dtype: 'float32',
    shape: [-1, ...spec.input],
    range: opts.range ?? [0, 1],
    normalization: n === undefined ? null : { mean: n.mean, std: n.std, inGraph: true },
    labels
  }
}

/**
 * The input contract stored in a model's metadata, or undefined for a model exported before
 * contracts were recorded (such a model expects standardised inputs).
 *
 * @throws {OnnxModelError} when the metadata holds a malformed contract.
 */
export function readInputContract(metadata: Record<string, string>): InputContract | undefined {
  const raw = metadata[METADATA_INPUT_KEY]
  if (raw === undefined) return undefined
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch {
    v = undefined
  }
  const c = v as Partial<InputContract> | undefined
  const norm = c?.normalization
  if (
    typeof c !== 'object' ||
    c === null ||
    !Array.isArray(c.shape) ||
    !Array.isArray(c.labels) ||
    (norm !== null && (typeof norm?.mean !== 'number' || typeof norm.std !== 'number' || !(norm.std > 0)))
  ) {
    throw new OnnxModelError(`metadata "${METADATA_INPUT_KEY}" is not an input contract`, { input: raw })
  }
  return c as InputContract
}

export type MetadataValue = string | number | boolean | readonly string[]

/**
 * Provenance stored in the model. Strings are stored as they are; numbers and booleans
 * as text; lists (such as `lineage`, e.g. the CIDs of the checkpoints and receipts the
 * weights descend from) as JSON arrays.
 */
export interface ExportMetadata {
  job?: string
  lineage?: readonly string[]
  [key: string]: MetadataValue | undefined
}

function metadataStrings(
  spec: ModelSpec,
  metadata: ExportMetadata,
  input: InputContract
): Record<string, string> {
  const out: Record<string, string> = {
    [METADATA_FORMAT_KEY]: EXPORT_FORMAT,
    [METADATA_SPEC_KEY]: JSON.stringify(spec),
    [METADATA_INPUT_KEY]: JSON.stringify(input)
  }
  for (const key of Object.keys(metadata).sort()) {
    const v = metadata[key]
    if (v === undefined) continue
    if (key === METADATA_FORMAT_KEY || key === METADATA_SPEC_KEY || key === METADATA_INPUT_KEY) {
      throw new OnnxModelError(`metadata key '${key}' is reserved`, { key })
    }
    out[key] = typeof v === 'string' ? v : Array.isArray(v) ? JSON.stringify(v) : String(v)
  }
  return out
}

/**
 * A standalone ONNX inference model (`x` → `logits`, `probs`) with `weights` embedded as
 * initializers and `metadata` in metadata_props (plus the spec under `shoal.spec` and the input
 * contract under `shoal.input`). With `opts.normalization`, the graph standardises its raw
 * input itself, so the model is right on data as it comes (see {@link InputContract}).
 * Deterministic: the same inputs give the same bytes.
 *
 * @throws {ModelSpecError} for an invalid spec.
 * @throws {WeightsMismatchError} when a weight is missing or has the wrong size.
 */
export function exportOnnx(
  spec: ModelSpec,
  weights: ReadonlyMap<string, Float32Array>,
  metadata: ExportMetadata = {},
  opts: ExportOptions = {}
): Uint8Array {
  const clean = validateSpec(spec)
  const input = inputContract(clean, opts)
  return buildInferenceModel(clean, weights, metadataStrings(clean, metadata, input), opts.normalization)
}

/**
 * The metadata_props of an ONNX model.
 *
 * @throws {OnnxModelError} when the bytes are not an ONNX model.
 */
export function readOnnxMetadata(model: Uint8Array): Record<string, string> {
  let decoded: onnxProto.onnx.ModelProto
  try {
    decoded = onnx.ModelProto.decode(model)
  } catch (err) {
    throw new OnnxModelError(`not an ONNX model: ${(err as Error).message}`, {}, { cause: err })
  }
  const out: Record<string, string> = {}
  for (const p of decoded.metadataProps) if (typeof p.key === 'string') out[p.key] = p.value ?? ''
  return out
}

/** The lineage list stored by {@link exportOnnx} (empty when absent). */
export function readLineage(metadata: Record<string, string>): string[] {
  const raw = metadata.lineage
  if (raw === undefined) return []
  try {
    const v: unknown = JSON.parse(raw)
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[]
  } catch {
    // fall through
  }
  throw new OnnxModelError('metadata "lineage" is not a JSON list of strings', { lineage: raw })
}

export interface Prediction {
  /** Row-major `[count, classes]`. */
  logits: Float32Array
  /** Softmax of the logits, `[count, classes]` (computed in float64, stored as float32). */
  probs: Float32Array
  /** Argmax class of each sample. */
  labels: Int32Array
  count: number
  classes: number
}

export interface PredictorOptions {
  /** Default 'cpu'. */
  device?: Device
  intraOpNumThreads?: number
  signal?: AbortSignal
}

function dims(meta: ort.InferenceSession.ValueMetadata | undefined): Array<number | string> | undefined {
  return meta !== undefined && meta.isTensor ? [...meta.shape] : undefined
}

/** Runs an exported model (one with embedded weights, the single input `x` and an output `logits`). */
export class Predictor {
  readonly inputShape: readonly number[]
  readonly classes: number
  readonly executionProvider: ExecutionProviderName
  private readonly session: ort.InferenceSession

  private constructor(
    session: ort.InferenceSession,
    inputShape: number[],
    classes: number,
    provider: ExecutionProviderName
  ) {
    this.session = session
    this.inputShape = inputShape
    this.classes = classes
    this.executionProvider = provider
  }

  /**
   * Load a model.
   *
   * @throws {OnnxModelError} when it is not a model with input `x` [B, ...] and output `logits` [B, classes].
   * @throws {ExecutionProviderError} when an explicitly requested GPU provider is unavailable.
   */
  static async create(model: Uint8Array, opts: PredictorOptions = {}): Promise<Predictor> {
    opts.signal?.throwIfAborted()
    let created: { session: ort.InferenceSession; provider: ExecutionProviderName }
    try {
      created = await createSession(model, {
        device: opts.device ?? 'cpu',
        ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {})
      })
    } catch (err) {
      if (err instanceof Error && 'code' in err) throw err
      throw new OnnxModelError(`cannot load ONNX model: ${(err as Error).message}`, {}, { cause: err })
    }
    const { session, provider } = created
    const x = dims(session.inputMetadata.find((m) => m.name === 'x'))
    const logits = dims(session.outputMetadata.find((m) => m.name === 'logits'))
    const sample = x?.slice(1)
    const classes = logits?.[1]
    if (
      session.inputNames.length !== 1 ||
      sample === undefined ||
      !sample.every((d): d is number => typeof d === 'number') ||
      typeof classes !== 'number'
    ) {
      await session.release()
      throw new OnnxModelError(
        'model must have the single input x [B, ...] and an output logits [B, classes]',
        {
          inputs: [...session.inputNames],
          outputs: [...session.outputNames]
        }
      )
    }
    return new Predictor(session, sample, classes, provider)
  }

  /**
   * Predict `count` samples given row-major in `x`.
   *
   * @throws {ShapeError} when `x` does not hold `count` samples of `inputShape`.
   */
  async predict(x: Float32Array, count: number, opts: { signal?: AbortSignal } = {}): Promise<Prediction> {
    opts.signal?.throwIfAborted()
    const expected = [count, ...this.inputShape]
    if (!(x instanceof Float32Array) || !(count >= 1) || x.length !== count * shapeSize(this.inputShape)) {
      throw new ShapeError(`x must be a Float32Array of shape [${expected.join(', ')}]`, {
        expected,
        got: x instanceof Float32Array ? x.length : Object.prototype.toString.call(x)
      })
    }
    const out = await this.session.run({ x: new ort.Tensor('float32', x, expected) }, ['logits'])
    const logits = out.logits!.data as Float32Array
    const C = this.classes
    const probs = new Float32Array(count * C)
    const labels = new Int32Array(count)
    for (let i = 0; i < count; i++) {
      let best = 0
      for (let c = 1; c < C; c++) if (logits[i * C + c]! > logits[i * C + best]!) best = c
      labels[i] = best
      const max = logits[i * C + best]!
      let sum = 0
      for (let c = 0; c < C; c++) sum += Math.exp(logits[i * C + c]! - max)
      for (let c = 0; c < C; c++) probs[i * C + c] = Math.exp(logits[i * C + c]! - max) / sum
    }
    return { logits, probs, labels, count, classes: C }
  }

  /** Release the session. */
  async close(): Promise<void> {
    await this.session.release()
  }
}

/** One-shot prediction with an exported model (loads it, predicts, releases it). */
export async function predict(
  model: Uint8Array,
  x: Float32Array,
  count: number,
  opts: PredictorOptions = {}
): Promise<Prediction> {
  const p = await Predictor.create(model, opts)
  try {
    return await p.predict(x, count, opts.signal !== undefined ? { signal: opts.signal } : {})
  } finally {
    await p.close()
  }
}
