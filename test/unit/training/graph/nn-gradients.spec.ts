import assert from 'node:assert/strict'
import * as ort from 'onnxruntime-node'
import { Graph, nn, ops, serializeGraph, type Value } from '../../../../src/training/graph/index.js'
import { distinct, gradCheck, randn, type GradCase } from './gradcheck.js'

/** Run a check and assert it really compared non-trivial gradients. */
async function check(c: GradCase): Promise<void> {
  const r = await gradCheck(c)
  assert.ok(r.checked > 0, 'nothing checked')
  assert.ok(r.maxGrad > 1e-3, `gradients are (near) zero: max ${r.maxGrad}`)
}

function attentionInputs(d: number, seed: number): GradCase['inputs'] {
  const names = ['wq', 'wk', 'wv', 'wo']
  return names.flatMap((n, i) => [
    { name: n, shape: [d, d], data: randn(d * d, seed + i, 0.5) },
    { name: `b${n.slice(1)}`, shape: [d], data: randn(d, seed + 10 + i, 0.1) }
  ])
}

function attentionWeights(v: Record<string, Value>): nn.AttentionWeights {
  return {
    wq: v.wq!,
    bq: v.bq!,
    wk: v.wk!,
    bk: v.bk!,
    wv: v.wv!,
    bv: v.bv!,
    wo: v.wo!,
    bo: v.bo!
  }
}

