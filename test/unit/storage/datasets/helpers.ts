import { fileURLToPath } from 'node:url'
import { Rng } from '../../../../src/common/rng.js'
import type { Dataset } from '../../../../src/storage/datasets/index.js'

/** Path of a fixture file under test/fixtures/datasets. */
export const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../../fixtures/datasets/${name}`, import.meta.url))

/** A seeded synthetic dataset: `count` samples of `shape`, labels uniform over `classes`. */
export function synthetic(
  count: number,
  opts: { classes?: number; shape?: number[]; float?: boolean; seed?: number } = {}
): Dataset {
  const classes = opts.classes ?? 10
  const shape = opts.shape ?? [3, 2]
  const rng = new Rng(opts.seed ?? 1)
  const size = shape.reduce((a, b) => a * b, 1)
  const features = opts.float ? new Float32Array(count * size) : new Uint8Array(count * size)
  for (let i = 0; i < features.length; i++)
    features[i] = opts.float ? Math.fround(rng.gaussian()) : rng.int(256)
  const labels = new Uint8Array(count)
  for (let i = 0; i < count; i++) labels[i] = rng.int(classes)
  return { features, labels, count, shape, classes }
}

/** Asserts-free check that `shards` partition 0..count-1: returns a problem or undefined. */
export function partitionProblem(count: number, shards: number[][]): string | undefined {
  const seen = new Uint8Array(count)
  for (const [s, shard] of shards.entries()) {
    for (const j of shard) {
      if (!Number.isInteger(j) || j < 0 || j >= count) return `shard ${s}: index ${j} out of range`
      if (seen[j]) return `index ${j} appears twice`
      seen[j] = 1
    }
  }
  const missing = seen.indexOf(0)
  return missing >= 0 ? `index ${missing} is in no shard` : undefined
}
