/**
 * Fakes shared by the job-runner specs: digits-like images, a content store in memory (that can
 * be full), and a poll on the event loop.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { Rng, rawCid } from '../../../../src/common/index.js'
import type { ContentStore, Dataset } from '../../../../src/storage/index.js'

/** 28×28 uint8 digits-like images, seeded: class c is a bright band at rows 2c..2c+4, plus noise. */
export function syntheticImages(count: number, seed: number): Dataset {
  const rng = new Rng(seed)
  const features = new Uint8Array(count * 784)
  const labels = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const c = i % 10
    labels[i] = c
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28)
      const band = row >= 2 * c + 2 && row < 2 * c + 6 ? 180 : 0
      features[i * 784 + p] = Math.min(255, band + rng.int(60))
    }
  }
  return { features, labels, count, shape: [28, 28], classes: 10 }
}

/**
 * A content store in memory, as much of one as `ContentWeightStore` uses. While `full()` says so,
 * an add fails as the blockstore does on a full disk (ENOSPC inside `ERR_PUT_FAILED`).
 */
export function memoryContent(
  full: () => boolean = () => false
): Pick<ContentStore, 'add' | 'get' | 'unpin'> {
  const objects = new Map<string, Uint8Array>()
  return {
    add: async (source) => {
      if (full())
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ERR_PUT_FAILED' })
      assert.ok(source instanceof Uint8Array, 'models are stored as one buffer')
      const cid = CID.parse(rawCid(source))
      objects.set(cid.toString(), source.slice())
      return { cid, size: source.byteLength, encrypted: false }
    },
    get: async function* (cid) {
      const bytes = objects.get(cid.toString())
      if (bytes === undefined) throw new Error(`no object ${cid.toString()}`)
      yield bytes.slice()
    },
    unpin: async (cid) => {
      objects.delete(cid.toString())
    }
  }
}

/** Polls a condition on the event loop (no fixed sleep); fails with `what` past the deadline. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  ms = 20_000
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
