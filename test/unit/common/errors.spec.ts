import assert from 'node:assert/strict'
import {
  ERROR_CATEGORIES,
  ShoalError,
  isErrorCategory,
  type ErrorCategory
} from '../../../src/common/index.js'
import { KeystoreError } from '../../../src/identity/index.js'
import { DatasetArgumentError } from '../../../src/storage/datasets/index.js'
import { IntegrityError, NotFoundError } from '../../../src/storage/index.js'
import { UpdateRejectedError } from '../../../src/training/aggregate/index.js'
import { NonFiniteUpdateError, UpdateShapeMismatchError } from '../../../src/training/privacy/index.js'

class PeerGoneError extends ShoalError<'PEER_GONE'> {
  static override readonly category = 'unavailable'
}

class TwoWayError extends ShoalError<'TWO_WAY_BAD' | 'TWO_WAY_MISSING' | 'TWO_WAY_OTHER'> {
  static override readonly category = 'refused'
  static override readonly categories: Partial<Record<TwoWayError['code'], ErrorCategory>> = {
    TWO_WAY_BAD: 'usage',
    TWO_WAY_MISSING: 'not-found'
  }
}

describe('ShoalError categories', () => {
  it('defaults to internal', () => {
    assert.equal(new ShoalError('SOMETHING', 'x').category, 'internal')
  })

  it('takes the category a class declares, inherited by its subclasses', () => {
    assert.equal(new PeerGoneError('PEER_GONE', 'gone').category, 'unavailable')
    class Sub extends PeerGoneError {}
    assert.equal(new Sub('PEER_GONE', 'gone').category, 'unavailable')
    assert.equal(new DatasetArgumentError('DATASET_ARGUMENT', 'alpha <= 0').category, 'usage')
    assert.equal(new IntegrityError('tag').category, 'integrity')
    assert.equal(new NotFoundError('no such cid').category, 'not-found')
  })

  it('takes a per-code category from categories, else the class’s', () => {
    assert.equal(new TwoWayError('TWO_WAY_BAD', 'x').category, 'usage')
    assert.equal(new TwoWayError('TWO_WAY_MISSING', 'x').category, 'not-found')
    assert.equal(new TwoWayError('TWO_WAY_OTHER', 'x').category, 'refused')
    const ks = (code: KeystoreError['code']): ErrorCategory =>
      new KeystoreError(code, 'x', { path: 'k' }).category
    assert.equal(ks('WRONG_PASSPHRASE'), 'refused')
    assert.equal(ks('KEYSTORE_NOT_FOUND'), 'not-found')
    assert.equal(ks('KEYSTORE_CORRUPT'), 'internal')
  })

  it('lets options.category override the class (an error rebuilt from the wire)', () => {
    assert.equal(new ShoalError('X', 'x', {}, { category: 'refused' }).category, 'refused')
    assert.equal(new PeerGoneError('PEER_GONE', 'x', {}, { category: 'usage' }).category, 'usage')
    const cause = new Error('low')
    const e = new PeerGoneError('PEER_GONE', 'x', {}, { cause })
    assert.equal(e.cause, cause)
    assert.equal(e.category, 'unavailable')
    assert.ok(!('cause' in new ShoalError('X', 'x', {}, { category: 'usage' })))
  })

  it('serialises the category with the code and fields', () => {
    const err = new PeerGoneError('PEER_GONE', 'peer left', { peer: 'p1' })
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      name: 'PeerGoneError',
      code: 'PEER_GONE',
      category: 'unavailable',
      message: 'peer left',
      peer: 'p1'
    })
  })

  it('knows its categories', () => {
    assert.deepEqual([...ERROR_CATEGORIES].sort(), [
      'integrity',
      'internal',
      'not-found',
      'refused',
      'unavailable',
      'usage'
    ])
    for (const c of ERROR_CATEGORIES) assert.ok(isErrorCategory(c))
    for (const c of ['', 'fatal', 'USAGE', undefined, 2]) assert.ok(!isErrorCategory(c))
  })

  it('one condition has one code and one category in every layer', () => {
    const aggregate = new UpdateRejectedError('UPDATE_NON_FINITE', 'NaN')
    const privacy = new NonFiniteUpdateError('w', 3)
    assert.equal(privacy.code, 'UPDATE_NON_FINITE')
    assert.equal(privacy.category, aggregate.category)
    assert.equal(
      new UpdateShapeMismatchError('w', 3, 4).category,
      new UpdateRejectedError('UPDATE_SHAPE_MISMATCH', 'shape').category
    )
  })
})
