import assert from 'node:assert/strict'
import {
  MODELS,
  ModelSpecError,
  OptimizerSpecError,
  inferShapes,
  optimizerState,
  paramsOf,
  validateOptimizer,
  validateSpec
} from '../../../../src/training/graph/index.js'

/** Assert that `fn` throws a MODEL_SPEC_INVALID error whose message matches `re`. */
function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelSpecError, `expected ModelSpecError, got ${String(e)}`)
    assert.equal(e.code, 'MODEL_SPEC_INVALID')
    assert.match(e.message, re)
    return true
  })
}

describe('training/graph model specs', () => {
  it('accepts the built-in models and infers their shapes', () => {
    assert.deepEqual(validateSpec(MODELS.mlp), MODELS.mlp)
    assert.deepEqual(validateSpec(MODELS.cnn), MODELS.cnn)
    assert.deepEqual(inferShapes(MODELS.mlp), [[128], [128], [10]])
    assert.deepEqual(inferShapes(MODELS.cnn), [
      [8, 24, 24],
      [8, 24, 24],
      [8, 12, 12],
      [16, 8, 8],
      [16, 8, 8],
      [16, 4, 4],
      [256],
      [10]
    ])
  })

  it('handles stride and padding in conv and maxpool shapes', () => {
    const shapes = inferShapes({
      name: 's',
      input: [3, 9, 9],
      layers: [
        { type: 'conv', filters: 4, kernel: 3, stride: 2, padding: 1 },
        { type: 'maxpool', size: 3, stride: 1 },
        { type: 'flatten' },
        { type: 'dense', units: 2 }
      ],
      classes: 2
    })
    assert.deepEqual(shapes, [[4, 5, 5], [4, 3, 3], [36], [2]])
  })

  it('lists parameters with shapes, fan-in and init', () => {
    assert.deepEqual(paramsOf(MODELS.cnn), [
      { name: 'conv0.weight', shape: [8, 1, 5, 5], fanIn: 25, init: 'he' },
      { name: 'conv0.bias', shape: [8], fanIn: 25, init: 'zeros' },
      { name: 'conv3.weight', shape: [16, 8, 5, 5], fanIn: 200, init: 'he' },
      { name: 'conv3.bias', shape: [16], fanIn: 200, init: 'zeros' },
      { name: 'dense7.weight', shape: [256, 10], fanIn: 256, init: 'he' },
      { name: 'dense7.bias', shape: [10], fanIn: 256, init: 'zeros' }
    ])
  })

  it('returns a clean copy without unknown fields', () => {
    const spec = validateSpec({
      name: 'm',
      input: [4],
      layers: [{ type: 'dense', units: 3, extra: true }],
      classes: 3,
      note: 'x'
    })
    assert.deepEqual(spec, { name: 'm', input: [4], layers: [{ type: 'dense', units: 3 }], classes: 3 })
  })

  it('names an unknown layer type', () => {
    rejects(
      () => validateSpec({ ...MODELS.mlp, layers: [{ type: 'dense', units: 10 }, { type: 'dropout' }] }),
      /layer 1: unknown layer type "dropout"/
    )
  })

  it('rejects dense after conv without flatten, naming the layer and the shapes', () => {
    const layers = MODELS.cnn.layers.filter((l) => l.type !== 'flatten')
    rejects(
      () => validateSpec({ ...MODELS.cnn, layers }),
      /^layer 6 \(dense\): expects input \[N\] but got \[16,4,4\]$/
    )
  })

  it('rejects a kernel larger than its input', () => {
    rejects(
      () =>
        validateSpec({
          name: 'big',
          input: [1, 4, 4],
          layers: [{ type: 'conv', filters: 2, kernel: 5 }, { type: 'flatten' }, { type: 'dense', units: 2 }],
          classes: 2
        }),
      /layer 0 \(conv\): kernel 5x5 larger than input \[1,4,4\]/
    )
    rejects(
      () =>
        validateSpec({
          name: 'pool',
          input: [1, 3, 3],
          layers: [{ type: 'maxpool', size: 4 }, { type: 'flatten' }, { type: 'dense', units: 2 }],
          classes: 2
        }),
      /layer 0 \(maxpool\): window 4x4 larger than input \[1,3,3\]/
    )
  })

  it('rejects conv on a flat input', () => {
    rejects(
      () => validateSpec({ ...MODELS.cnn, input: [784] }),
      /layer 0 \(conv\): expects input \[C,H,W\] but got \[784\]/
    )
  })

  it('rejects an output that is not one logit per class', () => {
    rejects(
      () => validateSpec({ ...MODELS.mlp, classes: 5 }),
      /layer 2 \(dense\): model output \[10\] must be \[5\]/
    )
  })

  it('rejects malformed fields', () => {
    rejects(() => validateSpec(null), /must be an object/)
    rejects(() => validateSpec({ ...MODELS.mlp, name: '' }), /name/)
    rejects(() => validateSpec({ ...MODELS.mlp, input: [784, 0] }), /input/)
    rejects(() => validateSpec({ ...MODELS.mlp, classes: 1 }), /classes/)
    rejects(() => validateSpec({ ...MODELS.mlp, layers: [] }), /layers/)
    rejects(
      () => validateSpec({ ...MODELS.mlp, layers: [{ type: 'dense', units: 0 }] }),
      /layer 0 \(dense\): 'units' must be an integer ≥ 1/
    )
    rejects(
      () => validateSpec({ ...MODELS.cnn, layers: [{ type: 'conv', filters: 2 }] }),
      /layer 0 \(conv\): 'kernel' must be an integer/
    )
    rejects(
      () => validateSpec({ ...MODELS.cnn, layers: [{ type: 'conv', filters: 2, kernel: 3, padding: -1 }] }),
      /'padding' must be an integer ≥ 0/
    )
  })

  it('validates optimizer specs and lists their state', () => {
    assert.deepEqual(validateOptimizer({ type: 'sgd', momentum: 0.9 }), { type: 'sgd', momentum: 0.9 })
    assert.deepEqual(validateOptimizer({ type: 'adam', beta1: 0.8 }), { type: 'adam', beta1: 0.8 })
    for (const bad of [{ type: 'rmsprop' }, { type: 'sgd', momentum: 1 }, { type: 'adam', eps: 0 }, null]) {
      assert.throws(
        () => validateOptimizer(bad),
        (e: unknown) => e instanceof OptimizerSpecError && e.code === 'OPTIMIZER_SPEC_INVALID'
      )
    }
    const params = paramsOf(MODELS.mlp)
    assert.deepEqual(optimizerState({ type: 'sgd' }, params), [])
    assert.deepEqual(
      optimizerState({ type: 'sgd', momentum: 0.5 }, params).map((t) => t.name),
      params.map((p) => `momentum:${p.name}`)
    )
    const adam = optimizerState({ type: 'adam' }, params)
    assert.equal(adam.length, 1 + 2 * params.length)
    assert.deepEqual(adam[0], { name: 'adam.t', shape: [1] })
  })
})
