import assert from 'node:assert/strict'
import onnxProto from 'onnx-proto'
import * as ort from 'onnxruntime-node'
import { runOrtWeb, type WebTensor } from '../../../helpers/ort-web.js'
import { Rng } from '../../../../src/common/rng.js'
import {
  MODELS,
  WeightsMismatchError,
  buildInferenceModel,
  compileModel,
  initParams,
  initState,
  type CompiledModel,
  type ModelSpec,
  type OptimizerSpec
} from '../../../../src/training/graph/index.js'

const { onnx } = onnxProto

type Tensors = Map<string, Float32Array>

interface StepResult {
  params: Tensors
  state: Tensors
  loss: number
  correct: number
}

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, executionMode: 'sequential' })
}

async function step(
  s: ort.InferenceSession,
  m: CompiledModel,
  params: Tensors,
  state: Tensors,
  x: Float32Array,
  y: number[],
  lr: number
): Promise<StepResult> {
  const feeds: Record<string, ort.Tensor> = {
    x: new ort.Tensor('float32', x, [y.length, ...m.spec.input]),
    y: new ort.Tensor(
      'int64',
      BigInt64Array.from(y, (v) => BigInt(v)),
      [y.length]
    ),
    lr: new ort.Tensor('float32', Float32Array.of(lr), [])
  }
  for (const p of m.params) feeds[p.name] = new ort.Tensor('float32', params.get(p.name)!, p.shape)
  for (const t of m.state) feeds[t.name] = new ort.Tensor('float32', state.get(t.name)!, t.shape)
  const out = await s.run(feeds)
  const pick = (names: string[]): Tensors =>
    new Map(names.map((n) => [n, Float32Array.from(out[`new:${n}`]!.data as Float32Array)]))
  return {
    params: pick(m.params.map((p) => p.name)),
    state: pick(m.state.map((t) => t.name)),
    loss: out.loss!.data[0] as number,
    correct: out.correct!.data[0] as number
  }
}

