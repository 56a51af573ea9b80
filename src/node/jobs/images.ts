/**
 * The data preparation of image jobs (the `mnist` package, IDX and CSV digits): pixels in
 * [0, 1] standardised with `IMAGE_NORMALIZATION` (exports put the same step into the graph),
 * evaluated on the package's held-out 2,000 digits (seed 42), which every node can load.
 */
import { loadMnist, toLabeledImages, trainTestSplit, type LabeledImages } from '../../storage/index.js'
import { IMAGE_NORMALIZATION, fromImages } from '../../training/index.js'
import type { JobDataPrep } from './data.js'

let heldOutDigits: Promise<LabeledImages> | undefined

export const imageJobData: JobDataPrep = {
  tensors: (ds, spec) => fromImages(toLabeledImages(ds), { ...IMAGE_NORMALIZATION, shape: spec.model.input }),
  heldOut: async (spec) => {
    heldOutDigits ??= loadMnist().then((all) => trainTestSplit(all, { seed: 42 }).test)
    try {
      return fromImages(await heldOutDigits, { ...IMAGE_NORMALIZATION, shape: spec.model.input })
    } catch {
      return undefined // a model whose input is not 28×28 images has no public test set yet
    }
  }
}
