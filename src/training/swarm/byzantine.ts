/**
 * LAB TOOL — Byzantine trainers for benchmarks and tests (scripts/bench-byzantine.ts), never for a
 * real swarm. A node given an attack trains honestly but shares something else: its own
 * aggregation stays honest (it needs an honest model to craft from), only what it announces is
 * corrupted, and its receipt commits to what it announced, so peers accept the model as bound to
 * its receipt (re-execution by an auditor that can read the shard would convict it: benchmarks
 * of aggregation rules switch sampling off). The node wires it only from `SHOAL_LAB_BYZANTINE`
 * and refuses it on a node that listens beyond loopback (src/node/jobs/lab.ts).
 *
 * Attacks, with u = own model − round base (the honest update) and x the own model:
 * - `sign-flip[:s]`: base − s·u (default s = 1);
 * - `scale[:s]`: base + s·u, boosting (default s = 10);
 * - `noise[:σ]`: x + N(0, σ²) per coordinate (default σ = 1: ‖noise‖ ≈ 319 for the MLP);
 * - `alie[:z]`: "a little is enough" (Baruch et al. 2019): x − z·σⱼ per coordinate, σ the standard
 *   deviation of the honest peer models of the previous round (default z = 1);
 * - `ipm[:ε]`: inner-product manipulation (Xie et al. 2020): base − ε·u, the own update standing for
 *   the honest mean (default ε = 0.1);
 * - `label-flip`: data poisoning by a legitimate grantee: trains on labels c − 1 − y, shares honestly;
 * - `free-ride`: announces the newest peer model it aggregated as its own (training nothing of use);
 * - `withhold`: announces a model CID it never stores (peers wait for the fetch deadline).
 */
import { Rng, rawCid } from '../../common/index.js'
import type { Weights } from '../aggregate/index.js'
import type { TensorDataset } from '../data/index.js'
import { SwarmOptionsError } from './errors.js'

export const BYZANTINE_ATTACKS = [
  'sign-flip',
  'scale',
  'noise',
  'alie',
  'ipm',
  'label-flip',
  'free-ride',
  'withhold'
] as const

export type ByzantineAttackKind = (typeof BYZANTINE_ATTACKS)[number]

export interface ByzantineAttack {
  kind: ByzantineAttackKind
  /** The attack's strength: s, σ, z or ε (see the module doc); absent for the others. */
  param?: number
  /** Seed of the noise attack. */
  seed?: number
}

const DEFAULT_PARAM: Partial<Record<ByzantineAttackKind, number>> = {
  'sign-flip': 1,
  scale: 10,
  noise: 1,
  alie: 1,
  ipm: 0.1
}

/**
 * `kind[:param]`, e.g. `sign-flip`, `scale:10`, `alie:1.5`.
 *
 * @throws {SwarmOptionsError} (`SWARM_OPTIONS_INVALID`, option `byzantine`) for anything else.
 */
export function parseByzantine(text: string): ByzantineAttack {
  const [kind, raw, ...rest] = text.trim().split(':')
  if (!(BYZANTINE_ATTACKS as readonly string[]).includes(kind ?? '') || rest.length > 0) {
    throw new SwarmOptionsError(
      `unknown Byzantine attack ${JSON.stringify(text)}: one of ${BYZANTINE_ATTACKS.join(', ')}[:param]`,
      { option: 'byzantine', value: text }
    )
  }
  const k = kind as ByzantineAttackKind
  const def = DEFAULT_PARAM[k]
  if (raw === undefined) return def === undefined ? { kind: k } : { kind: k, param: def }
  const param = Number(raw)
  if (def === undefined || raw === '' || !Number.isFinite(param) || param < 0) {
    throw new SwarmOptionsError(`bad parameter ${JSON.stringify(raw)} for attack ${k}`, {
      option: 'byzantine',
      value: text
    })
  }
  return { kind: k, param }
}

