import assert from 'node:assert/strict'
import * as ort from 'onnxruntime-node'
import {
  Graph,
  OptimizerSpecError,
  applyOptimizer,
  clipByGlobalNorm,
  optimizerState,
  serializeGraph,
  validateOptimizer,
  type Value
} from '../../../../src/training/graph/index.js'
import { randn } from './gradcheck.js'

const PARAMS = [
  { name: 'w', shape: [2, 3] },
  { name: 'b', shape: [3] }
]

interface Run {
  params: Record<string, number[]>
  m: Record<string, number[]>
  v: Record<string, number[]>
  t: number
  norm: number
}

/** One clipped AdamW step in the graph, from the given params, gradients and Adam state. */
async function graphStep(
  opts: { maxNorm: number; wd: number; lr: number },
  p0: Record<string, number[]>,
  g0: Record<string, number[]>,
  m0: Record<string, number[]>,
  v0: Record<string, number[]>,
  t0: number
): Promise<Run> {
  const spec = validateOptimizer({ type: 'adamw', beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: opts.wd })
  const g = new Graph()
  const pv = PARAMS.map((p) => g.input(p.name, 'float', p.shape))
  const gv = PARAMS.map((p) => g.input(`grad:${p.name}`, 'float', p.shape))
  const infos = PARAMS.map((p) => ({ ...p, fanIn: 1, init: 'zeros' as const }))
  const state = new Map<string, Value>(
    optimizerState(spec, infos).map((s) => [s.name, g.input(s.name, 'float', s.shape)])
  )
  const lr = g.input('lr', 'float', [])
  const clipped = clipByGlobalNorm(g, gv, opts.maxNorm)
  const up = applyOptimizer(
    g,
    spec,
    PARAMS.map((p, i) => ({ name: p.name, value: pv[i]!, grad: clipped.grads[i]! })),
    state,
    lr
  )
  for (const [n, v] of up.params) g.output(v, `new:${n}`)
  for (const [n, v] of up.state) g.output(v, `new:${n}`)
  g.output(clipped.norm, 'norm')
  const s = await ort.InferenceSession.create(serializeGraph(g))
  const f32 = (x: number[], shape: number[]): ort.Tensor =>
    new ort.Tensor('float32', Float32Array.from(x), shape)
  const feeds: Record<string, ort.Tensor> = { lr: f32([opts.lr], []), 'adam.t': f32([t0], [1]) }
  for (const p of PARAMS) {
    feeds[p.name] = f32(p0[p.name]!, p.shape)
    feeds[`grad:${p.name}`] = f32(g0[p.name]!, p.shape)
    feeds[`adam.m:${p.name}`] = f32(m0[p.name]!, p.shape)
    feeds[`adam.v:${p.name}`] = f32(v0[p.name]!, p.shape)
  }
  const out = await s.run(feeds)
  const arr = (k: string): number[] => Array.from(out[k]!.data as Float32Array)
  const rec = (prefix: string): Record<string, number[]> =>
    Object.fromEntries(PARAMS.map((p) => [p.name, arr(`new:${prefix}${p.name}`)]))
  return {
    params: rec(''),
    m: rec('adam.m:'),
    v: rec('adam.v:'),
    t: arr('new:adam.t')[0]!,
    norm: arr('norm')[0]!
  }
}

function maxDiff(a: number[], b: number[]): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0)
}

