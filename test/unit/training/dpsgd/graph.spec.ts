import assert from 'node:assert/strict'
import * as ort from 'onnxruntime-node'
import { Rng } from '../../../../src/common/rng.js'
import {
  CLIP_EPSILON,
  DP_INPUTS,
  DP_OUTPUTS,
  compileDpsgdModel
} from '../../../../src/training/dpsgd/index.js'
import {
  BATCH,
  Graph,
  buildForward,
  gradients,
  initParams,
  ops,
  paramsOf,
  serializeGraph,
  type ModelSpec
} from '../../../../src/training/graph/index.js'

const MLP: ModelSpec = {
  name: 'tiny-mlp',
  input: [6],
  layers: [{ type: 'dense', units: 5 }, { type: 'relu' }, { type: 'dense', units: 3 }],
  classes: 3
}
const CNN: ModelSpec = {
  name: 'tiny-cnn',
  input: [2, 7, 7],
  layers: [
    { type: 'conv', filters: 3, kernel: 3 },
    { type: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'conv', filters: 2, kernel: 2, stride: 1, padding: 1 },
    { type: 'relu' },
    { type: 'flatten' },
    { type: 'dense', units: 3 }
  ],
  classes: 3
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1)
const tensor = (data: Float32Array, dims: readonly number[]): ort.Tensor =>
  new ort.Tensor('float32', data, [...dims])

/** Gradients of one example's loss with respect to every param: a plain graph, batch of one. */
async function bruteForce(
  spec: ModelSpec,
  weights: Map<string, Float32Array>,
  x: Float32Array,
  y: number[]
): Promise<Array<Map<string, Float64Array>>> {
  const params = paramsOf(spec)
  const g = new Graph()
  const pv = new Map(params.map((p) => [p.name, g.input(p.name, 'float', p.shape, { requiresGrad: true })]))
  const xv = g.input('x', 'float', [BATCH, ...spec.input])
  const yv = g.input('y', 'int64', [BATCH])
  const { loss } = ops.softmaxCrossEntropy(g, buildForward(g, spec, pv, xv), yv)
  const grads = gradients(
    g,
    loss,
    params.map((p) => pv.get(p.name)!)
  )
  params.forEach((p, i) => g.output(grads[i]!, `grad:${p.name}`))
  const session = await ort.InferenceSession.create(serializeGraph(g), { intraOpNumThreads: 1 })
  const S = size(spec.input)
  const out: Array<Map<string, Float64Array>> = []
  for (let i = 0; i < y.length; i++) {
    const feeds: Record<string, ort.Tensor> = {
      x: tensor(x.slice(i * S, (i + 1) * S), [1, ...spec.input]),
      y: new ort.Tensor('int64', BigInt64Array.of(BigInt(y[i]!)), [1])
    }
    for (const p of params) feeds[p.name] = tensor(weights.get(p.name)!, p.shape)
    const r = await session.run(feeds)
    out.push(
      new Map(params.map((p) => [p.name, Float64Array.from(r[`grad:${p.name}`]!.data as Float32Array)]))
    )
  }
  await session.release()
  return out
}

interface DpRun {
  norms: Float32Array
  grads: Map<string, Float32Array>
  loss: number
  correct: number
  newParams: Map<string, Float32Array>
}

async function runDp(
  spec: ModelSpec,
  weights: Map<string, Float32Array>,
  x: Float32Array,
  y: number[],
  mask: number[],
  dp: { clip: number; std: number; denom: number; noise?: Float32Array; lr?: number }
): Promise<DpRun> {
  const model = compileDpsgdModel(spec, { type: 'sgd' }, { exposeGradients: true })
  const session = await ort.InferenceSession.create(model.trainStep, { intraOpNumThreads: 1 })
  const B = y.length
  const feeds: Record<string, ort.Tensor> = {
    x: tensor(x, [B, ...spec.input]),
    y: new ort.Tensor('int64', BigInt64Array.from(y, BigInt), [B]),
    lr: tensor(Float32Array.of(dp.lr ?? 0.1), []),
    [DP_INPUTS.mask]: tensor(Float32Array.from(mask), [B]),
    [DP_INPUTS.clip]: tensor(Float32Array.of(dp.clip), []),
    [DP_INPUTS.std]: tensor(Float32Array.of(dp.std), []),
    [DP_INPUTS.denom]: tensor(Float32Array.of(dp.denom), []),
    [DP_INPUTS.noise]: tensor(dp.noise ?? new Float32Array(model.noiseSize), [model.noiseSize])
  }
  for (const p of model.params) feeds[p.name] = tensor(weights.get(p.name)!, p.shape)
  const r = await session.run(feeds)
  await session.release()
  return {
    norms: r[DP_OUTPUTS.norms]!.data as Float32Array,
    grads: new Map(
      model.params.map((p) => [p.name, r[`${DP_OUTPUTS.gradPrefix}${p.name}`]!.data as Float32Array])
    ),
    loss: (r.loss!.data as Float32Array)[0]!,
    correct: (r.correct!.data as Float32Array)[0]!,
    newParams: new Map(model.params.map((p) => [p.name, r[`new:${p.name}`]!.data as Float32Array]))
  }
}

function data(spec: ModelSpec, B: number, seed: number): { x: Float32Array; y: number[] } {
  const rng = new Rng(seed)
  const x = Float32Array.from({ length: B * size(spec.input) }, () => rng.gaussian())
  const y = Array.from({ length: B }, () => rng.int(spec.classes))
  return { x, y }
}

