/**
 * The data preparation of image jobs (the `mnist` package, IDX and CSV digits): pixels in
 * [0, 1] standardised with `IMAGE_NORMALIZATION` (exports put the same step into the graph),
 * evaluated on the package's held-out 2,000 digits (seed 42), which every node can load.
 */
import { loadMnist, toLabeledImages, trainTestSplit, type LabeledImages } from '../../storage/index.js'
import { IMAGE_NORMALIZATION, fromImages, isGptModel, type JobSpec } from '../../training/index.js'
import type { JobDataPrep } from './data.js'
import { JobRequestError } from './errors.js'

/** The input shape of an image job's model. */
function imageShape(spec: JobSpec): number[] {
  if (isGptModel(spec.model)) {
    throw new JobRequestError(
      'JOB_NO_DATA',
      `job model '${spec.model.name}' is a language model, not an image model`,
      {}
    )
  }
  return spec.model.input
}

let heldOutDigits: Promise<LabeledImages> | undefined

export const imageJobData: JobDataPrep = {
  tensors: (ds, spec) => fromImages(toLabeledImages(ds), { ...IMAGE_NORMALIZATION, shape: imageShape(spec) }),
  heldOut: async (spec) => {
    heldOutDigits ??= loadMnist().then((all) => trainTestSplit(all, { seed: 42 }).test)
    try {
      return fromImages(await heldOutDigits, { ...IMAGE_NORMALIZATION, shape: imageShape(spec) })
    } catch {
      return undefined // a model whose input is not 28×28 images has no public test set yet
    }
  }
}
