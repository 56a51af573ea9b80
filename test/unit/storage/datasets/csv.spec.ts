import assert from 'node:assert/strict'
import { DatasetParseError, readCsv } from '../../../../src/storage/datasets/index.js'
import { fixture } from './helpers.js'

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

describe('datasets: CSV', () => {
  it('reads a file with a header, the label column by name, skipping blank lines', async () => {
    const ds = await readCsv(fixture('good.csv'), { labelColumn: 'label' })
    assert.equal(ds.count, 4)
    assert.deepEqual(ds.shape, [3])
    assert.equal(ds.classes, 3)
    assert.deepEqual([...ds.labels], [1, 0, 2, 1])
    assert.ok(ds.features instanceof Float32Array)
    assert.deepEqual([...ds.features], [0.5, 2, 3, -1.25, 1000, 4, 7, 8, 9, 0, 0, 0])
  })

  it('reads a file without a header, the label column by index', async () => {
    const ds = await readCsv(fixture('no-header.csv'), { labelColumn: 0, classes: 10 })
    assert.equal(ds.count, 3)
    assert.equal(ds.classes, 10)
    assert.deepEqual([...ds.labels], [3, 1, 2])
    assert.deepEqual([...ds.features], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6].map(Math.fround))
  })

  it('refuses a non-numeric value, naming the file, line and column', async () => {
    const file = fixture('bad-nonnumeric.csv')
    const err = await parseFailure(readCsv(file, { labelColumn: 'label' }))
    assert.equal(err.fields.reason, 'non-numeric')
    assert.equal(err.fields.file, file)
    assert.equal(err.fields.line, 4)
    assert.equal(err.fields.column, 2)
    assert.equal(err.fields.columnName, 'b')
    assert.match(err.message, /bad-nonnumeric\.csv: line 4, column 2 \("b"\): non-numeric value "abc"/)
  })

  it('refuses a row with the wrong number of columns', async () => {
    const err = await parseFailure(readCsv(fixture('bad-columns.csv'), { labelColumn: 'label' }))
    assert.equal(err.fields.reason, 'columns')
    assert.equal(err.fields.line, 3)
    assert.match(err.message, /bad-columns\.csv: line 3.*expected 3 columns, got 2/)
  })

  it('refuses a bad label: not an integer, or not below `classes`', async () => {
    const file = fixture('bad-label.csv')
    const err = await parseFailure(readCsv(file, { labelColumn: 'label' }))
    assert.equal(err.fields.reason, 'label-out-of-range')
    assert.equal(err.fields.line, 4)
    assert.equal(err.fields.column, 3)
    assert.match(err.message, /bad-label\.csv: line 4, column 3 \("label"\): label 2\.5/)

    const good = fixture('good.csv')
    const err2 = await parseFailure(readCsv(good, { labelColumn: 'label', classes: 2 }))
    assert.equal(err2.fields.line, 5) // "7,2,8,9" after the blank line 4
    assert.match(err2.message, /label 2 is not an integer in \[0, 2\)/)
  })

  it('refuses an unknown label column', async () => {
    const err = await parseFailure(readCsv(fixture('good.csv'), { labelColumn: 'y' }))
    assert.equal(err.fields.reason, 'label-column')
    assert.equal(err.fields.line, 1)
  })
})