function normOf(m: Map<string, Float64Array>): number {
  let s = 0
  for (const t of m.values()) for (const v of t) s += v * v
  return Math.sqrt(s)
}

/** max |a − b| / max(1e-3, max |b|) over every param. */
function relErr(a: Map<string, Float32Array>, b: Map<string, Float64Array>): number {
  let err = 0
  let scale = 1e-3
  for (const [name, t] of b) {
    const u = a.get(name)!
    for (let i = 0; i < t.length; i++) {
      err = Math.max(err, Math.abs(u[i]! - t[i]!))
      scale = Math.max(scale, Math.abs(t[i]!))
    }
  }
  return err / scale
}

/** The DP-SGD result computed from per-example gradients: Σ maskᵢ·min(1, C/(‖gᵢ‖+ε))·gᵢ, plus std·noise, / denom. */
function expected(
  per: Array<Map<string, Float64Array>>,
  mask: number[],
  clip: number,
  std = 0,
  noise?: Float32Array,
  denom = 1
): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>()
  let off = 0
  for (const [name, t0] of per[0]!) {
    const acc = new Float64Array(t0.length)
    per.forEach((m, i) => {
      const s = mask[i]! * Math.min(1, clip / (normOf(m) + CLIP_EPSILON))
      const t = m.get(name)!
      for (let j = 0; j < t.length; j++) acc[j]! += s * t[j]!
    })
    for (let j = 0; j < acc.length; j++) acc[j] = (acc[j]! + std * (noise?.[off + j] ?? 0)) / denom
    off += acc.length
    out.set(name, acc)
  }
  return out
}

for (const spec of [MLP, CNN]) {
  describe(`training/dpsgd graph (${spec.name}) against batch-of-one gradients`, () => {
    const B = 6
    const { x, y } = data(spec, B, 11)
    const weights = initParams({ params: paramsOf(spec) }, 5)
    // Non-zero biases, so that no gradient is trivially shaped.
    for (const [name, w] of weights)
      if (name.endsWith('.bias')) w.forEach((_, i) => (w[i] = 0.1 * (i % 3) - 0.1))
    let per: Array<Map<string, Float64Array>>

    before(async () => {
      per = await bruteForce(spec, weights, x, y)
    })

    it('per-example norms match ‖∇ℓᵢ‖ of a batch of one', async () => {
      const r = await runDp(spec, weights, x, y, Array(B).fill(1), { clip: 1e6, std: 0, denom: 1 })
      per.forEach((m, i) => {
        const want = normOf(m)
        assert.ok(want > 1e-3, 'a gradient is (near) zero')
        assert.ok(
          Math.abs(r.norms[i]! - want) <= 1e-5 * want + 1e-6,
          `example ${i}: ${r.norms[i]} vs ${want}`
        )
      })
    })

    it('without clipping the sum equals the summed per-example gradients', async () => {
      const r = await runDp(spec, weights, x, y, Array(B).fill(1), { clip: 1e6, std: 0, denom: 1 })
      assert.ok(relErr(r.grads, expected(per, Array(B).fill(1), 1e6)) < 1e-5)
    })

    it('clipped, masked, noised and divided sums match the brute-force computation', async () => {
      const norms = per.map(normOf).sort((a, b) => a - b)
      const clip = norms[Math.floor(B / 2)]! // about half of the examples are clipped
      const mask = [1, 0, 1, 1, 0, 1]
      const model = compileDpsgdModel(spec, { type: 'sgd' })
      const rng = new Rng(3)
      const noise = Float32Array.from({ length: model.noiseSize }, () => rng.gaussian())
      const r = await runDp(spec, weights, x, y, mask, { clip, std: 0.3 * clip, denom: 4, noise })
      assert.ok(relErr(r.grads, expected(per, mask, clip, 0.3 * clip, noise, 4)) < 1e-5)
    })

    it('a clipped example contributes at most C; a masked one nothing', async () => {
      const clip = 0.05
      for (let i = 0; i < B; i++) {
        const mask = Array.from({ length: B }, (_, j) => (j === i ? 1 : 0))
        const r = await runDp(spec, weights, x, y, mask, { clip, std: 0, denom: 1 })
        let s = 0
        for (const t of r.grads.values()) for (const v of t) s += v * v
        assert.ok(Math.sqrt(s) <= clip * (1 + 1e-5), `example ${i}: ‖clipped‖ = ${Math.sqrt(s)}`)
        assert.ok(Math.sqrt(s) >= clip * 0.999, `example ${i} should be clipped to C`)
      }
    })

    it('loss and correct count only the masked-in examples; an empty batch gives loss 0 and no update', async () => {
      const r = await runDp(spec, weights, x, y, [1, 1, 0, 0, 0, 0], { clip: 1, std: 0, denom: 2 })
      const r2 = await runDp(spec, weights, x.slice(0, 2 * size(spec.input)), y.slice(0, 2), [1, 1], {
        clip: 1,
        std: 0,
        denom: 2
      })
      assert.ok(Math.abs(r.loss - r2.loss) < 1e-6)
      assert.equal(r.correct, r2.correct)
      const empty = await runDp(spec, weights, x, y, Array(B).fill(0), { clip: 1, std: 0, denom: 2 })
      assert.equal(empty.loss, 0)
      for (const [name, w] of weights) assert.deepEqual(empty.newParams.get(name), w)
    })
  })
}
