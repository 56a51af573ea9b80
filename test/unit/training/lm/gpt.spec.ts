import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import onnxProto from 'onnx-proto'
import * as ort from 'onnxruntime-node'
import {
  GPT_DEFAULT,
  GptSpecError,
  LmOptionsError,
  LmTrainer,
  PromptTooLongError,
  buildGptInference,
  compileGpt,
  generate,
  gptParamCount,
  gptParams,
  initGptParams,
  validateGptSpec,
  warmupCosineLr,
  type CompiledGpt
} from '../../../../src/training/lm/index.js'
import { WindowSampler, evalWindows, textTokens } from '../../../../src/training/text/index.js'
import { TINY } from './tiny.js'

const { onnx } = onnxProto
const run = promisify(execFile)

function specError(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GptSpecError, `expected GptSpecError, got ${String(e)}`)
    assert.equal(e.code, 'GPT_SPEC_INVALID')
    assert.equal(e.fields.field, field)
    return true
  })
}

describe('training/lm gpt', function () {
  this.timeout(60000)
  let tiny: CompiledGpt
  before(() => {
    tiny = compileGpt(TINY)
  })

  describe('spec', () => {
    it('the default is byte-level, 4 layers, d 128, 4 heads, context 128, ≈ 0.8 M parameters', () => {
      const s = validateGptSpec(GPT_DEFAULT)
      assert.deepEqual(
        {
          vocab: s.vocab,
          layers: s.layers,
          dModel: s.dModel,
          heads: s.heads,
          context: s.context,
          mlp: s.mlp,
          tied: s.tied
        },
        { vocab: 256, layers: 4, dModel: 128, heads: 4, context: 128, mlp: 512, tied: true }
      )
      // Per block: 2 LayerNorms (4·128), q/k/v/out (4·(128² + 128)), MLP (2·128·512 + 512 + 128).
      const block = 4 * 128 + 4 * (128 * 128 + 128) + 2 * 128 * 512 + 512 + 128
      assert.equal(gptParamCount(GPT_DEFAULT), 256 * 128 + 128 * 128 + 4 * block + 2 * 128)
      assert.ok(Math.abs(gptParamCount(GPT_DEFAULT) - 0.8e6) < 0.1e6)
    })

    it('refuses impossible shapes with a GPT_SPEC_INVALID naming the field', () => {
      specError(() => validateGptSpec({ ...TINY, dModel: 18, heads: 4 }), 'dModel')
      specError(() => validateGptSpec({ ...TINY, context: 0 }), 'context')
      specError(() => validateGptSpec({ ...TINY, layers: 1.5 }), 'layers')
      specError(() => validateGptSpec({ ...TINY, vocab: 1 }), 'vocab')
      specError(() => validateGptSpec({ ...TINY, heads: 0 }), 'heads')
      specError(() => validateGptSpec({ ...TINY, mlp: -4 }), 'mlp')
      specError(() => validateGptSpec({ ...TINY, dModel: 1e6 }), 'dModel')
      specError(() => validateGptSpec({ ...TINY, extra: 1 }), 'extra')
      specError(() => validateGptSpec({ ...TINY, type: 'mlp' }), 'type')
      specError(() => compileGpt({ ...TINY, heads: 3 }), 'dModel')
    })

    it('emits standard ONNX (ai.onnx opset 17 only) with the documented inputs and outputs', () => {
      const m = onnx.ModelProto.decode(tiny.trainStep)
      assert.deepEqual(
        m.opsetImport.map((o) => [o.domain, Number(o.version)]),
        [['', 17]]
      )
      assert.ok(m.graph!.node!.every((n) => (n.domain ?? '') === ''))
      const inputs = m.graph!.input!.map((i) => i.name)
      assert.deepEqual(inputs.slice(-3), ['x', 'y', 'lr'])
      const outputs = m.graph!.output!.map((o) => o.name)
      assert.deepEqual(outputs.slice(-2), ['loss', 'gradNorm'])
      assert.equal(outputs.length, tiny.params.length + tiny.state.length + 2)
      assert.deepEqual(
        onnx.ModelProto.decode(tiny.inference).graph!.output!.map((o) => o.name),
        ['logits']
      )
    })
  })

  it('a tiny GPT (1 layer, d 16) learns a repeated string, and greedy generation continues it', async () => {
    const text = 'the whale swims. '
    const sampler = new WindowSampler(textTokens(text.repeat(30)), { batchSize: 8, context: 16, seed: 1 })
    const trainer = await LmTrainer.create(tiny, { weights: initGptParams(tiny, 1), deterministic: true })
    const losses: number[] = []
    const steps = 120
    for (let i = 0; i < steps; i++) {
      const lr = warmupCosineLr({ lr: 2e-2, warmupSteps: 10, totalSteps: steps }, i)
      losses.push((await trainer.step(sampler.next(), lr)).loss)
    }
    await trainer.close()
    assert.ok(Math.abs(losses[0]! - Math.log(256)) < 0.3, `initial loss ${losses[0]} should be near ln 256`)
    const end = losses.slice(-10).reduce((a, b) => a + b, 0) / 10
    assert.ok(
      end < 0.3,
      `loss fell only to ${end.toFixed(3)}: ${losses.filter((_, i) => i % 20 === 0).map((l) => l.toFixed(2))}`
    )
    const out = await generate(trainer.weights(), 'the wh', { spec: TINY, tokens: 24, temperature: 0 })
    assert.equal(out.text, `the wh${'ale swims. the whale swims.'.slice(0, 24)}`)
  })

  it('evaluation loss equals the cross-entropy of the inference logits, and a step lowers it', async () => {
    const tokens = textTokens('Call me Ishmael. Some years ago, never mind how long precisely.')
    const batches = evalWindows(tokens, { context: 16, batchSize: 2 })
    const weights = initGptParams(tiny, 5)
    const trainer = await LmTrainer.create(tiny, { weights, deterministic: true })
    const before = await trainer.evaluate(batches)

    const s = await ort.InferenceSession.create(buildGptInference(TINY, weights), { intraOpNumThreads: 1 })
    let ce = 0
    let n = 0
    for (const b of batches) {
      const logits = (await s.run({ x: new ort.Tensor('int64', b.x, [b.count, 16]) })).logits!
        .data as Float32Array
      for (let r = 0; r < b.count * 16; r++) {
        const row = logits.subarray(r * 256, (r + 1) * 256)
        const max = row.reduce((a, v) => Math.max(a, v), -Infinity)
        const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0))
        ce += lse - row[Number(b.y[r])]!
        n++
      }
    }
    assert.ok(Math.abs(before - ce / n) < 1e-4, `eval ${before} vs inference ${ce / n}`)
    for (let i = 0; i < 5; i++) await trainer.step(batches[i % batches.length]!, 1e-2)
    assert.ok((await trainer.evaluate(batches)) < before - 0.1)
    await trainer.close()
  })

  it('the same train steps give bit-identical weights in two separate processes and in this one', async () => {
    const worker = fileURLToPath(new URL('./det-worker.ts', import.meta.url))
    const once = async (): Promise<{ hash: string; losses: number[] }> => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', worker], { timeout: 60000 })
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as { hash: string; losses: number[] }
    }
    const [a, b] = [await once(), await once()]
    assert.equal(a.hash, b.hash)
    assert.deepEqual(a.losses, b.losses)
    assert.ok(a.losses[2]! < a.losses[0]!, `losses ${a.losses}`)

    const trainer = await LmTrainer.create(tiny, { weights: initGptParams(tiny, 7), deterministic: true })
    const sampler = new WindowSampler(
      textTokens('It is not down in any map; true places never are. '.repeat(4)),
      {
        batchSize: 4,
        context: 16,
        seed: 3
      }
    )
    for (let i = 0; i < 3; i++) await trainer.step(sampler.next(), 1e-2)
    const h = createHash('sha256')
    for (const [, w] of trainer.weights()) h.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength))
    await trainer.close()
    assert.equal(h.digest('hex'), a.hash)
  })

  describe('generate', () => {
    it('is reproducible with a seed and differs with another; the window slides past the context', async () => {
      const w = initGptParams(tiny, 2)
      const a = await generate(w, 'Call me', { spec: TINY, tokens: 30, temperature: 1, seed: 4 })
      const b = await generate(w, 'Call me', { spec: TINY, tokens: 30, temperature: 1, seed: 4 })
      const c = await generate(w, 'Call me', { spec: TINY, tokens: 30, temperature: 1, seed: 5 })
      assert.deepEqual(a.tokens, b.tokens)
      assert.notDeepEqual(a.tokens, c.tokens)
      assert.equal(a.tokens.length, 7 + 30) // 37 > context 16
      assert.ok(a.text.startsWith('Call me'))
    })

    it('refuses a prompt longer than the context, an empty prompt and bad options', async () => {
      const w = initGptParams(tiny, 2)
      await assert.rejects(
        generate(w, 'x'.repeat(17), { spec: TINY }),
        (e: unknown) =>
          e instanceof PromptTooLongError && e.code === 'PROMPT_TOO_LONG' && e.fields.context === 16
      )
      // 6 characters, 18 bytes: the limit counts tokens (bytes), not characters.
      await assert.rejects(generate(w, '鯨鯨鯨鯨鯨鯨', { spec: TINY }), PromptTooLongError)
      await assert.rejects(generate(w, '', { spec: TINY }), LmOptionsError)
      await assert.rejects(generate(w, 'a', { spec: TINY, temperature: -1 }), LmOptionsError)
      await assert.rejects(generate(w, 'a', { spec: TINY, tokens: 1.5 }), LmOptionsError)
      const small = { ...TINY, vocab: 100 }
      const ws = initGptParams({ params: gptParams(validateGptSpec(small)) }, 1)
      await assert.rejects(
        generate(ws, 'a\u00e9', { spec: small }),
        (e: unknown) => e instanceof LmOptionsError && e.fields.token === 0xc3 && e.fields.vocab === 100
      )
    })
  })

  it('warm-up then cosine decay to the floor', () => {
    const s = { lr: 1, minLr: 0.1, warmupSteps: 4, totalSteps: 13 }
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => warmupCosineLr(s, i)),
      [0.25, 0.5, 0.75, 1]
    )
    assert.equal(warmupCosineLr(s, 4), 1)
    assert.ok(Math.abs(warmupCosineLr(s, 8) - 0.55) < 1e-12)
    assert.ok(Math.abs(warmupCosineLr(s, 12) - 0.1) < 1e-12)
    assert.ok(Math.abs(warmupCosineLr(s, 50) - 0.1) < 1e-12)
    assert.throws(() => warmupCosineLr({ ...s, lr: -1 }, 0), LmOptionsError)
  })
})
