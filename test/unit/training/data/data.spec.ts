import assert from 'node:assert/strict'
import {
  BatchLoader,
  checkLabels,
  featureStats,
  fromImages,
  fromTensors,
  reshapeDataset,
  selectSamples,
  type ImageSet
} from '../../../../src/training/data/index.js'

function images(count: number): ImageSet {
  const px = new Uint8Array(count * 784)
  for (let i = 0; i < px.length; i++) px[i] = (i * 7) % 256
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10)
  return { images: px, labels, count, rows: 28, cols: 28 }
}

/** Data set whose sample i is filled with the value i (so batches can be traced back to samples). */
function indexed(count: number, size = 3): ReturnType<typeof fromTensors> {
  const x = new Float32Array(count * size)
  for (let i = 0; i < count; i++) x.fill(i, i * size, (i + 1) * size)
  return fromTensors(
    x,
    Int32Array.from({ length: count }, (_, i) => i),
    [size]
  )
}

describe('training/data: data sets', () => {
  it('normalises pixels to [0, 1] and reshapes to the model input', () => {
    const set = images(3)
    const flat = fromImages(set)
    assert.deepEqual(flat.sampleShape, [784])
    assert.equal(flat.count, 3)
    for (const i of [0, 1, 100, 2351]) assert.equal(flat.x[i], Math.fround(set.images[i]! / 255))
    const chw = fromImages(set, { shape: [1, 28, 28] })
    assert.deepEqual(chw.sampleShape, [1, 28, 28])
    assert.deepEqual(chw.x, flat.x)
    assert.equal(chw.y, set.labels)
  })

  it('applies mean/std normalisation', () => {
    const set = images(2)
    const d = fromImages(set, { mean: 0.5, std: 0.25 })
    for (const i of [0, 5, 999]) assert.equal(d.x[i], Math.fround((set.images[i]! / 255 - 0.5) / 0.25))
    assert.throws(() => fromImages(set, { std: 0 }), { code: 'INVALID_DATA_OPTIONS' })
  })

  it('rejects shapes that do not fit, naming the expected shape', () => {
    assert.throws(
      () => fromImages(images(1), { shape: [1, 27, 28] }),
      (err: { code: string; fields: { expected: number[] } }) =>
        err.code === 'SHAPE_MISMATCH' && err.fields.expected.join() === '28,28'
    )
    assert.throws(() => fromTensors(new Float32Array(10), new Uint8Array(3), [3]), { code: 'SHAPE_MISMATCH' })
    assert.throws(() => fromTensors(new Float32Array(9), new Uint8Array(3), [0, 3]), {
      code: 'SHAPE_MISMATCH'
    })
    const d = fromTensors(new Float32Array(8), new Uint8Array(2), [4])
    assert.equal(reshapeDataset(d, [2, 2]).x, d.x)
    assert.throws(() => reshapeDataset(d, [3]), { code: 'SHAPE_MISMATCH' })
  })

  it('selects samples, computes stats and checks label ranges', () => {
    const d = indexed(5, 2)
    const s = selectSamples(d, [4, 1])
    assert.deepEqual([...s.x], [4, 4, 1, 1])
    assert.deepEqual([...s.y], [4, 1])
    const st = featureStats(d)
    assert.equal(st.mean, 2)
    assert.ok(Math.abs(st.std - Math.sqrt(2)) < 1e-12)
    checkLabels(Uint8Array.of(0, 9), 10)
    assert.throws(() => checkLabels(Uint8Array.of(0, 10), 10), {
      code: 'LABEL_OUT_OF_RANGE',
      fields: { index: 1, label: '10', classes: 10 }
    })
    assert.throws(() => checkLabels(BigInt64Array.of(-1n), 10), { code: 'LABEL_OUT_OF_RANGE' })
    checkLabels(BigInt64Array.of(0n, 9n, 3n), 10)
    assert.throws(() => checkLabels(BigInt64Array.of(1n, 2n ** 32n), 10), {
      code: 'LABEL_OUT_OF_RANGE',
      fields: { index: 1, label: '4294967296', classes: 10 }
    })
    assert.throws(() => checkLabels(new BigInt64Array(new ArrayBuffer(40), 8, 3).fill(10n), 10), {
      code: 'LABEL_OUT_OF_RANGE'
    })
    assert.throws(() => checkLabels([0.5], 10), { code: 'LABEL_OUT_OF_RANGE' })
  })
})

