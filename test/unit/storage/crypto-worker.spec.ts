import assert from 'node:assert/strict'
import { workerOptions } from '../../../src/storage/crypto-worker-client.js'

describe('storage: how the crypto worker is started', () => {
  const ts = 'file:///app/src/storage/crypto-worker-client.ts'

  it('gives the worker tsx’s loader when the process registered tsx at run time only', () => {
    const o = workerOptions(ts, ['--enable-source-maps'])
    assert.ok(o !== undefined)
    assert.equal(o.execArgv[0], '--enable-source-maps')
    assert.equal(o.execArgv[1], '--import')
    assert.match(o.execArgv[2]!, /^file:\/\/.*tsx.*\.mjs$/)
  })

  it('adds nothing when the worker inherits tsx (node --import tsx, mocha) or runs compiled', () => {
    assert.equal(workerOptions(ts, ['--import', 'tsx']), undefined)
    assert.equal(workerOptions(ts, ['--import=tsx']), undefined)
    assert.equal(workerOptions(ts, ['--import=./bin/check-node.js', '--import=tsx']), undefined)
    assert.equal(workerOptions('file:///app/dist/storage/crypto-worker-client.js', []), undefined)
  })
})
