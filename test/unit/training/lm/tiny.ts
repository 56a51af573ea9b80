import type { GptSpec } from '../../../../src/training/lm/index.js'

/** The tests' GPT: 1 layer, d 16, 2 heads, context 16, byte vocabulary. */
export const TINY: GptSpec = {
  type: 'gpt',
  name: 'tiny',
  vocab: 256,
  context: 16,
  layers: 1,
  heads: 2,
  dModel: 16
}
