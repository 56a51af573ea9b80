/**
 * Finite-difference gradient checks for graphs built with the graph builder, run with
 * onnxruntime-node (CPU). The checked function is L(θ) = Σ y(θ)·R for a fixed random R,
 * whose analytic gradient is the vector–Jacobian product that `gradients()` emits when
 * seeded with R.
 */
import * as ort from 'onnxruntime-node'
import { Rng } from '../../../../src/common/rng.js'
import {
  Graph,
  gradients,
  serializeGraph,
  type DType,
  type Value
} from '../../../../src/training/graph/index.js'

export interface CaseInput {
  name: string
  shape: number[]
  data: ArrayLike<number>
  dtype?: 'int64'
  /** Check the gradient with respect to this input (default true for float inputs). */
  trainable?: boolean
}

export interface GradCase {
  dtype: Exclude<DType, 'int64' | 'bool'>
  inputs: CaseInput[]
  build: (g: Graph, v: Record<string, Value>) => Value
  eps?: number
  rtol?: number
  atol?: number
  /** At most this many elements per input are checked by finite differences (sampled with a seed). */
  maxChecks?: number
  seed?: number
}

export interface GradReport {
  checked: number
  maxErr: number
  worst: string
  /** Largest |analytic gradient| over all checked inputs (to catch all-zero gradients). */
  maxGrad: number
}

function tensor(dtype: DType, data: ArrayLike<number>, shape: number[]): ort.Tensor {
  if (dtype === 'int64')
    return new ort.Tensor(
      'int64',
      BigInt64Array.from(data as number[], (x) => BigInt(x)),
      shape
    )
  if (dtype === 'double') return new ort.Tensor('float64', Float64Array.from(data), shape)
  return new ort.Tensor('float32', Float32Array.from(data), shape)
}

/** Build the case, compare analytic and central-difference gradients; throws on a mismatch. */
export async function gradCheck(c: GradCase): Promise<GradReport> {
  const rng = new Rng(c.seed ?? 1234)
  const eps = c.eps ?? (c.dtype === 'double' ? 1e-5 : 1e-2)
  const rtol = c.rtol ?? (c.dtype === 'double' ? 1e-6 : 2e-3)
  const atol = c.atol ?? (c.dtype === 'double' ? 1e-9 : 1e-4)
  const g = new Graph()
  const vals: Record<string, Value> = {}
  const trainable: CaseInput[] = []
  for (const i of c.inputs) {
    const isTrain = i.dtype !== 'int64' && i.trainable !== false
    vals[i.name] = g.input(i.name, i.dtype ?? c.dtype, i.shape, { requiresGrad: isTrain })
    if (isTrain) trainable.push(i)
  }
  const y = c.build(g, vals)
  const yShape = y.shape.map((d) => {
    if (typeof d !== 'number') throw new Error('gradCheck needs static output shapes')
    return d
  })
  const seed = g.input('__seed', c.dtype, yShape)
  const grads = gradients(
    g,
    [[y, seed]],
    trainable.map((i) => vals[i.name]!)
  )
  g.output(y, '__y')
  grads.forEach((d, k) => g.output(d, `__grad_${trainable[k]!.name}`))
  const session = await ort.InferenceSession.create(serializeGraph(g))

  const ySize = yShape.reduce((a, b) => a * b, 1)
  const r = Array.from({ length: ySize }, () => rng.gaussian())
  const data = new Map(c.inputs.map((i) => [i.name, Array.from(i.data)]))
  const feeds = (): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = { __seed: tensor(c.dtype, r, yShape) }
    for (const i of c.inputs) f[i.name] = tensor(i.dtype ?? c.dtype, data.get(i.name)!, i.shape)
    return f
  }
  const lossOf = (out: ort.InferenceSession.ReturnType): number => {
    const yd = out.__y!.data as Float32Array | Float64Array
    let s = 0
    for (let k = 0; k < ySize; k++) s += yd[k]! * r[k]!
    return s
  }

  const base = await session.run(feeds())
  let checked = 0
  let maxErr = 0
  let maxGrad = 0
  let worst = ''
  for (const inp of trainable) {
    const analytic = Array.from(base[`__grad_${inp.name}`]!.data as Float32Array | Float64Array)
    const size = inp.shape.reduce((a, b) => a * b, 1)
    if (analytic.length !== size)
      throw new Error(`gradient of ${inp.name} has ${analytic.length} values, want ${size}`)
    const scale = analytic.reduce((m, x) => Math.max(m, Math.abs(x)), 0)
    maxGrad = Math.max(maxGrad, scale)
    let idx = Array.from({ length: size }, (_, k) => k)
    const maxChecks = c.maxChecks ?? 40
    if (size > maxChecks) idx = rng.shuffle(idx).slice(0, maxChecks) as number[]
    const arr = data.get(inp.name)!
    for (const k of idx) {
      const x0 = arr[k]!
      arr[k] = x0 + eps
      const lp = lossOf(await session.run(feeds()))
      arr[k] = x0 - eps
      const lm = lossOf(await session.run(feeds()))
      arr[k] = x0
      const fd = (lp - lm) / (2 * eps)
      const err = Math.abs(fd - analytic[k]!)
      const tol = atol + rtol * Math.max(Math.abs(fd), scale)
      checked++
      if (err / tol > maxErr) {
        maxErr = err / tol
        worst = `${inp.name}[${k}]: analytic ${analytic[k]} vs numeric ${fd}`
      }
    }
  }
  if (maxErr > 1) throw new Error(`gradient mismatch (err/tol ${maxErr.toFixed(2)}): ${worst}`)
  return { checked, maxErr, worst, maxGrad }
}

/** `n` seeded standard-normal values. */
export function randn(n: number, seed: number, scale = 1): number[] {
  const rng = new Rng(seed)
  return Array.from({ length: n }, () => rng.gaussian() * scale)
}

/** `n` distinct values spaced by `step` in a seeded random order (no ties: safe for max and relu kinks). */
export function distinct(n: number, seed: number, step = 0.1, offset = 0): number[] {
  const xs = Array.from({ length: n }, (_, k) => offset + (k - n / 2) * step + step / 4)
  return new Rng(seed).shuffle(xs) as number[]
}
