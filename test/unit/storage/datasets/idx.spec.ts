import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DatasetParseError,
  encodeIdx,
  readIdx,
  writeIdx,
  type Dataset
} from '../../../../src/storage/datasets/index.js'
import { synthetic } from './helpers.js'

/** Asserts that `p` rejects with DATASET_PARSE and returns the error. */
async function parseFailure(p: Promise<unknown>): Promise<DatasetParseError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof DatasetParseError, `expected DatasetParseError, got ${String(err)}`)
    assert.equal(err.code, 'DATASET_PARSE')
    return err
  }
  assert.fail('expected a DATASET_PARSE error')
}

describe('datasets: IDX', () => {
  let dir: string
  let images: string
  let labels: string
  const ds = synthetic(50, { shape: [4, 3], classes: 7, seed: 5 })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-idx-'))
    images = join(dir, 'train-images.idx')
    labels = join(dir, 'train-labels.idx')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('round-trips a ubyte image set (magic 0x00000803) and a float32 set', async () => {
    await writeIdx(images, labels, ds)
    const head = await readFile(images)
    assert.deepEqual([...head.subarray(0, 4)], [0, 0, 8, 3])
    assert.equal(head.length, 16 + 50 * 12)
    const back = await readIdx(images, labels, { classes: 7 })
    assert.deepEqual(back, ds)

    const f: Dataset = synthetic(9, { shape: [5], float: true, classes: 3 })
    await writeIdx(images, labels, f)
    const backF = await readIdx(images, labels)
    assert.ok(backF.features instanceof Float32Array)
    assert.deepEqual(backF.features, f.features)
    assert.deepEqual(backF.shape, [5])
    assert.equal(backF.classes, Math.max(...f.labels) + 1)
  })

  it('refuses a truncated images file, naming the file, the sample and the byte offset', async () => {
    const { images: img, labels: lab } = encodeIdx(ds)
    await writeFile(images, img.subarray(0, 16 + 12 * 20 + 5))
    await writeFile(labels, lab)
    const err = await parseFailure(readIdx(images, labels))
    assert.equal(err.fields.reason, 'truncated')
    assert.equal(err.fields.file, images)
    assert.equal(err.fields.sample, 20)
    assert.equal(err.fields.offset, 16 + 12 * 20 + 5)
    assert.match(err.message, /train-images\.idx: truncated: expected 616 bytes.*got 261/)

    await writeFile(images, img.subarray(0, 10)) // not even a complete header
    const err2 = await parseFailure(readIdx(images, labels))
    assert.match(err2.message, /train-images\.idx: truncated header/)
  })

  it('refuses a truncated labels file and a labels/images count mismatch', async () => {
    const { images: img, labels: lab } = encodeIdx(ds)
    await writeFile(images, img)
    await writeFile(labels, lab.subarray(0, 8 + 30))
    const err = await parseFailure(readIdx(images, labels))
    assert.equal(err.fields.file, labels)
    assert.equal(err.fields.sample, 30)
    assert.match(err.message, /train-labels\.idx: truncated: expected 58 bytes/)

    const other = encodeIdx(synthetic(49, { shape: [4, 3], classes: 7 }))
    await writeFile(labels, other.labels)
    const err2 = await parseFailure(readIdx(images, labels))
    assert.equal(err2.fields.reason, 'count-mismatch')
    assert.match(err2.message, /49 labels.*50 samples/)
  })

  it('refuses bad magic, trailing bytes and labels beyond `classes`', async () => {
    const { images: img, labels: lab } = encodeIdx(ds)
    await writeFile(images, img)
    await writeFile(labels, lab)
    // Swapped files: the labels file where images are expected and vice versa.
    const swapped = await parseFailure(readIdx(labels, images))
    assert.equal(swapped.fields.reason, 'bad-magic')
    assert.equal(swapped.fields.file, labels)
    const bad = Uint8Array.from(img)
    bad[2] = 0x0b // int16: not supported
    await writeFile(images, bad)
    const err = await parseFailure(readIdx(images, labels))
    assert.match(err.message, /bad magic 0x00000b03/)

    await writeFile(images, Buffer.concat([img, Buffer.from([1, 2, 3])]))
    const trailing = await parseFailure(readIdx(images, labels))
    assert.equal(trailing.fields.reason, 'trailing-bytes')
    assert.match(trailing.message, /3 unexpected bytes/)

    await writeFile(images, img)
    const label = await parseFailure(readIdx(images, labels, { classes: 3 }))
    assert.equal(label.fields.reason, 'label-out-of-range')
    assert.equal(label.fields.file, labels)
    const first = ds.labels.findIndex((l) => l >= 3)
    assert.equal(label.fields.sample, first)
    assert.equal(label.fields.offset, 8 + first)
  })
})