describe('training/data: batches', () => {
  it('covers every sample once per epoch, keeping the final partial batch', () => {
    const d = indexed(10)
    const loader = new BatchLoader(d, { batchSize: 4, seed: 3 })
    assert.equal(loader.batchesPerEpoch, 3)
    const seen: number[] = []
    const sizes: number[] = []
    for (const b of loader.epochSync(0)) {
      sizes.push(b.size)
      assert.equal(b.x.length, b.size * 3)
      assert.equal(b.y.length, b.size)
      for (let i = 0; i < b.size; i++) {
        assert.equal(b.x[i * 3], Number(b.y[i]), 'x row and label come from the same sample')
        seen.push(Number(b.y[i]))
      }
    }
    assert.deepEqual(sizes, [4, 4, 2])
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    )
    assert.notDeepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'shuffled')
  })

  it('drops the final partial batch when asked', () => {
    const loader = new BatchLoader(indexed(10), { batchSize: 4, dropLast: true, shuffle: false })
    assert.equal(loader.batchesPerEpoch, 2)
    const ys = [...loader.epochSync(0)].map((b) => b.size)
    assert.deepEqual(ys, [4, 4])
    const small = new BatchLoader(indexed(3), { batchSize: 8 })
    assert.deepEqual(
      [...small.epochSync(0)].map((b) => b.size),
      [3]
    )
    assert.throws(() => new BatchLoader(indexed(3), { batchSize: 0 }), { code: 'INVALID_DATA_OPTIONS' })
  })

  it('shuffles reproducibly per (seed, epoch) and reuses its buffers', () => {
    const d = indexed(50)
    const a = new BatchLoader(d, { batchSize: 8, seed: 11 })
    const b = new BatchLoader(d, { batchSize: 8, seed: 11 })
    const c = new BatchLoader(d, { batchSize: 8, seed: 12 })
    assert.deepEqual(a.epochOrder(2), b.epochOrder(2))
    assert.notDeepEqual(a.epochOrder(2), a.epochOrder(3))
    assert.notDeepEqual(a.epochOrder(2), c.epochOrder(2))
    assert.deepEqual(
      [...new BatchLoader(d, { batchSize: 8, shuffle: false }).epochOrder(5)],
      [...Array(50).keys()]
    )
    const buffers = new Set<Float32Array>()
    const labelBuffers = new Set<ArrayBuffer>()
    for (const batch of a.epochSync(0)) {
      if (batch.size === 8) buffers.add(batch.x)
      labelBuffers.add(batch.y.buffer as ArrayBuffer)
    }
    assert.equal(buffers.size, 1, 'full batches share one x buffer')
    assert.equal(labelBuffers.size, 1, 'all batches, the partial one included, share one label buffer')
    // The epoch order determines the batches.
    const order = a.epochOrder(1)
    const first = a.epochSync(1).next().value!
    assert.deepEqual([...first.y].map(Number), [...order.subarray(0, 8)])
  })

  it('iterates asynchronously over several epochs and stops on abort', async () => {
    const loader = new BatchLoader(indexed(10), { batchSize: 5, seed: 1 })
    const epochs: number[] = []
    for await (const b of loader.epochs(3, { from: 1 })) epochs.push(b.epoch)
    assert.deepEqual(epochs, [1, 1, 2, 2, 3, 3])
    const ac = new AbortController()
    let n = 0
    await assert.rejects(
      async () => {
        for await (const _b of loader.epochs(2, { signal: ac.signal })) {
          n++
          ac.abort()
        }
      },
      { name: 'AbortError' }
    )
    assert.equal(n, 1)
  })
})
