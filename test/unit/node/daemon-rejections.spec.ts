/**
 * A promise rejection nobody handled: an escaped abort is logged and the daemon keeps running
 * (a volunteer's node must not die of it); anything else stops the process, as Node would.
 */
import assert from 'node:assert/strict'
import { isAbort, onUnhandledRejection } from '../../../src/node/daemon.js'

describe('node/daemon: unhandled rejections', () => {
  const recorder = (): { lines: Array<[unknown, string]>; error: (o: unknown, m: string) => void } => {
    const lines: Array<[unknown, string]> = []
    return { lines, error: (o, m) => void lines.push([o, m]) }
  }

  it('recognises aborts: AbortSignal reasons and ABORT_ERR, nothing else', () => {
    assert.equal(isAbort(AbortSignal.abort().reason), true)
    const controller = new AbortController()
    controller.abort()
    try {
      controller.signal.throwIfAborted()
    } catch (err) {
      assert.equal(isAbort(err), true)
    }
    assert.equal(isAbort(Object.assign(new Error('x'), { code: 'ABORT_ERR' })), true)
    assert.equal(isAbort(new Error('boom')), false)
    assert.equal(isAbort('AbortError'), false)
    assert.equal(isAbort(undefined), false)
  })

  it('keeps running after an escaped abort, with the stack logged', () => {
    const log = recorder()
    let exited: number | undefined
    const kept = onUnhandledRejection(AbortSignal.abort().reason, log, (c) => (exited = c))
    assert.equal(kept, true)
    assert.equal(exited, undefined)
    assert.match(log.lines[0]![1], /keeps running/)
    assert.equal((log.lines[0]![0] as { err: { name: string } }).err.name, 'AbortError')
  })

  it('stops on any other rejection, saying what it was', () => {
    const log = recorder()
    let exited: number | undefined
    const write = process.stderr.write
    process.stderr.write = (() => true) as typeof process.stderr.write
    try {
      assert.equal(
        onUnhandledRejection(new TypeError('x is undefined'), log, (c) => (exited = c)),
        false
      )
    } finally {
      process.stderr.write = write
    }
    assert.equal(exited, 1)
    assert.match(log.lines[0]![1], /stopping/)
  })
})
