import assert from 'node:assert/strict'
import { ShoalError, hasCode } from '../../../../src/common/index.js'
import { UpdateRejectedError, updateNorm, validateUpdate } from '../../../../src/training/aggregate/index.js'
import { MODELS, initParams, paramsOf } from '../../../../src/training/graph/index.js'

const reference = {
  params: [
    { name: 'dense0.weight', shape: [3, 2] },
    { name: 'dense0.bias', shape: [2] }
  ]
}

function good(): Map<string, Float32Array> {
  return new Map([
    ['dense0.weight', Float32Array.of(1, 2, 3, 4, 5, 6)],
    ['dense0.bias', Float32Array.of(0, 0)]
  ])
}

function rejection(fn: () => void): UpdateRejectedError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof UpdateRejectedError)
    assert.ok(err instanceof ShoalError)
    return err
  }
  assert.fail('expected an UpdateRejectedError')
}

describe('aggregate: validateUpdate', () => {
  it('accepts a well-formed update, with and without a norm bound', () => {
    validateUpdate(good(), reference)
    validateUpdate(good(), reference, { base: good(), maxNorm: 0 })
    const compiled = { params: paramsOf(MODELS.mlp) }
    validateUpdate(initParams(compiled, 3), compiled, { base: initParams(compiled, 4), maxNorm: 1e6 })
  })

  it('rejects a missing tensor', () => {
    const m = good()
    m.delete('dense0.bias')
    const err = rejection(() => validateUpdate(m, reference))
    assert.equal(err.code, 'UPDATE_SHAPE_MISMATCH')
    assert.deepEqual(err.fields, { param: 'dense0.bias', expected: 2, actual: null })
  })

  it('rejects an extra tensor', () => {
    const m = good().set('dense9.bias', new Float32Array(4))
    const err = rejection(() => validateUpdate(m, reference))
    assert.equal(err.code, 'UPDATE_SHAPE_MISMATCH')
    assert.deepEqual(err.fields, { param: 'dense9.bias', expected: null, actual: 4 })
  })

  it('rejects a tensor of the wrong length', () => {
    const m = good().set('dense0.weight', new Float32Array(5))
    const err = rejection(() => validateUpdate(m, reference))
    assert.equal(err.code, 'UPDATE_SHAPE_MISMATCH')
    assert.deepEqual(err.fields, { param: 'dense0.weight', expected: 6, actual: 5 })
  })

  it('rejects NaN and ±Infinity, naming the tensor and index', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const m = good()
      m.get('dense0.weight')![4] = bad
      const err = rejection(() => validateUpdate(m, reference))
      assert.equal(err.code, 'UPDATE_NON_FINITE')
      assert.deepEqual(err.fields, { param: 'dense0.weight', index: 4 })
      assert.ok(hasCode(err, 'UPDATE_NON_FINITE'))
    }
  })

  it('rejects an update whose norm against the base exceeds maxNorm', () => {
    const base = good()
    const m = good()
    m.get('dense0.weight')![0] = 1 + 3 // delta (3, 4): norm 5
    m.get('dense0.bias')![1] = 4
    assert.equal(updateNorm(m, base), 5)
    validateUpdate(m, reference, { base, maxNorm: 5 })
    const err = rejection(() => validateUpdate(m, reference, { base, maxNorm: 4.5 }))
    assert.equal(err.code, 'UPDATE_NORM_EXCEEDED')
    assert.deepEqual(err.fields, { norm: 5, limit: 4.5 })
    assert.equal(err.toJSON().code, 'UPDATE_NORM_EXCEEDED')
  })

  it('bounds the norm of the model itself when there is no base', () => {
    const norm = Math.sqrt(1 + 4 + 9 + 16 + 25 + 36)
    validateUpdate(good(), reference, { maxNorm: norm })
    const err = rejection(() => validateUpdate(good(), reference, { maxNorm: 9 }))
    assert.equal(err.code, 'UPDATE_NORM_EXCEEDED')
    assert.equal(err.fields.norm, norm)
  })

  it('checks shapes before values, and values before the norm', () => {
    const m = good().set('dense0.bias', Float32Array.of(NaN))
    assert.equal(rejection(() => validateUpdate(m, reference, { maxNorm: 0 })).code, 'UPDATE_SHAPE_MISMATCH')
    m.set('dense0.bias', Float32Array.of(NaN, 1e30))
    assert.equal(rejection(() => validateUpdate(m, reference, { maxNorm: 0 })).code, 'UPDATE_NON_FINITE')
  })

  it('reports bad options as AGGREGATION_INVALID, not as the peer’s fault', () => {
    assert.throws(() => validateUpdate(good(), reference, { maxNorm: -1 }), { code: 'AGGREGATION_INVALID' })
    assert.throws(() => validateUpdate(good(), reference, { maxNorm: NaN }), { code: 'AGGREGATION_INVALID' })
    const base = good().set('dense0.bias', new Float32Array(3))
    assert.throws(() => validateUpdate(good(), reference, { base, maxNorm: 1 }), {
      code: 'AGGREGATION_INVALID'
    })
  })
})
