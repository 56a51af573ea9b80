import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { ShoalError, hasCode, configureLogger, logger } from '../../src/common/index.js'

describe('common', () => {
  it('ShoalError carries a code and fields and serialises them', () => {
    const err = new ShoalError('UPDATE_NORM_EXCEEDED', 'norm too large', { norm: 12, limit: 10 })
    assert.equal(err.code, 'UPDATE_NORM_EXCEEDED')
    assert.ok(hasCode(err, 'UPDATE_NORM_EXCEEDED'))
    assert.ok(!hasCode(new Error('x'), 'UPDATE_NORM_EXCEEDED'))
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      name: 'ShoalError',
      code: 'UPDATE_NORM_EXCEEDED',
      category: 'internal',
      message: 'norm too large',
      norm: 12,
      limit: 10
    })
  })

  it('logger redacts secrets', () => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString())
        cb()
      }
    })
    configureLogger({ level: 'info', format: 'json', destination: sink })
    logger('shoal:test').info({ token: 'hunter2', passphrase: 'p', cid: 'bafy' }, 'hello')
    const out = lines.join('')
    assert.ok(out.includes('bafy'))
    assert.ok(!out.includes('hunter2'))
    assert.ok(out.includes('shoal:test'))
    configureLogger({ level: 'silent' })
  })
})
