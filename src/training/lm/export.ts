/**
 * ONNX export of a trained GPT: the inference graph with the weights embedded, and metadata
 * that tells any ONNX runtime how to use it (spec, tokenizer, input contract).
 */
import { METADATA_FORMAT_KEY, METADATA_SPEC_KEY, EXPORT_FORMAT, OnnxModelError } from '../export/index.js'
import { BYTE_TOKENIZER } from '../text/index.js'
import { buildGptInference } from './model.js'
import { validateGptSpec, type GptSpec } from './spec.js'

/** metadata_props key of the tokenizer (`{ kind: 'bytes', vocab: 256 }`, JSON). */
export const METADATA_TOKENIZER_KEY = 'shoal.tokenizer'
/** metadata_props key of a language model's input contract ({@link LmInputContract}, JSON). */
export const METADATA_LM_INPUT_KEY = 'shoal.lm.input'

/**
 * How to call an exported GPT: `x` int64 [batch, context] of token ids (UTF-8 bytes), a shorter
 * text right-padded with any id (attention is causal, so padding never changes earlier rows);
 * `logits` float32 [batch, context, vocab], where row t scores the token after x[0..t].
 */
export interface LmInputContract {
  name: 'x'
  dtype: 'int64'
  shape: [-1, number]
  padding: 'right'
  output: 'logits'
}

/**
 * A standalone ONNX model (`x` → `logits`) of a GPT with `weights` embedded, opset 17, runnable
 * by any ONNX runtime (onnxruntime-web included). Metadata: `shoal.format`, `shoal.spec`,
 * `shoal.tokenizer`, `shoal.lm.input`, then the caller's `metadata` (strings).
 *
 * @throws {GptSpecError} for an impossible spec; WeightsMismatchError when weights do not fit it;
 *   OnnxModelError when `metadata` uses a reserved key.
 */
export function exportGptOnnx(
  spec: GptSpec,
  weights: ReadonlyMap<string, Float32Array>,
  metadata: Record<string, string> = {}
): Uint8Array {
  const s = validateGptSpec(spec)
  const input: LmInputContract = {
    name: 'x',
    dtype: 'int64',
    shape: [-1, s.context],
    padding: 'right',
    output: 'logits'
  }
  const reserved = [METADATA_FORMAT_KEY, METADATA_SPEC_KEY, METADATA_TOKENIZER_KEY, METADATA_LM_INPUT_KEY]
  for (const key of Object.keys(metadata)) {
    if (reserved.includes(key)) throw new OnnxModelError(`metadata key '${key}' is reserved`, { key })
  }
  return buildGptInference(s, weights, {
    [METADATA_FORMAT_KEY]: EXPORT_FORMAT,
    [METADATA_SPEC_KEY]: JSON.stringify(s),
    [METADATA_TOKENIZER_KEY]: JSON.stringify(BYTE_TOKENIZER),
    [METADATA_LM_INPUT_KEY]: JSON.stringify(input),
    ...metadata
  })
}