/** A learnable seeded problem: each class has a random prototype; samples are prototype + noise. */
function problem(spec: ModelSpec, n: number, seed: number): { x: Float32Array; y: number[] } {
  const rng = new Rng(seed)
  const per = spec.input.reduce((a, b) => a * b, 1)
  const protos = Array.from({ length: spec.classes }, () => Array.from({ length: per }, () => rng.gaussian()))
  const y = Array.from({ length: n }, (_, i) => i % spec.classes)
  const x = new Float32Array(n * per)
  for (let i = 0; i < n; i++)
    for (let k = 0; k < per; k++) x[i * per + k] = protos[y[i]!]![k]! + 0.5 * rng.gaussian()
  return { x, y }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

describe('training/graph compiled models', function () {
  this.timeout(30000)

  for (const [name, spec] of Object.entries(MODELS)) {
    for (const opt of [
      { spec: { type: 'sgd', momentum: 0.9 } as OptimizerSpec, lr: 0.002 },
      { spec: { type: 'adam' } as OptimizerSpec, lr: 0.002 }
    ]) {
      it(`${name} with ${opt.spec.type} decreases the loss on a seeded problem`, async () => {
        const m = compileModel(spec, opt.spec)
        const s = await session(m.trainStep)
        const { x, y } = problem(spec, 20, 7)
        let params = initParams(m, 1)
        let state = initState(m)
        const losses: number[] = []
        let correct = 0
        for (let i = 0; i < 12; i++) {
          const r = await step(s, m, params, state, x, y, opt.lr)
          params = r.params
          state = r.state
          losses.push(r.loss)
          correct = r.correct
        }
        assert.ok(
          losses.every((l) => Number.isFinite(l)),
          `non-finite loss: ${losses.join(', ')}`
        )
        assert.ok(
          losses.at(-1)! < 0.3 * losses[0]!,
          `loss did not fall enough: ${losses.map((l) => l.toFixed(3))}`
        )
        assert.ok(correct >= 15, `only ${correct}/20 correct after training`)
      })
    }
  }

  describe('one step against a plain TypeScript reference', () => {
    // One dense layer, 3 → 3 classes, batch 4: logits = xW + b, mean softmax-CE.
    const spec: ModelSpec = { name: 'tiny', input: [3], layers: [{ type: 'dense', units: 3 }], classes: 3 }
    const rng = new Rng(99)
    const W = Float32Array.from({ length: 9 }, () => rng.gaussian() * 0.5)
    const b = Float32Array.from({ length: 3 }, () => rng.gaussian() * 0.1)
    const x = Float32Array.from({ length: 12 }, () => rng.gaussian())
    const y = [0, 2, 1, 2]
    const lr = 0.1

    /** Reference loss and gradients in float64. */
    function reference(): { loss: number; correct: number; dW: number[]; db: number[] } {
      const B = y.length
      const dW = new Array<number>(9).fill(0)
      const db = new Array<number>(3).fill(0)
      let loss = 0
      let correct = 0
      for (let n = 0; n < B; n++) {
        const z = [0, 1, 2].map(
          (j) => b[j]! + [0, 1, 2].reduce((s, k) => s + x[n * 3 + k]! * W[k * 3 + j]!, 0)
        )
        const zmax = Math.max(...z)
        const e = z.map((v) => Math.exp(v - zmax))
        const sum = e.reduce((a, c) => a + c, 0)
        const p = e.map((v) => v / sum)
        loss -= Math.log(p[y[n]!]!) / B
        if (z.indexOf(zmax) === y[n]) correct++
        for (let j = 0; j < 3; j++) {
          const d = (p[j]! - (j === y[n] ? 1 : 0)) / B
          db[j]! += d
          for (let k = 0; k < 3; k++) dW[k * 3 + j]! += x[n * 3 + k]! * d
        }
      }
      return { loss, correct, dW, db }
    }

    it('SGD with momentum and weight decay', async () => {
      const mu = 0.9
      const wd = 0.01
      const m = compileModel(spec, { type: 'sgd', momentum: mu, weightDecay: wd })
      assert.deepEqual(
        m.state.map((t) => t.name),
        ['momentum:dense0.weight', 'momentum:dense0.bias']
      )
      const vW = Float32Array.from({ length: 9 }, () => rng.gaussian() * 0.1)
      const vb = Float32Array.from({ length: 3 }, () => rng.gaussian() * 0.1)
      const r = await step(
        await session(m.trainStep),
        m,
        new Map([
          ['dense0.weight', W],
          ['dense0.bias', b]
        ]),
        new Map([
          ['momentum:dense0.weight', vW],
          ['momentum:dense0.bias', vb]
        ]),
        x,
        y,
        lr
      )
      const ref = reference()
      assert.ok(Math.abs(r.loss - ref.loss) < 1e-5)
      assert.equal(r.correct, ref.correct)
      const upd = (p: Float32Array, v: Float32Array, g: number[]): { p: number[]; v: number[] } => {
        const nv = g.map((gi, i) => mu * v[i]! + gi + wd * p[i]!)
        return { v: nv, p: nv.map((vi, i) => p[i]! - lr * vi) }
      }
      const eW = upd(W, vW, ref.dW)
      const eb = upd(b, vb, ref.db)
      assert.ok(maxAbsDiff(r.params.get('dense0.weight')!, eW.p) < 1e-6)
      assert.ok(maxAbsDiff(r.params.get('dense0.bias')!, eb.p) < 1e-6)
      assert.ok(maxAbsDiff(r.state.get('momentum:dense0.weight')!, eW.v) < 1e-6)
      assert.ok(maxAbsDiff(r.state.get('momentum:dense0.bias')!, eb.v) < 1e-6)
    })

    it('Adam, bias-corrected, from a non-zero state at t = 2', async () => {
      const b1 = 0.8
      const b2 = 0.95
      const eps = 1e-6
      const m = compileModel(spec, { type: 'adam', beta1: b1, beta2: b2, eps })
      const state = new Map<string, Float32Array>([['adam.t', Float32Array.of(2)]])
      for (const p of m.params) {
        const size = p.shape.reduce((a, c) => a * c, 1)
        state.set(
          `adam.m:${p.name}`,
          Float32Array.from({ length: size }, () => rng.gaussian() * 0.05)
        )
        state.set(
          `adam.v:${p.name}`,
          Float32Array.from({ length: size }, () => Math.abs(rng.gaussian()) * 0.01)
        )
      }
      const r = await step(
        await session(m.trainStep),
        m,
        new Map([
          ['dense0.weight', W],
          ['dense0.bias', b]
        ]),
        state,
        x,
        y,
        lr
      )
      const ref = reference()
      const t = 3
      assert.deepEqual(Array.from(r.state.get('adam.t')!), [t])
      for (const [name, p0, g] of [
        ['dense0.weight', W, ref.dW],
        ['dense0.bias', b, ref.db]
      ] as const) {
        const m0 = state.get(`adam.m:${name}`)!
        const v0 = state.get(`adam.v:${name}`)!
        const m1 = g.map((gi, i) => b1 * m0[i]! + (1 - b1) * gi)
        const v1 = g.map((gi, i) => b2 * v0[i]! + (1 - b2) * gi * gi)
        const p1 = p0.map((pi, i) => {
          const mhat = m1[i]! / (1 - b1 ** t)
          const vhat = v1[i]! / (1 - b2 ** t)
          return pi - (lr * mhat) / (Math.sqrt(vhat) + eps)
        })
        assert.ok(maxAbsDiff(r.state.get(`adam.m:${name}`)!, m1) < 1e-6, `m of ${name}`)
        assert.ok(maxAbsDiff(r.state.get(`adam.v:${name}`)!, v1) < 1e-7, `v of ${name}`)
        assert.ok(maxAbsDiff(r.params.get(name)!, p1) < 1e-5, `param ${name}`)
      }
    })
  })

  it('the train step of a small CNN spec yields finite-difference gradients (SGD, lr = 1)', async () => {
    const spec: ModelSpec = {
      name: 'cnn-small',
      input: [1, 6, 6],
      layers: [
        { type: 'conv', filters: 2, kernel: 3, padding: 1 },
        { type: 'relu' },
        { type: 'maxpool', size: 2 },
        { type: 'conv', filters: 3, kernel: 2, stride: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 3 }
      ],
      classes: 3
    }
    const m = compileModel(spec, { type: 'sgd' })
    const s = await session(m.trainStep)
    const { x, y } = problem(spec, 3, 5)
    const params = initParams(m, 3)
    const state = initState(m)
    const base = await step(s, m, params, state, x, y, 1)
    const rng = new Rng(8)
    const eps = 1e-3
    let worst = 0
    for (const p of m.params) {
      const w = params.get(p.name)!
      const grad = w.map((v, i) => v - base.params.get(p.name)![i]!)
      const scale = grad.reduce((a, v) => Math.max(a, Math.abs(v)), 0)
      assert.ok(scale > 1e-4, `no gradient for ${p.name}`)
      for (let c = 0; c < 6; c++) {
        const i = rng.int(w.length)
        const w0 = w[i]!
        w[i] = w0 + eps
        const lp = (await step(s, m, params, state, x, y, 1)).loss
        w[i] = w0 - eps
        const lm = (await step(s, m, params, state, x, y, 1)).loss
        w[i] = w0
        const fd = (lp - lm) / (2 * eps)
        worst = Math.max(worst, Math.abs(fd - grad[i]!) / (1e-4 + 2e-2 * Math.max(scale, Math.abs(fd))))
      }
    }
    assert.ok(worst <= 1, `gradient mismatch, err/tol ${worst}`)
  })

  it('runs the same step bit-for-bit twice and compiles to the same bytes', async () => {
    const a = compileModel(MODELS.cnn, { type: 'adam' })
    const b = compileModel(MODELS.cnn, { type: 'adam' })
    assert.deepEqual(a.trainStep, b.trainStep)
    assert.deepEqual(a.inference, b.inference)
    const { x, y } = problem(MODELS.cnn, 6, 2)
    const params = initParams(a, 4)
    const r1 = await step(await session(a.trainStep), a, params, initState(a), x, y, 0.01)
    const r2 = await step(await session(b.trainStep), b, params, initState(b), x, y, 0.01)
    assert.equal(r1.loss, r2.loss)
    for (const p of a.params) assert.deepEqual(r1.params.get(p.name), r2.params.get(p.name))
    assert.deepEqual(initParams(a, 4), params)
    assert.notDeepEqual(initParams(a, 5).get('conv0.weight'), params.get('conv0.weight'))
  })

  it('emits standard ONNX: ai.onnx opset 17, the contract inputs and outputs, symbolic batch', () => {
    const m = compileModel(MODELS.mlp, { type: 'sgd', momentum: 0.9 })
    const model = onnx.ModelProto.decode(m.trainStep)
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [['', 17]]
    )
    assert.ok(model.graph!.node!.every((n) => (n.domain ?? '') === ''))
    const inputs = model.graph!.input!.map((i) => i.name)
    assert.deepEqual(inputs, [
      'dense0.weight',
      'dense0.bias',
      'dense2.weight',
      'dense2.bias',
      'momentum:dense0.weight',
      'momentum:dense0.bias',
      'momentum:dense2.weight',
      'momentum:dense2.bias',
      'x',
      'y',
      'lr'
    ])
    assert.deepEqual(
      model.graph!.output!.map((o) => o.name),
      [...inputs.slice(0, 8).map((n) => `new:${n}`), 'loss', 'correct']
    )
    const x = model.graph!.input!.find((i) => i.name === 'x')!
    assert.equal(x.type!.tensorType!.shape!.dim![0]!.dimParam, 'B')
    // The hot path stays lean: no Transpose in the MLP step.
    assert.ok(!model.graph!.node!.some((n) => n.opType === 'Transpose'))
  })

  it('runs unchanged in another ONNX runtime (onnxruntime-web, WASM) with the same results', async () => {
    for (const [spec, opt] of [
      [MODELS.cnn, { type: 'adam' }],
      [MODELS.mlp, { type: 'sgd', momentum: 0.9, weightDecay: 1e-4 }]
    ] as const) {
      const m = compileModel(spec, opt)
      const { x, y } = problem(spec, 4, 9)
      const params = initParams(m, 2)
      const state = initState(m)
      const native = await step(await session(m.trainStep), m, params, state, x, y, 0.01)
      const feeds: Record<string, WebTensor> = {
        x: { type: 'float32', data: x, dims: [4, ...spec.input] },
        y: { type: 'int64', data: BigInt64Array.from(y, (v) => BigInt(v)), dims: [4] },
        lr: { type: 'float32', data: Float32Array.of(0.01), dims: [] }
      }
      for (const p of m.params) feeds[p.name] = { type: 'float32', data: params.get(p.name)!, dims: p.shape }
      for (const t of m.state) feeds[t.name] = { type: 'float32', data: state.get(t.name)!, dims: t.shape }
      const web = (await runOrtWeb(m.trainStep, feeds)).outputs
      assert.ok(Math.abs((web.loss!.data[0] as number) - native.loss) < 1e-4)
      assert.equal(web.correct!.data[0], native.correct)
      for (const p of m.params) {
        const d = maxAbsDiff(web[`new:${p.name}`]!.data as Float32Array, native.params.get(p.name)!)
        assert.ok(d < 1e-5, `${spec.name} ${p.name} differs by ${d}`)
      }
    }
  })

  describe('inference model', () => {
    it('gives the same logits with embedded weights as with weights as inputs, and matches the train step', async () => {
      const m = compileModel(MODELS.cnn, { type: 'sgd' })
      const params = initParams(m, 11)
      const { x, y } = problem(MODELS.cnn, 5, 3)
      const xt = new ort.Tensor('float32', x, [5, 1, 28, 28])
      const feeds: Record<string, ort.Tensor> = { x: xt }
      for (const p of m.params) feeds[p.name] = new ort.Tensor('float32', params.get(p.name)!, p.shape)
      const withInputs = await (await session(m.inference)).run(feeds)

      const standalone = buildInferenceModel(MODELS.cnn, params, { job: 'j1', round: '3' })
      const s2 = await session(standalone)
      assert.deepEqual(s2.inputNames, ['x'])
      const embedded = await s2.run({ x: xt })
      const l1 = withInputs.logits!.data as Float32Array
      const l2 = embedded.logits!.data as Float32Array
      assert.deepEqual(withInputs.logits!.dims, [5, 10])
      assert.ok(maxAbsDiff(l1, l2) < 1e-5, `logits differ by ${maxAbsDiff(l1, l2)}`)

      const probs = embedded.probs!.data as Float32Array
      for (let n = 0; n < 5; n++) {
        const row = probs.subarray(n * 10, n * 10 + 10)
        assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5)
      }
      // Mean cross-entropy of these logits is the train step's 'loss' for the same params.
      let ce = 0
      let correct = 0
      for (let n = 0; n < 5; n++) {
        const row = Array.from(l1.subarray(n * 10, n * 10 + 10))
        const zmax = Math.max(...row)
        const lse = zmax + Math.log(row.reduce((a, v) => a + Math.exp(v - zmax), 0))
        ce += (lse - row[y[n]!]!) / 5
        if (row.indexOf(zmax) === y[n]) correct++
      }
      const r = await step(await session(m.trainStep), m, params, initState(m), x, y, 0.1)
      assert.ok(Math.abs(r.loss - ce) < 1e-4, `loss ${r.loss} vs ${ce}`)
      assert.equal(r.correct, correct)

      const meta = onnx.ModelProto.decode(standalone).metadataProps.map((e) => [e.key, e.value])
      assert.deepEqual(meta, [
        ['job', 'j1'],
        ['round', '3']
      ])
    })

    it('rejects missing or mis-sized weights', () => {
      const m = compileModel(MODELS.mlp, { type: 'sgd' })
      const params = initParams(m, 1)
      params.delete('dense2.bias')
      assert.throws(
        () => buildInferenceModel(MODELS.mlp, params),
        (e: unknown) => e instanceof WeightsMismatchError && /dense2\.bias/.test(e.message)
      )
      params.set('dense2.bias', new Float32Array(3))
      assert.throws(() => buildInferenceModel(MODELS.mlp, params), /has 3 values, expected 10/)
    })
  })

  it('initialises He-normal weights and zero biases and state', () => {
    const m = compileModel(MODELS.mlp, { type: 'adam' })
    const params = initParams(m, 42)
    const w = params.get('dense0.weight')!
    assert.equal(w.length, 784 * 128)
    const variance = w.reduce((a, v) => a + v * v, 0) / w.length
    assert.ok(Math.abs(variance - 2 / 784) < 0.05 * (2 / 784), `variance ${variance}`)
    assert.ok(params.get('dense0.bias')!.every((v) => v === 0))
    const state = initState(m)
    assert.equal(state.size, m.state.length)
    assert.ok([...state.values()].every((t) => t.every((v) => v === 0)))
    assert.equal(state.get('adam.t')!.length, 1)
  })
})
