/**
 * Export and exchange of trained models: a standard ONNX inference model with embedded
 * weights and provenance metadata (readable by any ONNX runtime, e.g. onnxruntime-web), a
 * predictor for such models, and a deterministic binary format for named weight tensors
 * used by checkpoints and gossip.
 *
 * @example
 * ```ts
 * import { MODELS, compileModel, initParams } from '../graph/index.js'
 * import { exportOnnx, predict, encodeWeights, decodeWeights } from './index.js'
 * const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
 * const weights = initParams(compiled, 1)
 * const model = exportOnnx(MODELS.mlp, weights, { job: 'job-1', lineage: ['bafy…'] })
 * const { labels } = await predict(model, new Float32Array(784), 1)
 * const same = decodeWeights(encodeWeights(weights, compiled.params))
 * ```
 */
export {
  exportOnnx,
  readOnnxMetadata,
  readLineage,
  predict,
  Predictor,
  METADATA_SPEC_KEY,
  METADATA_FORMAT_KEY,
  EXPORT_FORMAT,
  METADATA_INPUT_KEY,
  inputContract,
  readInputContract,
  type InputContract,
  type ExportOptions,
  type ExportMetadata,
  type MetadataValue,
  type Prediction,
  type PredictorOptions
} from './onnx.js'
export {
  encodeWeights,
  decodeWeights,
  decodeWeightsEntries,
  readWeightsHeader,
  isTensorShape,
  readFloat32LE,
  writeFloat32LE,
  readJsonTensorHeader,
  writeJsonTensorHeader,
  WEIGHTS_MAGIC,
  MAX_WEIGHTS_HEADER_BYTES,
  MAX_WEIGHTS_TENSORS,
  type WeightsEntry,
  type ShapeSource
} from './weights.js'
export { extractWeights } from './import.js'
export { WeightsFormatError, OnnxModelError } from './errors.js'
