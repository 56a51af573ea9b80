/**
 * An RDP accountant that composes heterogeneous Sampled Gaussian Mechanism steps, one per dataset.
 */
import { z } from 'zod'
import { DEFAULT_ORDERS } from './constants.js'
import { AccountantStateError, PrivacyParameterError } from './errors.js'
import { computeRdp, rdpToEpsilon } from './rdp.js'

/** `steps` compositions of the SGM with sampling rate `q` and noise multiplier `sigma`. */
export interface SgmSteps {
  q: number
  sigma: number
  steps: number
}

/**
 * The persisted form of an accountant (JSON-safe). `rdp[i]` is the accumulated RDP at `orders[i]`; JSON has no
 * Infinity, so an infinite RDP (a step with σ = 0) is stored as `null`. `history` lists the steps taken, with
 * consecutive steps of equal (q, σ) merged.
 */
export interface RdpAccountantState {
  version: 1
  orders: number[]
  rdp: Array<number | null>
  history: SgmSteps[]
}

const stepsSchema = z.object({
  q: z.number().min(0).max(1),
  sigma: z.number().min(0),
  steps: z.number().min(0)
})
const stateSchema = z.object({
  version: z.literal(1),
  orders: z.array(z.number().gt(1)).min(1),
  rdp: z.array(z.number().min(0).nullable()),
  history: z.array(stepsSchema)
})

/**
 * The SGM step to give the accountant for one shared update privatized by `privatizeUpdate` with noise
 * multiplier σ (noise N(0, (σC)²) on an update clipped to norm C as a whole).
 *
 * - `unit: 'record'` (default): the guarantee is about one record. Two clipped updates each lie in the ball of
 *   radius C, so adding or removing one record moves the clipped update by up to 2C: the sensitivity is 2C and
 *   the noise multiplier relative to it is σ/2. `sampleRate` is the probability that a given record of those
 *   this node may use was in the round's data — the Poisson rate at which the round's records were drawn, and 1
 *   when the node uses its whole shard every round.
 * - `unit: 'contribution'`: the guarantee is about this node's whole contribution of the dataset (a neighbouring
 *   world is one where it contributes nothing, i.e. a zero update): sensitivity C, multiplier σ. `sampleRate` is
 *   then the probability that the node takes part in the round at all (usually 1).
 *
 * See docs/privacy-accounting.md.
 */
export function sharedUpdateStep(options: {
  sampleRate: number
  noiseMultiplier: number
  unit?: 'record' | 'contribution'
}): SgmSteps {
  const { sampleRate, noiseMultiplier, unit = 'record' } = options
  if (!(sampleRate >= 0 && sampleRate <= 1))
    throw new PrivacyParameterError('sampleRate', sampleRate, 'a number in [0, 1]')
  if (!(noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier))) {
    throw new PrivacyParameterError('noiseMultiplier', noiseMultiplier, 'a finite number ≥ 0')
  }
  return { q: sampleRate, sigma: unit === 'record' ? noiseMultiplier / 2 : noiseMultiplier, steps: 1 }
}

/**
 * Accumulates RDP over the orders it tracks. RDP composes by addition, so steps with different q and σ can be
 * mixed freely; ε is computed on demand for any δ.
 *
 * @example
 * ```ts
 * const acc = new RdpAccountant()
 * const round = sharedUpdateStep({ sampleRate: 0.25, noiseMultiplier: 2 }) // { q: 0.25, sigma: 1, steps: 1 }
 * if (!acc.wouldExceed(8, 1e-5, round)) {
 *   // … train on a Poisson(0.25) sample of the shard, privatizeUpdate with σ = 2, share …
 *   acc.step(round)
 * }
 * const saved = JSON.stringify(acc) // RdpAccountant.fromJSON(JSON.parse(saved)) restores it
 * ```
 */
export class RdpAccountant {
  /** The Rényi orders α tracked (frozen). */
  readonly orders: readonly number[]
  private readonly acc: number[]
  private readonly steps: SgmSteps[] = []
  /** RDP of one step for the last (q, σ) seen: rounds usually repeat them, and the series are not free. */
  private cache: { q: number; sigma: number; perStep: number[] } | undefined

  constructor(init: { orders?: readonly number[] } = {}) {
    const orders = init.orders ?? DEFAULT_ORDERS
    if (orders.length === 0) throw new PrivacyParameterError('orders', '[]', 'a non-empty list of orders > 1')
    computeRdp(0, 1, 0, orders) // validates the orders
    this.orders = Object.freeze([...orders])
    this.acc = orders.map(() => 0)
  }

