/** Pixels (0..255) are multiplied by this to bring them to [0, 1]. */
export const DEFAULT_PIXEL_SCALE = 1 / 255

/** Mean and standard deviation of MNIST pixels after scaling to [0, 1] (the usual constants). */
export const MNIST_MEAN = 0.1307
export const MNIST_STD = 0.3081

/**
 * The standardisation every image model in Shoal is trained with (jobs and local training
 * alike): pixels / 255, then `(x − MNIST_MEAN) / MNIST_STD`. Exports put it into the graph.
 */
export const IMAGE_NORMALIZATION: Readonly<{ mean: number; std: number }> = Object.freeze({
  mean: MNIST_MEAN,
  std: MNIST_STD
})

/** Default mini-batch size. */
export const DEFAULT_BATCH_SIZE = 64

/** Samples are shuffled each epoch unless told otherwise. */
export const DEFAULT_SHUFFLE = true

/** The final partial batch of an epoch is kept (a smaller batch) unless `dropLast` is set. */
export const DEFAULT_DROP_LAST = false
