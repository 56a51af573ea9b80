import assert from 'node:assert/strict'
import { DiskFullError, asDiskFull } from '../../../src/storage/index.js'

describe('storage: a full disk is a named error', () => {
  it('asDiskFull names ENOSPC and EDQUOT by code, by a wrapper that kept only the text, or down the cause chain', () => {
    const sys = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
    const quota = Object.assign(new Error('EDQUOT: disk quota exceeded'), { code: 'EDQUOT' })
    // blockstore-fs: PutFailedError whose message is the system error's text.
    const wrapped = Object.assign(new Error('Error: ENOSPC: no space left on device, write'), {
      name: 'PutFailedError'
    })
    const deep = new Error('import failed', { cause: new Error('write failed', { cause: sys }) })
    for (const err of [sys, quota, wrapped, deep]) {
      const named = asDiskFull(err)
      assert.ok(named instanceof DiskFullError)
      assert.equal(named.code, 'DISK_FULL')
      assert.equal(named.category, 'unavailable')
      assert.equal(named.cause, err)
    }
    assert.equal(asDiskFull(quota)?.fields.reason, 'EDQUOT')
    const already = new DiskFullError('full')
    assert.equal(asDiskFull(already), already)
  })

  it('asDiskFull leaves other errors alone', () => {
    for (const err of [
      new Error('ENOENT: no such file'),
      new TypeError('x'),
      undefined,
      null,
      'ENOSPC?',
      42
    ]) {
      if (typeof err === 'string') continue
      assert.equal(asDiskFull(err), undefined)
    }
    const cyclic: Error & { cause?: unknown } = new Error('loop')
    cyclic.cause = cyclic
    assert.equal(asDiskFull(cyclic), undefined)
  })
})
