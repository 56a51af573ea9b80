/**
 * Fuzzing dataset import: IDX image/label files and CSV files (mutations of valid files,
 * arbitrary bytes, arbitrary options), and the shard splits with arbitrary parameters (what
 * `dataset_import` passes on). The property: a dataset or `DATASET_PARSE` /
 * `DATASET_ARGUMENT` (a named error), never an unnamed exception, a hang or unbounded memory.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { encodeIdx, readCsv, readIdx, shardDirichlet, shardIid } from '../../../src/storage/datasets/index.js'
import { fixture, synthetic } from '../storage/datasets/helpers.js'
import { expectNamed, fuzzParams, fuzzTimeout, mutateBytes, nastyNumber, nastyString } from './arbitraries.js'

describe('fuzz: dataset import (IDX, CSV, splits)', function () {
  this.timeout(fuzzTimeout(60_000))
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-fuzz-data-'))
  })
  after(async () => rm(dir, { recursive: true, force: true }))

  it('readIdx on mutated image and label files: a dataset whose labels match its count, or DATASET_PARSE', async () => {
    const u8 = encodeIdx(synthetic(6, { shape: [3, 2] }))
    const f32 = encodeIdx(synthetic(4, { shape: [2], float: true, seed: 3 }))
    const images = join(dir, 'images.idx')
    const labels = join(dir, 'labels.idx')
    const pair = fc
      .constantFrom(u8, f32)
      .chain((s) =>
        fc.tuple(
          fc.oneof(
            { weight: 3, arbitrary: mutateBytes(s.images) },
            { weight: 1, arbitrary: fc.constant(s.images) }
          ),
          fc.oneof(
            { weight: 3, arbitrary: mutateBytes(s.labels) },
            { weight: 1, arbitrary: fc.constant(s.labels) }
          )
        )
      )
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(pair, fc.tuple(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }))),
        fc.option(fc.oneof(fc.integer({ min: -2, max: 300 }), nastyNumber), { nil: undefined }),
        async ([img, lab], classes) => {
          await writeFile(images, img)
          await writeFile(labels, lab)
          const opts = classes === undefined ? {} : { classes }
          const ds = await expectNamed('idx.read', () => readIdx(images, labels, opts))
          if (ds !== undefined) {
            assert.equal(ds.labels.length, ds.count)
            assert.equal(ds.features.length, ds.count * ds.shape.reduce((a, b) => a * b, 1))
          }
        }
      ),
      fuzzParams(300)
    )
  })

  it('readCsv on mutated and arbitrary files with arbitrary options: a dataset or a named error', async () => {
    const good = new Uint8Array(await readFile(fixture('good.csv')))
    const noHeader = new Uint8Array(await readFile(fixture('no-header.csv')))
    const path = join(dir, 'data.csv')
    const text = fc.oneof(
      mutateBytes(good),
      mutateBytes(noHeader),
      fc.string({ unit: 'binary', maxLength: 200 }).map((s) => new TextEncoder().encode(s)),
      fc
        .array(
          fc.array(fc.oneof(fc.integer({ min: 0, max: 9 }).map(String), nastyString), { maxLength: 5 }),
          {
            maxLength: 6
          }
        )
        .map((rows) => new TextEncoder().encode(rows.map((r) => r.join(',')).join('\n')))
    )
    const opts = fc.record(
      {
        labelColumn: fc.oneof(fc.constantFrom('label', 0, 1, -1, 2 ** 40), nastyString, nastyNumber),
        header: fc.boolean(),
        classes: fc.oneof(fc.integer({ min: -1, max: 300 }), nastyNumber),
        delimiter: fc.oneof(fc.constantFrom(',', ';', '\t', '', '"', '\n'), nastyString)
      },
      { requiredKeys: ['labelColumn'] }
    )
    await fc.assert(
      fc.asyncProperty(text, opts, async (bytes, o) => {
        await writeFile(path, bytes)
        const ds = await expectNamed('csv.read', () => readCsv(path, o as never))
        if (ds !== undefined) {
          assert.equal(ds.labels.length, ds.count)
          assert.ok(ds.labels.every((l) => l < ds.classes))
        }
      }),
      fuzzParams(400)
    )
  })

  it('shardIid / shardDirichlet with arbitrary shard counts, alphas and seeds: shards or DATASET_ARGUMENT', async () => {
    const ds = synthetic(40, { classes: 4 })
    const num = fc.oneof(fc.integer({ min: -3, max: 60 }), nastyNumber)
    await fc.assert(
      fc.asyncProperty(num, num, num, async (n, alpha, seed) => {
        await expectNamed('split.iid', () => shardIid(ds, n, seed))
        await expectNamed('split.dirichlet', () => shardDirichlet(ds, n, alpha, seed))
      }),
      fuzzParams(400)
    )
  })
})