describe('training/graph AdamW and global-norm clipping', () => {
  const p0 = { w: randn(6, 1), b: randn(3, 2) }
  const g0 = { w: randn(6, 3, 2), b: randn(3, 4, 2) }
  const m0 = { w: randn(6, 5, 0.1), b: randn(3, 6, 0.1) }
  const v0 = { w: randn(6, 7, 0.1).map(Math.abs), b: randn(3, 8, 0.1).map(Math.abs) }
  const norm = Math.sqrt([...g0.w, ...g0.b].reduce((s, x) => s + x * x, 0))

  /** The reference: clip, Adam moments, bias-corrected step, decoupled decay of matrices only. */
  function reference(maxNorm: number, wd: number, lr: number): Run {
    const f = Math.min(1, maxNorm / (norm + 1e-6))
    const t = 3
    const out: Run = { params: {}, m: {}, v: {}, t, norm }
    for (const name of ['w', 'b'] as const) {
      const gr = g0[name].map((x) => x * f)
      const m = gr.map((x, i) => 0.8 * m0[name][i]! + 0.2 * x)
      const v = gr.map((x, i) => 0.95 * v0[name][i]! + 0.05 * x * x)
      const decay = name === 'w' ? wd : 0
      out.m[name] = m
      out.v[name] = v
      out.params[name] = p0[name].map((p, i) => {
        const mhat = m[i]! / (1 - 0.8 ** t)
        const vhat = v[i]! / (1 - 0.95 ** t)
        return p - lr * (mhat / (Math.sqrt(vhat) + 1e-6)) - lr * decay * p
      })
    }
    return out
  }

  for (const { maxNorm, wd } of [
    { maxNorm: 1, wd: 0.1 }, // clipped (the norm is ≈ 4.4)
    { maxNorm: 100, wd: 0 } // not clipped, no decay
  ]) {
    it(`one step matches the reference (maxNorm ${maxNorm}, weight decay ${wd})`, async () => {
      const r = await graphStep({ maxNorm, wd, lr: 0.05 }, p0, g0, m0, v0, 2)
      const ref = reference(maxNorm, wd, 0.05)
      assert.ok(norm > 2, `test gradients too small: ${norm}`)
      assert.ok(Math.abs(r.norm - norm) < 1e-5, `norm ${r.norm} vs ${norm}`)
      assert.equal(r.t, 3)
      for (const n of ['w', 'b']) {
        assert.ok(maxDiff(r.m[n]!, ref.m[n]!) < 1e-6, `m of ${n}`)
        assert.ok(maxDiff(r.v[n]!, ref.v[n]!) < 1e-6, `v of ${n}`)
        assert.ok(
          maxDiff(r.params[n]!, ref.params[n]!) < 1e-5,
          `param ${n}: ${r.params[n]} vs ${ref.params[n]}`
        )
      }
    })
  }

  it('clipping rescales the gradients to the bound: the clipped moment update has norm maxNorm', async () => {
    const zeros = { w: new Array<number>(6).fill(0), b: new Array<number>(3).fill(0) }
    const r = await graphStep({ maxNorm: 0.5, wd: 0, lr: 0 }, p0, g0, zeros, zeros, 0)
    // From zero moments, m = (1 − β1)·g_clipped, so ‖m‖ = 0.2 · 0.5.
    const mNorm = Math.sqrt([...r.m.w!, ...r.m.b!].reduce((s, x) => s + x * x, 0))
    assert.ok(Math.abs(mNorm - 0.1) < 1e-6, `‖m‖ = ${mNorm}`)
    assert.deepEqual(r.params, { w: p0.w.map(Math.fround), b: p0.b.map(Math.fround) })
  })

  it('validates AdamW specs and clipping bounds', () => {
    assert.deepEqual(validateOptimizer({ type: 'adamw', weightDecay: 0.1 }), {
      type: 'adamw',
      weightDecay: 0.1
    })
    assert.throws(() => validateOptimizer({ type: 'adamw', weightDecay: -1 }), OptimizerSpecError)
    assert.throws(() => validateOptimizer({ type: 'adamw', beta2: 1 }), OptimizerSpecError)
    const g = new Graph()
    const x = g.input('x', 'float', [2])
    for (const bad of [0, -1, Number.NaN, Infinity]) {
      assert.throws(
        () => clipByGlobalNorm(g, [x], bad),
        (e: unknown) => e instanceof OptimizerSpecError && e.code === 'OPTIMIZER_SPEC_INVALID'
      )
    }
  })
})
