/**
 * Reverse-mode automatic differentiation over the graph's tape: walks the recorded
 * differentiable operations backwards from the loss, calls each op's gradient rule
 * (which emits backward nodes into the same graph) and sums gradients where a value
 * feeds several consumers.
 */
import { GraphBuildError } from './errors.js'
import { fmtShape, type Graph, type Value } from './graph.js'
import { add } from './ops.js'

/**
 * Gradients of `loss` with respect to each value of `wrt`. `loss` is either a scalar (seeded
 * with 1) or a list of `[value, seedGradient]` pairs (a vector–Jacobian product). Stops
 * recording: ops emitted afterwards (optimizer updates) are not differentiated.
 *
 * Thrown: GraphBuildError when a `wrt` value has no path to the loss or a seed's shape differs.
 */
export function gradients(
  g: Graph,
  loss: Value | ReadonlyArray<readonly [Value, Value]>,
  wrt: readonly Value[]
): Value[] {
  g.recording = false
  const grads = new Map<Value, Value>()
  const accumulate = (v: Value, d: Value): void => {
    const prev = grads.get(v)
    grads.set(v, prev === undefined ? d : add(g, prev, d))
  }
  if (Array.isArray(loss)) {
    for (const [v, seed] of loss as ReadonlyArray<readonly [Value, Value]>) {
      if (fmtShape(v.shape) !== fmtShape(seed.shape)) {
        throw new GraphBuildError(
          `seed ${fmtShape(seed.shape)} does not match ${v.name} ${fmtShape(v.shape)}`
        )
      }
      accumulate(v, seed)
    }
  } else {
    const l = loss as Value
    if (l.shape.length !== 0) throw new GraphBuildError(`loss must be a scalar, got ${fmtShape(l.shape)}`)
    accumulate(l, g.scalar(1, l.dtype))
  }

  for (let i = g.tape.length - 1; i >= 0; i--) {
    const entry = g.tape[i]!
    const dOuts = entry.outputs.map((o) => grads.get(o))
    if (dOuts.every((d) => d === undefined)) continue
    const dIns = entry.backward(dOuts)
    entry.inputs.forEach((v, k) => {
      const d = dIns[k]
      if (d !== undefined && v.requiresGrad) accumulate(v, d)
    })
  }

  return wrt.map((v) => {
    const d = grads.get(v)
    if (d === undefined)
      throw new GraphBuildError(`no gradient path from the loss to '${v.name}'`, { value: v.name })
    return d
  })
}
