import assert from 'node:assert/strict'
import { runOrtWeb } from '../../../helpers/ort-web.js'
import { Rng } from '../../../../src/common/rng.js'
import {
  EXPORT_FORMAT,
  Predictor,
  exportOnnx,
  predict,
  readLineage,
  readOnnxMetadata
} from '../../../../src/training/export/index.js'
import { MODELS, compileModel, initParams } from '../../../../src/training/graph/index.js'
import { Trainer } from '../../../../src/training/runtime/index.js'

function inputs(count: number, seed: number): Float32Array {
  const rng = new Rng(seed)
  return Float32Array.from({ length: count * 784 }, () => rng.next())
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

async function trained(
  name: 'mlp' | 'cnn'
): Promise<{ trainer: Trainer; weights: Map<string, Float32Array> }> {
  const compiled = compileModel(MODELS[name], { type: 'sgd', momentum: 0.9 })
  const trainer = await Trainer.create(compiled, { weights: initParams(compiled, 11), deterministic: true })
  const rng = new Rng(2)
  for (let s = 0; s < 3; s++) {
    await trainer.step(
      inputs(16, s),
      Uint8Array.from({ length: 16 }, () => rng.int(10)),
      0.01
    )
  }
  return { trainer, weights: trainer.getWeights() }
}

describe('training/export: ONNX', function () {
  this.timeout(30000)

  for (const name of ['mlp', 'cnn'] as const) {
    it(`${name}: onnxruntime-web (WASM) predicts what Shoal's onnxruntime-node session predicts`, async () => {
      const { trainer, weights } = await trained(name)
      const model = exportOnnx(MODELS[name], weights, {
        job: 'job-42',
        lineage: ['bafyA', 'bafyB'],
        round: 3
      })
      const n = 24
      const x = inputs(n, 99)
      const shoal = await trainer.predict(x, n)
      await trainer.close()

      const exported = await predict(model, x, n)
      assert.ok(
        maxAbsDiff(exported.logits, shoal) < 1e-5,
        'exported model agrees with the trainer on onnxruntime-node'
      )

      const web = await runOrtWeb(model, {
        x: { type: 'float32', data: x, dims: [n, ...MODELS[name].input] }
      })
      assert.deepEqual(web.inputNames, ['x'])
      const logits = web.outputs.logits!.data as Float32Array
      const probs = web.outputs.probs!.data as Float32Array
      assert.equal(logits.length, n * 10)
      const maxDiff = maxAbsDiff(logits, shoal)
      assert.ok(maxDiff < 1e-4, `max logit difference ${maxDiff}`)
      for (let i = 0; i < n; i++) {
        const row = Array.from(logits.subarray(i * 10, (i + 1) * 10))
        assert.equal(row.indexOf(Math.max(...row)), exported.labels[i], `sample ${i}`)
        let ps = 0
        for (let c = 0; c < 10; c++) {
          ps += probs[i * 10 + c]!
          assert.ok(Math.abs(probs[i * 10 + c]! - exported.probs[i * 10 + c]!) < 1e-5)
        }
        assert.ok(Math.abs(ps - 1) < 1e-5)
      }
    })
  }

  it('stores provenance in metadata_props and exports deterministically', async () => {
    const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
    const w = initParams(compiled, 5)
    const model = exportOnnx(MODELS.mlp, w, { lineage: ['bafyA', 'bafyB'], job: 'job-1', final: true })
    assert.deepEqual(
      exportOnnx(MODELS.mlp, new Map([...w].reverse()), {
        job: 'job-1',
        final: true,
        lineage: ['bafyA', 'bafyB']
      }),
      model
    )
    const meta = readOnnxMetadata(model)
    assert.equal(meta.job, 'job-1')
    assert.equal(meta.final, 'true')
    assert.equal(meta['shoal.format'], EXPORT_FORMAT)
    assert.deepEqual(JSON.parse(meta['shoal.spec']!), MODELS.mlp)
    assert.deepEqual(readLineage(meta), ['bafyA', 'bafyB'])
    assert.deepEqual(readLineage({}), [])
    assert.throws(() => readLineage({ lineage: '{"a":1}' }), { code: 'ONNX_MODEL_INVALID' })
    assert.throws(() => exportOnnx(MODELS.mlp, w, { 'shoal.spec': 'x' }), { code: 'ONNX_MODEL_INVALID' })
    const missing = new Map(w)
    missing.delete('dense2.bias')
    assert.throws(() => exportOnnx(MODELS.mlp, missing), { code: 'WEIGHTS_MISMATCH' })
  })

  it('Predictor checks its input and refuses what is not an exported model', async () => {
    const compiled = compileModel(MODELS.cnn, { type: 'sgd' })
    const p = await Predictor.create(exportOnnx(MODELS.cnn, initParams(compiled, 1)))
    assert.deepEqual(p.inputShape, [1, 28, 28])
    assert.equal(p.classes, 10)
    assert.equal(p.executionProvider, 'cpu')
    await assert.rejects(p.predict(new Float32Array(783), 1), {
      code: 'SHAPE_MISMATCH',
      fields: { expected: [1, 1, 28, 28], got: 783 }
    })
    const r = await p.predict(inputs(2, 1), 2)
    assert.equal(r.labels.length, 2)
    await p.close()
    await assert.rejects(Predictor.create(Uint8Array.of(1, 2, 3, 4)), { code: 'ONNX_MODEL_INVALID' })
    // the inference graph without embedded weights has param inputs: not a standalone model
    await assert.rejects(Predictor.create(compiled.inference), { code: 'ONNX_MODEL_INVALID' })
    assert.throws(() => readOnnxMetadata(Uint8Array.of(0xff, 0xff, 0xff)), { code: 'ONNX_MODEL_INVALID' })
  })
})