describe('training/graph transformer ops vs finite differences', function () {
  this.timeout(60000)

  it('embedding: Gather forward, scatter-add backward with repeated ids (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [
        { name: 'table', shape: [5, 3], data: randn(15, 1) },
        { name: 'ids', shape: [2, 3], data: [4, 1, 4, 0, 4, 1], dtype: 'int64' }
      ],
      build: (g, v) => nn.embedding(g, v.table!, v.ids!)
    })
  })

  it('embedding rows of ids never seen get a zero gradient', async () => {
    const g = new Graph()
    const table = g.input('table', 'float', [4, 2], { requiresGrad: true })
    const ids = g.input('ids', 'int64', [3])
    const y = nn.embedding(g, table, ids)
    const [d] = (await import('../../../../src/training/graph/index.js')).gradients(g, ops.reduceSum(g, y), [
      table
    ])
    g.output(d!, 'd')
    const s = await ort.InferenceSession.create(serializeGraph(g))
    const out = await s.run({
      table: new ort.Tensor('float32', new Float32Array(8), [4, 2]),
      ids: new ort.Tensor('int64', BigInt64Array.of(2n, 0n, 2n), [3])
    })
    assert.deepEqual(Array.from(out.d!.data as Float32Array), [1, 1, 0, 0, 2, 2, 0, 0])
  })

  it('permute [2,3,4] by [2,0,1] (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [{ name: 'x', shape: [2, 3, 4], data: randn(24, 2) }],
      build: (g, v) => nn.permute(g, v.x!, [2, 0, 1])
    })
  })

  it('batchMatmul [2,3,4]x[2,4,5] (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [
        { name: 'a', shape: [2, 3, 4], data: randn(24, 3) },
        { name: 'b', shape: [2, 4, 5], data: randn(40, 4) }
      ],
      build: (g, v) => nn.batchMatmul(g, v.a!, v.b!)
    })
  })

  it('softmax over the last axis (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [{ name: 'x', shape: [2, 3, 4], data: randn(24, 5, 2) }],
      build: (g, v) => nn.softmaxLast(g, v.x!)
    })
  })

  it('layerNorm over the last axis with gain and bias (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [
        { name: 'x', shape: [4, 6], data: randn(24, 6, 2) },
        { name: 'gamma', shape: [6], data: randn(6, 7, 0.5).map((x) => x + 1) },
        { name: 'beta', shape: [6], data: randn(6, 8, 0.5) }
      ],
      build: (g, v) => nn.layerNorm(g, v.x!, v.gamma!, v.beta!)
    })
  })

  it('layerNorm on a rank-3 input (float32)', async () => {
    await check({
      dtype: 'float',
      inputs: [
        { name: 'x', shape: [2, 3, 5], data: randn(30, 9, 2) },
        { name: 'gamma', shape: [5], data: randn(5, 10, 0.5).map((x) => x + 1) },
        { name: 'beta', shape: [5], data: randn(5, 11, 0.5) }
      ],
      build: (g, v) => nn.layerNorm(g, v.x!, v.gamma!, v.beta!),
      rtol: 1e-2
    })
  })

  it('GELU, tanh approximation (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [{ name: 'x', shape: [3, 7], data: distinct(21, 12, 0.3) }],
      build: (g, v) => nn.gelu(g, v.x!)
    })
  })

  it('GELU matches ½x(1 + tanh(√(2/π)(x + 0.044715x³)))', async () => {
    const g = new Graph()
    g.recording = false
    const x = g.input('x', 'double', [5])
    g.output(nn.gelu(g, x), 'y')
    const xs = [-3, -1, 0, 0.5, 2]
    const s = await ort.InferenceSession.create(serializeGraph(g))
    const out = await s.run({ x: new ort.Tensor('float64', Float64Array.from(xs), [5]) })
    const y = out.y!.data as Float64Array
    xs.forEach((v, i) => {
      const ref = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
      assert.ok(Math.abs(y[i]! - ref) < 1e-12, `gelu(${v}) = ${y[i]} vs ${ref}`)
    })
  })

  it('causal multi-head self-attention, 2 heads, batch 2 × 4 positions, all weights (float64)', async () => {
    await check({
      dtype: 'double',
      inputs: [{ name: 'x', shape: [8, 6], data: randn(48, 20) }, ...attentionInputs(6, 30)],
      build: (g, v) =>
        nn.causalSelfAttention(g, v.x!, attentionWeights(v), { batch: 2, context: 4, heads: 2 }),
      maxChecks: 20
    })
  })

  it('attention is causal: a later token never changes an earlier output, and does change its own', async () => {
    const d = 4
    const g = new Graph()
    g.recording = false
    const x = g.input('x', 'float', [3, d])
    const w: Record<string, Value> = {}
    for (const inp of attentionInputs(d, 40))
      w[inp.name] = g.constant(Float32Array.from(inp.data), inp.shape, 'float', inp.name)
    g.output(nn.causalSelfAttention(g, x, attentionWeights(w), { batch: 1, context: 3, heads: 2 }), 'y')
    const s = await ort.InferenceSession.create(serializeGraph(g))
    const run = async (data: number[]): Promise<Float32Array> =>
      (await s.run({ x: new ort.Tensor('float32', Float32Array.from(data), [3, d]) })).y!.data as Float32Array
    const a = randn(3 * d, 41)
    const b = [...a.slice(0, 2 * d), ...randn(d, 42)]
    const ya = await run(a)
    const yb = await run(b)
    assert.deepEqual(Array.from(ya.subarray(0, 2 * d)), Array.from(yb.subarray(0, 2 * d)))
    assert.notDeepEqual(Array.from(ya.subarray(2 * d)), Array.from(yb.subarray(2 * d)))
  })

  it('a pre-norm transformer block with residual adds and an MLP, through cross-entropy (float64)', async () => {
    const d = 4
    await check({
      dtype: 'double',
      inputs: [
        { name: 'table', shape: [7, d], data: randn(7 * d, 50) },
        { name: 'pos', shape: [3, d], data: randn(3 * d, 51, 0.3) },
        { name: 'ids', shape: [2, 3], data: [1, 6, 6, 0, 2, 1], dtype: 'int64' },
        { name: 'y', shape: [6], data: [6, 6, 0, 2, 1, 5], dtype: 'int64' },
        { name: 'g1', shape: [d], data: [1, 1.1, 0.9, 1] },
        { name: 'be1', shape: [d], data: randn(d, 52, 0.1) },
        { name: 'w1', shape: [d, 8], data: randn(d * 8, 53, 0.5) },
        { name: 'c1', shape: [8], data: randn(8, 54, 0.1) },
        { name: 'w2', shape: [8, d], data: randn(8 * d, 55, 0.5) },
        { name: 'c2', shape: [d], data: randn(d, 56, 0.1) },
        ...attentionInputs(d, 60)
      ],
      build: (g, v) => {
        const e = ops.add(g, nn.embedding(g, v.table!, v.ids!), v.pos!) // [2,3,d]
        let h = ops.reshape(g, e, [6, d])
        h = ops.add(
          g,
          h,
          nn.causalSelfAttention(g, nn.layerNorm(g, h, v.g1!, v.be1!), attentionWeights(v), {
            batch: 2,
            context: 3,
            heads: 2
          })
        )
        h = ops.add(g, h, ops.gemm(g, nn.gelu(g, ops.gemm(g, h, v.w1!, v.c1)), v.w2!, v.c2))
        const logits = ops.gemm(g, h, v.table!, undefined, { transB: true }) // tied output projection
        return ops.softmaxCrossEntropy(g, logits, v.y!).loss
      },
      maxChecks: 12
    })
  })
})
