import assert from 'node:assert/strict'
import { Graph, GraphBuildError, gradients, ops } from '../../../../src/training/graph/index.js'
import { distinct, gradCheck, randn, type GradCase } from './gradcheck.js'

/** Run a check and assert it really compared non-trivial gradients. */
async function check(c: GradCase): Promise<void> {
  const r = await gradCheck(c)
  assert.ok(r.checked > 0, 'nothing checked')
  assert.ok(r.maxGrad > 1e-3, `gradients are (near) zero: max ${r.maxGrad}`)
}

describe('training/graph gradients vs finite differences', () => {
  describe('MatMul / Gemm', () => {
    it('MatMul [3,4]x[4,5] (float64)', async () => {
      await check({
        dtype: 'double',
        inputs: [
          { name: 'a', shape: [3, 4], data: randn(12, 1) },
          { name: 'b', shape: [4, 5], data: randn(20, 2) }
        ],
        build: (g, v) => ops.matmul(g, v.a!, v.b!)
      })
    })

    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`Gemm transA=${transA} transB=${transB} with bias [5] (float64)`, async () => {
          await check({
            dtype: 'double',
            inputs: [
              { name: 'a', shape: transA ? [4, 3] : [3, 4], data: randn(12, 3) },
              { name: 'b', shape: transB ? [5, 4] : [4, 5], data: randn(20, 4) },
              { name: 'c', shape: [5], data: randn(5, 5) }
            ],
            build: (g, v) => ops.gemm(g, v.a!, v.b!, v.c, { transA, transB })
          })
        })
      }
    }

    it('Gemm with a column bias [3,1] and a fixed (non-trainable) left operand (float32)', async () => {
      await check({
        dtype: 'float',
        inputs: [
          { name: 'a', shape: [3, 4], data: randn(12, 6), trainable: false },
          { name: 'b', shape: [4, 2], data: randn(8, 7) },
          { name: 'c', shape: [3, 1], data: randn(3, 8) }
        ],
        build: (g, v) => ops.gemm(g, v.a!, v.b!, v.c)
      })
    })
  })

  describe('elementwise with broadcasting', () => {
    it('Add [2,3,4] + [3,1] (float64)', async () => {
      await check({
        dtype: 'double',
        inputs: [
          { name: 'a', shape: [2, 3, 4], data: randn(24, 9) },
          { name: 'b', shape: [3, 1], data: randn(3, 10) }
        ],
        build: (g, v) => ops.add(g, v.a!, v.b!)
      })
    })

    it('Add [4] + [2,1,4] and a value used twice (gradients accumulate) (float64)', async () => {
      await check({
        dtype: 'double',
        inputs: [
          { name: 'a', shape: [4], data: randn(4, 11) },
          { name: 'b', shape: [2, 1, 4], data: randn(8, 12) }
        ],
        build: (g, v) => ops.add(g, ops.add(g, v.a!, v.b!), v.a!)
      })
    })

    it('Sub and Mul with broadcasting (float64)', async () => {
      await check({
        dtype: 'double',
        inputs: [
          { name: 'a', shape: [2, 3], data: randn(6, 13) },
          { name: 'b', shape: [3], data: randn(3, 14) },
          { name: 'c', shape: [2, 1], data: randn(2, 15) }
        ],
        build: (g, v) => ops.mul(g, ops.sub(g, v.a!, v.b!), v.c!)
      })
    })

    it('Relu (float64; inputs kept away from the kink)', async () => {
      await check({
        dtype: 'double',
        inputs: [{ name: 'x', shape: [3, 5], data: distinct(15, 16) }],
        build: (g, v) => ops.relu(g, v.x!)
      })
    })

    it('Relu (float32)', async () => {
      await check({
        dtype: 'float',
        inputs: [{ name: 'x', shape: [2, 2, 3], data: distinct(12, 17, 0.2) }],
        build: (g, v) => ops.relu(g, v.x!)
      })
    })
  })

  describe('Conv (float32: the CPU provider has no float64 Conv)', () => {
    const cases = [
      { h: 6, k: 3, s: 1, p: 0 },
      { h: 6, k: 3, s: 1, p: 1 },
      { h: 7, k: 3, s: 2, p: 0 },
      { h: 8, k: 3, s: 2, p: 0 }, // the stride drops a row: dW needs a slice
      { h: 8, k: 3, s: 2, p: 1 },
      { h: 7, k: 2, s: 3, p: 1 }
    ]
    for (const { h, k, s, p } of cases) {
      it(`Conv ${h}x${h} kernel ${k} stride ${s} padding ${p}, 2→3 channels, batch 2`, async () => {
        await check({
          dtype: 'float',
          inputs: [
            { name: 'x', shape: [2, 2, h, h], data: randn(2 * 2 * h * h, 20 + h) },
            { name: 'w', shape: [3, 2, k, k], data: randn(3 * 2 * k * k, 21 + k, 0.5) },
            { name: 'b', shape: [3], data: randn(3, 22) }
          ],
          build: (g, v) => ops.conv(g, v.x!, v.w!, v.b, { stride: s, padding: p }),
          maxChecks: 30
        })
      })
    }

    it('Conv with a single input channel and no bias', async () => {
      await check({
        dtype: 'float',
        inputs: [
          { name: 'x', shape: [3, 1, 5, 5], data: randn(75, 23) },
          { name: 'w', shape: [2, 1, 3, 3], data: randn(18, 24) }
        ],
        build: (g, v) => ops.conv(g, v.x!, v.w!, undefined),
        maxChecks: 30
      })
    })
  })

  describe('MaxPool (distinct inputs so the argmax is stable)', () => {
    for (const { h, size, stride } of [
      { h: 4, size: 2, stride: 2 },
      { h: 5, size: 2, stride: 2 },
      { h: 7, size: 3, stride: 2 }, // overlapping windows
      { h: 4, size: 2, stride: 1 }
    ]) {
      it(`MaxPool ${h}x${h} size ${size} stride ${stride}, batch 2, 3 channels (float64)`, async () => {
        await check({
          dtype: 'double',
          inputs: [{ name: 'x', shape: [2, 3, h, h], data: distinct(2 * 3 * h * h, 30 + h) }],
          build: (g, v) => ops.maxPool(g, v.x!, { size, stride }),
          maxChecks: 60
        })
      })
    }

    for (const { h, size, stride } of [
      { h: 4, size: 2, stride: 2 },
      { h: 5, size: 2, stride: 2 },
      { h: 5, size: 3, stride: 2 }
    ]) {
      it(`MaxPool ${h}x${h} size ${size} stride ${stride} (float32: MaxUnpool or scatter-add backward)`, async () => {
        await check({
          dtype: 'float',
          inputs: [{ name: 'x', shape: [2, 2, h, h], data: distinct(4 * h * h, 31 + h) }],
          build: (g, v) => ops.maxPool(g, v.x!, { size, stride }),
          maxChecks: 50
        })
      })
    }
  })

  describe('shape ops and reductions (float64)', () => {
    it('Flatten [2,3,2,2] → [2,12]', async () => {
      await check({
        dtype: 'double',
        inputs: [{ name: 'x', shape: [2, 3, 2, 2], data: randn(24, 40) }],
        build: (g, v) => ops.flatten(g, v.x!)
      })
    })

    it('Reshape [2,6] → [3,4]', async () => {
      await check({
        dtype: 'double',
        inputs: [{ name: 'x', shape: [2, 6], data: randn(12, 41) }],
        build: (g, v) => ops.reshape(g, v.x!, [3, 4])
      })
    })

    it('ReduceSum over axes with and without keepdims, and over all axes', async () => {
      await check({
        dtype: 'double',
        inputs: [{ name: 'x', shape: [2, 3, 4], data: randn(24, 42) }],
        build: (g, v) => {
          const a = ops.reduceSum(g, v.x!, [1], false) // [2,4]
          const b = ops.reduceSum(g, v.x!, [0, 2], true) // [1,3,1]
          const c = ops.reduceSum(g, v.x!) // []
          return ops.add(g, ops.add(g, ops.reshape(g, b, [3, 1]), ops.reduceSum(g, a, [0])), c)
        }
      })
    })
  })

  describe('softmax cross-entropy', () => {
    it('mean softmax-CE over a batch of 4, 5 classes (float64)', async () => {
      await check({
        dtype: 'double',
        inputs: [
          { name: 'z', shape: [4, 5], data: randn(20, 50, 2) },
          { name: 'y', shape: [4], data: [0, 3, 4, 3], dtype: 'int64' }
        ],
        build: (g, v) => ops.softmaxCrossEntropy(g, v.z!, v.y!).loss
      })
    })

    it('stays finite and correct for large logits (float32)', async () => {
      await check({
        dtype: 'float',
        inputs: [
          { name: 'z', shape: [3, 4], data: randn(12, 51, 5).map((x) => x + 80) },
          { name: 'y', shape: [3], data: [1, 0, 2], dtype: 'int64' }
        ],
        build: (g, v) => ops.softmaxCrossEntropy(g, v.z!, v.y!).loss,
        eps: 5e-2
      })
    })
  })

  describe('composition', () => {
    it('conv → relu → maxpool → flatten → gemm → softmax-CE, all params at once (float32)', async () => {
      await check({
        dtype: 'float',
        inputs: [
          { name: 'x', shape: [2, 1, 6, 6], data: randn(72, 60), trainable: false },
          { name: 'w1', shape: [2, 1, 3, 3], data: randn(18, 61, 0.5) },
          { name: 'b1', shape: [2], data: [0.1, -0.05] },
          { name: 'w2', shape: [8, 3], data: randn(24, 62, 0.5) },
          { name: 'b2', shape: [3], data: randn(3, 63, 0.1) },
          { name: 'y', shape: [2], data: [2, 0], dtype: 'int64' }
        ],
        build: (g, v) => {
          const h = ops.maxPool(g, ops.relu(g, ops.conv(g, v.x!, v.w1!, v.b1)), { size: 2 })
          const z = ops.gemm(g, ops.flatten(g, h), v.w2!, v.b2)
          return ops.softmaxCrossEntropy(g, z, v.y!).loss
        },
        eps: 1e-3,
        rtol: 1e-2
      })
    })
  })

  describe('autodiff errors', () => {
    it('refuses a trainable input to an op without a gradient rule', () => {
      const g = new Graph()
      const x = g.input('x', 'float', [2], { requiresGrad: true })
      assert.throws(
        () => ops.exp(g, x),
        (e: unknown) =>
          e instanceof GraphBuildError && e.code === 'GRAPH_BUILD_FAILED' && /Exp/.test(e.message)
      )
    })

    it('reports a parameter with no path to the loss', () => {
      const g = new Graph()
      const x = g.input('x', 'float', [2], { requiresGrad: true })
      const unused = g.input('unused', 'float', [2], { requiresGrad: true })
      const loss = ops.reduceSum(g, ops.relu(g, x))
      assert.throws(() => gradients(g, loss, [x, unused]), /no gradient path .*'unused'/)
    })
  })
})