/** What a Byzantine trainer knows when it shares round r. */
export interface TamperContext {
  round: number
  /** Its honest model after the local steps, and the round's base. */
  mine: Weights
  base: Weights
  /** The valid peer models it aggregated in its previous round (newest round first). */
  peers: readonly Weights[]
}

/** What a Byzantine trainer shares: a model, or nothing fetchable (`withhold`). */
export type Tampered = { weights: Map<string, Float32Array> } | { withhold: true }

/** A trainer component that corrupts what is shared (lab only). */
export interface ShareTamper {
  /** Whether to keep the models of the previous round for {@link TamperContext.peers}. */
  readonly needsPeers: boolean
  share(ctx: TamperContext): Tampered
}

function map(x: Weights, f: (name: string, i: number, v: number) => number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>()
  for (const [name, t] of x) {
    const r = new Float32Array(t.length)
    for (let i = 0; i < t.length; i++) r[i] = f(name, i, t[i]!)
    out.set(name, r)
  }
  return out
}

/** base + c·(mine − base). */
function alongUpdate(ctx: TamperContext, c: number): Map<string, Float32Array> {
  return map(ctx.mine, (name, i, v) => {
    const b = ctx.base.get(name)![i]!
    return b + c * (v - b)
  })
}

/** Per-coordinate standard deviation of the models (0 with fewer than two). */
function stdOf(models: readonly Weights[], name: string, i: number): number {
  const n = models.length
  if (n < 2) return 0
  let s = 0
  for (const m of models) s += m.get(name)![i]!
  const mu = s / n
  let v = 0
  for (const m of models) v += (m.get(name)![i]! - mu) ** 2
  return Math.sqrt(v / (n - 1))
}

/** The model-level part of an attack (`label-flip` shares honestly: its poison is in the data). */
export function byzantineTamper(attack: ByzantineAttack): ShareTamper {
  const p = attack.param ?? DEFAULT_PARAM[attack.kind] ?? 0
  const rng = new Rng(attack.seed ?? 0x5eed)
  const honest = (ctx: TamperContext): Tampered => ({ weights: new Map(ctx.mine) })
  const share: (ctx: TamperContext) => Tampered = {
    'sign-flip': (ctx: TamperContext): Tampered => ({ weights: alongUpdate(ctx, -p) }),
    scale: (ctx: TamperContext): Tampered => ({ weights: alongUpdate(ctx, p) }),
    ipm: (ctx: TamperContext): Tampered => ({ weights: alongUpdate(ctx, -p) }),
    noise: (ctx: TamperContext): Tampered => ({
      weights: map(ctx.mine, (_n, _i, v) => v + p * rng.gaussian())
    }),
    alie: (ctx: TamperContext): Tampered => {
      // Without two peer models to measure the honest spread, the own update's size stands in.
      const spread = ctx.peers.length >= 2
      return {
        weights: map(ctx.mine, (name, i, v) => {
          const s = spread ? stdOf(ctx.peers, name, i) : Math.abs(v - ctx.base.get(name)![i]!)
          return v - p * s
        })
      }
    },
    'label-flip': honest,
    'free-ride': (ctx: TamperContext): Tampered =>
      ctx.peers[0] !== undefined ? { weights: new Map(ctx.peers[0]) } : honest(ctx),
    withhold: (): Tampered => ({ withhold: true })
  }[attack.kind]
  return { needsPeers: attack.kind === 'alie' || attack.kind === 'free-ride', share }
}

/** A CID nobody stores, announced instead of the stored model's (unique per stored CID). */
export function withheldCid(storedCid: string): string {
  return rawCid(`withheld:${storedCid}`)
}

/** The dataset with every label y replaced by classes − 1 − y (label flipping). */
export function flipLabels(data: TensorDataset, classes: number): TensorDataset {
  const y = data.y.slice()
  for (let i = 0; i < y.length; i++) y[i] = classes - 1 - y[i]!
  return { ...data, y }
}
