/**
 * The node's job data preparation (`imageJobData`): image jobs (the `mnist` package, IDX and
 * CSV digits) get pixels in [0, 1] standardised with `IMAGE_NORMALIZATION` (exports put the same
 * step into the graph), evaluated on the package's held-out 2,000 digits (seed 42), which every
 * node can load; `gpt` jobs get the text preparation of text.ts. A job whose model and dataset
 * are of different kinds is JOB_DATA_MISMATCH.
 */
import {
  isTextDataset,
  loadMnist,
  toLabeledImages,
  trainTestSplit,
  type Dataset,
  type LabeledImages
} from '../../storage/index.js'
import { IMAGE_NORMALIZATION, fromImages, isGptModel, type JobSpec } from '../../training/index.js'
import { JobDataError, type JobDataPrep } from './data.js'
import { textJobData } from './text.js'

let heldOutDigits: Promise<LabeledImages> | undefined

/** Image tensors of a decrypted shard for a classifier whose input is `input`. */
function imageTensors(ds: Dataset, spec: JobSpec, input: number[]): ReturnType<typeof fromImages> {
  if (isTextDataset(ds)) {
    throw new JobDataError(
      'JOB_DATA_MISMATCH',
      `job model '${spec.model.name}' is a classifier, but dataset ${spec.dataset} is text: a text dataset trains a gpt model`,
      { model: spec.model.name, dataset: spec.dataset, kind: 'text' }
    )
  }
  return fromImages(toLabeledImages(ds), { ...IMAGE_NORMALIZATION, shape: input })
}

export const imageJobData: JobDataPrep = {
  tensors: (ds, spec) =>
    isGptModel(spec.model) ? textJobData.tensors(ds, spec) : imageTensors(ds, spec, spec.model.input),
  heldOut: async (spec) => {
    if (isGptModel(spec.model)) return textJobData.heldOut(spec)
    heldOutDigits ??= loadMnist().then((all) => trainTestSplit(all, { seed: 42 }).test)
    try {
      return fromImages(await heldOutDigits, { ...IMAGE_NORMALIZATION, shape: spec.model.input })
    } catch {
      return undefined // a model whose input is not 28×28 images has no public test set yet
    }
  }
}
