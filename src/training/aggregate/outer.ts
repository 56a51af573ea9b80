/**
 * DiLoCo's outer optimizer (Douillard et al., 2023): after H local steps, each node treats the
 * difference between its round's base and the aggregated model as a pseudo-gradient and takes
 * one Nesterov-momentum SGD step on the base, instead of adopting the plain average.
 *
 *   Δ = base − aggregate;  v ← μ·v + Δ;  next = base − lr·(Δ + μ·v)
 *
 * (PyTorch's `SGD(nesterov=True)`; DiLoCo uses lr 0.7, μ 0.9). With lr 1 and μ 0 the result is
 * the aggregate itself. Pure: inputs are not modified; float64 arithmetic, float32 results, so
 * every node computes the same bits from the same inputs.
 */
import { AggregationError } from './errors.js'
import type { Weights } from './rules.js'

export interface OuterNesterovOptions {
  /** Outer learning rate (DiLoCo: 0.7). */
  lr: number
  /** Nesterov momentum μ in [0, 1) (DiLoCo: 0.9). */
  momentum: number
}

/** DiLoCo's outer hyper-parameters. */
export const DILOCO_OUTER: OuterNesterovOptions = { lr: 0.7, momentum: 0.9 }

export interface OuterStep {
  /** The next round's base. */
  weights: Map<string, Float32Array>
  /** The momentum buffer to pass to the next outer step. */
  momentum: Map<string, Float32Array>
}

/**
 * One outer Nesterov step from the round's `base` towards `aggregate` (the mean, or any robust
 * rule's result, of the models of this round). `momentum` is the previous step's buffer, or
 * undefined (zeros) at the first round.
 *
 * @throws {AggregationError} AGGREGATION_INVALID when lr or momentum is out of range or the three
 *   maps do not have the same tensors and sizes.
 */
export function outerNesterovStep(
  base: Weights,
  aggregate: Weights,
  momentum: Weights | undefined,
  opts: OuterNesterovOptions = DILOCO_OUTER
): OuterStep {
  const { lr, momentum: mu } = opts
  if (!(Number.isFinite(lr) && lr > 0))
    throw new AggregationError(`outer lr must be finite and > 0, got ${lr}`, { lr })
  if (!(Number.isFinite(mu) && mu >= 0 && mu < 1))
    throw new AggregationError(`outer momentum must be in [0, 1), got ${mu}`, { momentum: mu })
  const names = [...base.keys()]
  const sameKeys = (m: Weights): boolean => m.size === names.length && names.every((n) => m.has(n))
  if (!sameKeys(aggregate) || (momentum !== undefined && !sameKeys(momentum))) {
    throw new AggregationError('outer step: base, aggregate and momentum must hold the same tensors', {
      base: names.length,
      aggregate: aggregate.size,
      momentum: momentum?.size ?? null
    })
  }
  const weights = new Map<string, Float32Array>()
  const velocity = new Map<string, Float32Array>()
  for (const name of names) {
    const b = base.get(name)!
    const a = aggregate.get(name)!
    const v0 = momentum?.get(name)
    if (a.length !== b.length || (v0 !== undefined && v0.length !== b.length)) {
      throw new AggregationError(`outer step: tensor '${name}' has different sizes`, {
        param: name,
        base: b.length,
        aggregate: a.length,
        momentum: v0?.length ?? null
      })
    }
    const w = new Float32Array(b.length)
    const v = new Float32Array(b.length)
    for (let i = 0; i < b.length; i++) {
      const delta = b[i]! - a[i]!
      const vi = mu * (v0 === undefined ? 0 : v0[i]!) + delta
      v[i] = vi
      w[i] = b[i]! - lr * (delta + mu * vi)
    }
    weights.set(name, w)
    velocity.set(name, v)
  }
  return { weights, momentum: velocity }
}
