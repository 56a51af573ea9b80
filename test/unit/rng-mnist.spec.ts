import assert from 'node:assert/strict'
import { Rng } from '../../src/common/rng.js'
import { loadMnist, trainTestSplit } from '../../src/storage/datasets/mnist.js'

describe('Rng', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = new Rng(7)
    const b = new Rng(7)
    const c = new Rng(8)
    const xs = Array.from({ length: 5 }, () => a.nextUint32())
    assert.deepEqual(
      xs,
      Array.from({ length: 5 }, () => b.nextUint32())
    )
    assert.notDeepEqual(
      xs,
      Array.from({ length: 5 }, () => c.nextUint32())
    )
  })

  it('gaussian has mean ~0 and variance ~1; dirichlet sums to 1', () => {
    const r = new Rng(1)
    let s = 0
    let s2 = 0
    const n = 20000
    for (let i = 0; i < n; i++) {
      const g = r.gaussian()
      s += g
      s2 += g * g
    }
    assert.ok(Math.abs(s / n) < 0.03)
    assert.ok(Math.abs(s2 / n - 1) < 0.05)
    const d = r.dirichlet(0.5, 10)
    assert.ok(Math.abs(d.reduce((x, y) => x + y, 0) - 1) < 1e-12)
  })
})

describe('mnist', () => {
  it('loads 10,000 labelled 28x28 digits and splits them reproducibly', async () => {
    const all = await loadMnist()
    assert.equal(all.count, all.labels.length)
    assert.ok(all.count >= 9900, `count ${all.count}`)
    assert.equal(all.images.length, all.count * 784)
    const s1 = trainTestSplit(all, { seed: 3 })
    const s2 = trainTestSplit(all, { seed: 3 })
    assert.equal(s1.train.count, 8000)
    assert.equal(s1.test.count, 2000)
    assert.deepEqual(s1.test.labels, s2.test.labels)
    const counts = new Array(10).fill(0)
    for (const l of s1.train.labels) counts[l]++
    for (const c of counts) assert.ok(c > 600, `class count ${c}`)
  })
})
