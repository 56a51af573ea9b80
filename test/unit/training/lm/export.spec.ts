import assert from 'node:assert/strict'
import * as ort from 'onnxruntime-node'
import { readOnnxMetadata } from '../../../../src/training/export/index.js'
import {
  LmTrainer,
  compileGpt,
  exportGptOnnx,
  generate,
  initGptParams
} from '../../../../src/training/lm/index.js'
import { WindowSampler, encodeBytes, textTokens } from '../../../../src/training/text/index.js'
import { runOrtWeb } from '../../../helpers/ort-web.js'
import { TINY } from './tiny.js'

describe('training/lm ONNX export', function () {
  this.timeout(60000)

  it('onnxruntime-web gives the same next-token logits as the node, and the metadata names the tokenizer', async () => {
    const model = compileGpt(TINY)
    const trainer = await LmTrainer.create(model, { weights: initGptParams(model, 3), deterministic: true })
    const sampler = new WindowSampler(textTokens('Call me Ishmael. Call me Ishmael. '.repeat(6)), {
      batchSize: 4,
      context: 16,
      seed: 2
    })
    for (let i = 0; i < 30; i++) await trainer.step(sampler.next(), 1e-2)
    const weights = trainer.weights()
    await trainer.close()

    const bytes = exportGptOnnx(TINY, weights, { job: 'job-1' })
    const meta = readOnnxMetadata(bytes)
    assert.deepEqual(JSON.parse(meta['shoal.tokenizer']!), { kind: 'bytes', vocab: 256 })
    assert.deepEqual(JSON.parse(meta['shoal.lm.input']!), {
      name: 'x',
      dtype: 'int64',
      shape: [-1, 16],
      padding: 'right',
      output: 'logits'
    })
    assert.equal(JSON.parse(meta['shoal.spec']!).layers, 1)
    assert.equal(meta.job, 'job-1')
    assert.throws(() => exportGptOnnx(TINY, weights, { 'shoal.tokenizer': 'x' }), /reserved/)

    // Two rows: a prompt right-padded with zeros, and a full window.
    const prompt = encodeBytes('Call me')
    const x = new BigInt64Array(2 * 16)
    prompt.forEach((b, i) => (x[i] = BigInt(b)))
    encodeBytes('Ishmael. Call me').forEach((b, i) => (x[16 + i] = BigInt(b)))

    // The node: the inference graph with the weights as inputs (not the exported bytes).
    const s = await ort.InferenceSession.create(model.inference, { intraOpNumThreads: 1 })
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('int64', x, [2, 16]) }
    for (const p of model.params) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name)!, p.shape)
    const node = (await s.run(feeds)).logits!.data as Float32Array

    const web = await runOrtWeb(bytes, { x: { type: 'int64', data: x, dims: [2, 16] } })
    assert.deepEqual(web.inputNames, ['x'])
    assert.deepEqual(web.outputs.logits!.dims, [2, 16, 256])
    const wl = web.outputs.logits!.data as Float32Array
    let maxDiff = 0
    for (let i = 0; i < node.length; i++) maxDiff = Math.max(maxDiff, Math.abs(node[i]! - wl[i]!))
    assert.ok(maxDiff < 1e-4, `logits differ by ${maxDiff}`)

    // The next token after "Call me" (row 6 of the first window) is the one generate() picks greedily.
    const row = (l: Float32Array): number => {
      const r = l.subarray(6 * 256, 7 * 256)
      return r.indexOf(r.reduce((a, v) => Math.max(a, v), -Infinity))
    }
    assert.equal(row(wl), row(node))
    const g = await generate(weights, prompt, { spec: TINY, tokens: 1, temperature: 0 })
    assert.equal(g.tokens[7], row(wl))
  })
})
