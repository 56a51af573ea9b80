/**
 * The data preparation of language-model (`gpt`) jobs on text datasets: a decrypted text shard
 * (storage's text shards: byte tokens labelled by role) gives its training tokens as
 * `{ tokens }`, and the held-out shard, which the owner grants with the others, is kept apart
 * as the held-out text (it yields no training tokens, so nobody trains on it).
 */
import { isTextDataset, textOf, type Dataset } from '../../storage/index.js'
import { BYTE_VOCAB, isGptModel, type JobSpec, type TextShard } from '../../training/index.js'
import { JobDataError, type JobDataPrep } from './data.js'

/** The held-out text seen among the shards prepared for a job spec (one per spec object). */
const heldOutBySpec = new WeakMap<JobSpec, Uint8Array>()

/** `spec`'s model as a byte-vocabulary GPT, or JOB_DATA_MISMATCH. */
function requireLm(spec: JobSpec): void {
  if (!isGptModel(spec.model)) {
    throw new JobDataError(
      'JOB_DATA_MISMATCH',
      `job model '${spec.model.name}' is a classifier, but dataset ${spec.dataset} is text: a text dataset trains a gpt model`,
      { model: spec.model.name, dataset: spec.dataset, kind: 'text' }
    )
  }
  if (spec.model.vocab !== BYTE_VOCAB) {
    throw new JobDataError(
      'JOB_DATA_MISMATCH',
      `job model '${spec.model.name}' has a vocabulary of ${spec.model.vocab}; the text is byte tokens (${BYTE_VOCAB})`,
      { model: spec.model.name, vocab: spec.model.vocab, tokenizer: 'bytes' }
    )
  }
}

export const textJobData: JobDataPrep = {
  tensors: (ds: Dataset, spec: JobSpec): TextShard => {
    requireLm(spec)
    if (!isTextDataset(ds)) {
      throw new JobDataError(
        'JOB_DATA_MISMATCH',
        `job model '${spec.model.name}' is a language model, but dataset ${spec.dataset} is not text ([${ds.shape.join(', ')}] samples, ${ds.classes} classes)`,
        { model: spec.model.name, dataset: spec.dataset, kind: 'tensors' }
      )
    }
    const { train, heldOut } = textOf(ds)
    if (heldOut.length > 0) {
      const seen = heldOutBySpec.get(spec)
      heldOutBySpec.set(spec, seen === undefined ? heldOut : concat(seen, heldOut))
    }
    return { tokens: train }
  },
  heldOut: async (spec: JobSpec): Promise<TextShard | undefined> => {
    const tokens = heldOutBySpec.get(spec)
    heldOutBySpec.delete(spec)
    return tokens === undefined ? undefined : { tokens }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}
