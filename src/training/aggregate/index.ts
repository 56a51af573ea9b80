/**
 * What a node does with the models it receives in gossip averaging: validate each update
 * (layout, finite values, norm bound) with a reason a peer can act on, aggregate with a
 * deterministic rule (mean, weighted mean, coordinate-wise trimmed mean or median, Krum /
 * multi-Krum, self-centered clipping (ClippedGossip), bucketing), optionally take DiLoCo's
 * outer Nesterov step from the round's base towards the aggregate (`outerNesterovStep`), and
 * compress what is exchanged (int8 with a per-tensor scale, optionally of a delta against a
 * shared base) in a compact, validated binary format.
 *
 * @example
 * ```ts
 * import { MODELS, compileModel, initParams } from '../graph/index.js'
 * import { aggregate, decodeCompressed, encodeCompressed, validateUpdate, weightsDelta, applyDelta } from './index.js'
 *
 * const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
 * const base = initParams(compiled, 1)
 * const mine = initParams(compiled, 2)
 * const wire = encodeCompressed(weightsDelta(initParams(compiled, 3), base), 'int8', compiled.params)
 * const theirs = applyDelta(base, decodeCompressed(wire))
 * validateUpdate(theirs, compiled, { base, maxNorm: 1e3 }) // throws UpdateRejectedError with a code
 * const next = aggregate('median', [mine, theirs, base])
 * ```
 */
export {
  AGGREGATION_RULES,
  aggregate,
  krum,
  krumSelect,
  mean,
  median,
  trimCount,
  trimmedMean,
  type AggregateOptions,
  type AggregationRule,
  type KrumOptions,
  type KrumSelection,
  type MeanOptions,
  type TrimmedMeanOptions,
  type Weights
} from './rules.js'
export {
  DEFAULT_BUCKET_SIZE,
  buckets,
  bucketing,
  clippedGossip,
  clippingRadius,
  type BucketingOptions,
  type ClippedGossipOptions
} from './robust.js'
export { updateNorm, validateUpdate, type UpdateReference, type ValidateOptions } from './validate.js'
export {
  applyDelta,
  decodeCompressed,
  dequantizeInt8,
  encodeCompressed,
  quantizeInt8,
  readCompressedHeader,
  weightsDelta,
  type CompressedTensorInfo,
  type CompressionKind,
  type QuantizedTensor,
  type QuantizedWeights,
  type ShapeList
} from './compress.js'
export { DILOCO_OUTER, outerNesterovStep, type OuterNesterovOptions, type OuterStep } from './outer.js'
export { AggregationError, UpdateDecodeError, UpdateRejectedError, type UpdateRejectCode } from './errors.js'
export {
  COMPRESSED_MAGIC,
  COMPRESSED_VERSION,
  DEFAULT_TRIM_FRACTION,
  MAX_COMPRESSED_HEADER_BYTES,
  MAX_COMPRESSED_TENSORS
} from './constants.js'