  /** RDP of `next` at each tracked order (what `computeRdp` returns), via the per-step cache. */
  private rdpOf(next: SgmSteps): number[] {
    computeRdp(next.q, next.sigma, next.steps, []) // validates q, σ and steps
    if (next.steps === 0) return this.orders.map(() => 0)
    let c = this.cache
    if (c === undefined || c.q !== next.q || c.sigma !== next.sigma) {
      c = { q: next.q, sigma: next.sigma, perStep: computeRdp(next.q, next.sigma, 1, this.orders) }
      this.cache = c
    }
    return c.perStep.map((r) => r * next.steps)
  }

  /** Adds `steps` SGM steps with sampling rate `q` and noise multiplier `sigma`. */
  step(next: SgmSteps): void {
    const add = this.rdpOf(next)
    for (let i = 0; i < add.length; i++) this.acc[i]! += add[i]!
    const last = this.steps.at(-1)
    if (last !== undefined && last.q === next.q && last.sigma === next.sigma) last.steps += next.steps
    else this.steps.push({ q: next.q, sigma: next.sigma, steps: next.steps })
  }

  /** The accumulated RDP at each order (a copy). */
  get rdp(): number[] {
    return [...this.acc]
  }

  /** The steps taken so far (copies), consecutive steps with equal (q, σ) merged. */
  get history(): SgmSteps[] {
    return this.steps.map((s) => ({ ...s }))
  }

  /** The number of SGM steps composed so far. */
  get totalSteps(): number {
    return this.steps.reduce((n, s) => n + s.steps, 0)
  }

  /** The (ε, δ) spent so far for this δ, and the order α that attains it (see `rdpToEpsilon`). */
  getPrivacySpent(delta: number): { epsilon: number; order: number } {
    return rdpToEpsilon(this.orders, this.acc, delta)
  }

  /** ε spent so far at this δ. */
  getEpsilon(delta: number): number {
    return this.getPrivacySpent(delta).epsilon
  }

  /** ε that would be spent at this δ after also taking `next` (the accountant is not changed). */
  epsilonAfter(delta: number, next: SgmSteps): number {
    const add = this.rdpOf(next)
    return rdpToEpsilon(
      this.orders,
      this.acc.map((r, i) => r + add[i]!),
      delta
    ).epsilon
  }

  /**
   * True when taking `next` would bring ε (at this δ) above `epsMax`: the training loop asks before each round
   * and stops training on the dataset (throwing `PrivacyBudgetExceededError`) instead of taking it.
   */
  wouldExceed(epsMax: number, delta: number, next: SgmSteps): boolean {
    if (!(epsMax >= 0)) throw new PrivacyParameterError('epsMax', epsMax, 'a number ≥ 0')
    return this.epsilonAfter(delta, next) > epsMax
  }

  /** The JSON-safe state (infinite RDP values become `null`). */
  toJSON(): RdpAccountantState {
    return {
      version: 1,
      orders: [...this.orders],
      rdp: this.acc.map((r) => (Number.isFinite(r) ? r : null)),
      history: this.history
    }
  }

  /**
   * The accountant of releases that all touch the same records (e.g. several nodes granted the same shard): RDP
   * adds across them. Records in disjoint shards need no composition (each record's guarantee is that of the
   * releases that used it). All accountants must track the same orders.
   *
   * @throws PrivacyParameterError when the orders differ.
   */
  static compose(accountants: readonly RdpAccountant[]): RdpAccountant {
    const orders = accountants[0]?.orders ?? DEFAULT_ORDERS
    const out = new RdpAccountant({ orders })
    for (const a of accountants) {
      if (a.orders.length !== orders.length || a.orders.some((o, i) => o !== orders[i])) {
        throw new PrivacyParameterError(
          'orders',
          'different order lists',
          'the same orders in every accountant'
        )
      }
      a.acc.forEach((r, i) => (out.acc[i]! += r))
      out.steps.push(...a.history)
    }
    return out
  }

  /**
   * Restores an accountant from {@link RdpAccountant.toJSON}'s output. By default the stored RDP values are taken
   * as they are; with `recompute: true` they are rebuilt from the history (slower, but does not trust them).
   *
   * @throws AccountantStateError when the state does not validate.
   */
  static fromJSON(state: unknown, options: { recompute?: boolean } = {}): RdpAccountant {
    const parsed = stateSchema.safeParse(state)
    if (!parsed.success) {
      throw new AccountantStateError(
        parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      )
    }
    const s = parsed.data
    if (s.rdp.length !== s.orders.length) {
      throw new AccountantStateError([`rdp: ${s.rdp.length} values for ${s.orders.length} orders`])
    }
    const acc = new RdpAccountant({ orders: s.orders })
    if (options.recompute === true) {
      for (const step of s.history) acc.step(step)
    } else {
      s.rdp.forEach((r, i) => (acc.acc[i] = r ?? Infinity))
      for (const step of s.history) acc.steps.push({ ...step })
    }
    return acc
  }
}
