/** Seeded parameter initialisation (He-normal weights, zero biases) and zeroed optimizer state. */
import { Rng } from '../../common/index.js'
import type { CompiledModel } from './model.js'

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** He-normal (std √(2/fanIn)) for 'he' params, zeros for 'zeros', drawn in param order from one seeded Rng. */
export function initParams(compiled: Pick<CompiledModel, 'params'>, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed)
  const out = new Map<string, Float32Array>()
  for (const p of compiled.params) {
    const data = new Float32Array(size(p.shape))
    if (p.init === 'he') {
      const std = Math.sqrt(2 / p.fanIn)
      for (let i = 0; i < data.length; i++) data[i] = rng.gaussian() * std
    }
    out.set(p.name, data)
  }
  return out
}

/** Zeroed optimizer state tensors (momentum buffers, Adam moments and step counter). */
export function initState(compiled: Pick<CompiledModel, 'state'>): Map<string, Float32Array> {
  return new Map(compiled.state.map((t) => [t.name, new Float32Array(size(t.shape))]))
}
