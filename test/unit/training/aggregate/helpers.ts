import assert from 'node:assert/strict'
import { Rng } from '../../../../src/common/rng.js'

export type Model = Map<string, Float32Array>

/** A model with tensors `a` (length la) and `b` (length lb): center + sigma · N(0, 1). */
export function gaussianModel(seed: number, center = 0, sigma = 1, la = 12, lb = 5): Model {
  const rng = new Rng(seed)
  const t = (n: number): Float32Array =>
    Float32Array.from({ length: n }, () => center + sigma * rng.gaussian())
  return new Map([
    ['b', t(lb)],
    ['a', t(la)]
  ])
}

/** Same names and bit-identical values (and the same name order). */
export function assertBitIdentical(x: Model, y: Model): void {
  assert.deepEqual([...x.keys()], [...y.keys()])
  for (const [name, t] of x) {
    const u = y.get(name)!
    assert.deepEqual(
      new Uint8Array(t.buffer, t.byteOffset, t.byteLength),
      new Uint8Array(u.buffer, u.byteOffset, u.byteLength),
      `tensor ${name} differs`
    )
  }
}

export function maxAbsDiff(x: Model, y: Model): number {
  let m = 0
  for (const [name, t] of x) {
    const u = y.get(name)!
    for (let i = 0; i < t.length; i++) m = Math.max(m, Math.abs(t[i]! - u[i]!))
  }
  return m
}
