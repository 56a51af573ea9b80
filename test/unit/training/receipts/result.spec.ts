import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { encodeWeights } from '../../../../src/training/export/index.js'
import { resultHash } from '../../../../src/training/receipts/index.js'

describe('resultHash (what a receipt commits to)', () => {
  const params = [
    { name: 'b', shape: [2] },
    { name: 'w', shape: [2, 2] }
  ]
  const weights = (): Map<string, Float32Array> =>
    new Map([
      ['w', Float32Array.from([1, 2, 3, 4])],
      ['b', Float32Array.from([0.5, -0.5])]
    ])

  it('is the hex sha-256 of the SHOALWT1 encoding', () => {
    const w = weights()
    const expected = createHash('sha256').update(encodeWeights(w, params)).digest('hex')
    assert.equal(resultHash(w, params), expected)
    assert.match(resultHash(w, params), /^[0-9a-f]{64}$/)
  })

  it('does not depend on the order the tensors were inserted in, and changes with any value', () => {
    const a = weights()
    const b = new Map([...a].reverse())
    assert.equal(resultHash(a, params), resultHash(b, params))
    const c = weights()
    c.get('w')![3] = Math.fround(4.000001)
    assert.notEqual(resultHash(a, params), resultHash(c, params))
  })
})
