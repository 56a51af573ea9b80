/**
 * A job's DP-SGD plan (q, σ, C, δ over the planned steps) and the rounds it runs: the model compiled for
 * DP-SGD, the per-round secret noise keys and their commitments, and the receipt's record of them.
 */
import { createHash, randomBytes } from 'node:crypto'
import { logger } from '../../common/index.js'
import type { TensorDataset } from '../data/index.js'
import type { ModelSpec, OptimizerSpec } from '../graph/index.js'
import {
  PrivacyParameterError,
  RdpAccountant,
  dpsgdSteps,
  solveNoiseMultiplier,
  type SgmSteps
} from '../privacy/index.js'
import type { Trainer } from '../runtime/index.js'
import {
  LEGACY_NOISE_SAMPLER,
  NOISE_SAMPLER,
  NOISE_SAMPLERS,
  NOISE_SEED_DOMAIN,
  type NoiseSampler
} from './constants.js'
import { compileDpsgdModel, type DpsgdModel } from './graph.js'
import { checkDpsgdParameters, trainDpsgdRound, type DpsgdRoundResult } from './round.js'

const log = logger('shoal:training:dpsgd')

/** A job's `privacy` option in DP-SGD mode: exactly one of `noiseMultiplier` and `targetEpsilon`. */
export interface DpsgdPrivacy {
  mode: 'dp-sgd'
  clipNorm: number
  noiseMultiplier?: number | undefined
  targetEpsilon?: number | undefined
  delta: number
}

/** True for a `privacy` option in DP-SGD mode. */
export function isDpsgd(privacy: unknown): privacy is DpsgdPrivacy {
  return typeof privacy === 'object' && privacy !== null && (privacy as { mode?: unknown }).mode === 'dp-sgd'
}

/** What a node will do for its records: the resolved parameters and what the planned steps cost. */
export interface DpsgdPlan {
  clipNorm: number
  noiseMultiplier: number
  /** Poisson rate q = min(1, batchSize / N): the job's batch size is the expected batch. */
  sampleRate: number
  delta: number
  /** rounds × H. */
  plannedSteps: number
  /** Record-level ε at δ after the planned steps (0 when no number of rounds is planned). */
  epsilon: number
}

/**
 * Resolve a DP-SGD option for a node holding `records` records: q from the batch size, σ as given or solved
 * from `targetEpsilon` over `rounds × H` steps.
 *
 * @throws PrivacyParameterError for C, σ or δ out of range, no records, or `targetEpsilon` without planned
 *   rounds; TargetEpsilonUnreachableError when no σ reaches the target.
 */
export function planDpsgd(
  privacy: DpsgdPrivacy,
  opts: { records: number; batchSize: number; H: number; rounds: number }
): DpsgdPlan {
  if (!(Number.isInteger(opts.records) && opts.records >= 1))
    throw new PrivacyParameterError('records', opts.records, 'an integer ≥ 1')
  if (!(privacy.delta > 0 && privacy.delta < 1))
    throw new PrivacyParameterError('delta', privacy.delta, 'a number in (0, 1)')
  const given = privacy.noiseMultiplier !== undefined
  if (given === (privacy.targetEpsilon !== undefined)) {
    throw new PrivacyParameterError(
      'noiseMultiplier',
      given ? 'both noiseMultiplier and targetEpsilon' : 'neither',
      'exactly one of noiseMultiplier and targetEpsilon'
    )
  }
  const sampleRate = Math.min(1, opts.batchSize / opts.records)
  const plannedSteps = opts.rounds * opts.H
  const planned = Number.isInteger(plannedSteps) && plannedSteps >= 1
  if (!planned && privacy.targetEpsilon !== undefined)
    throw new PrivacyParameterError('rounds', opts.rounds, 'a planned number of rounds ≥ 1 (hyper.rounds)')
  const noiseMultiplier =
    privacy.noiseMultiplier ??
    solveNoiseMultiplier({
      sampleRate,
      steps: plannedSteps,
      targetEpsilon: privacy.targetEpsilon!,
      delta: privacy.delta
    })
  checkDpsgdParameters({ clipNorm: privacy.clipNorm, noiseMultiplier, sampleRate })
  const acc = new RdpAccountant()
  if (planned) acc.step(dpsgdSteps({ sampleRate, noiseMultiplier, steps: plannedSteps }))
  return {
    clipNorm: privacy.clipNorm,
    noiseMultiplier,
    sampleRate,
    delta: privacy.delta,
    plannedSteps,
    epsilon: acc.getEpsilon(privacy.delta)
  }
}

/** What a DP-SGD receipt records in `hyper.dp`: the parameters, and the commitment to the round's noise key. */
export interface DpsgdReceiptHyper {
  mode: 'dp-sgd'
  clipNorm: number
  noiseMultiplier: number
  sampleRate: number
  /** Lowercase hex sha-256 of the round's 32-byte noise key. */
  noise: string
  /** How the noise was drawn from the key's seed (absent in receipts from before: {@link LEGACY_NOISE_SAMPLER}). */
  sampler: NoiseSampler
}

/**
 * The sampler a verifier must re-run a DP-SGD receipt's round with: the one `hyper.dp.sampler` names, or
 * {@link LEGACY_NOISE_SAMPLER} when it names none; undefined for a name this node does not know (the round
 * cannot be re-executed here).
 */
export function noiseSamplerOf(dp: { sampler?: unknown }): NoiseSampler | undefined {
  if (dp.sampler === undefined) return LEGACY_NOISE_SAMPLER
  return NOISE_SAMPLERS.find((s) => s === dp.sampler)
}

/** The Rng seed of a round's noise, from its 32-byte key. */
export function noiseSeedOf(key: Uint8Array): number {
  return (
    (new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(0, false) ^ NOISE_SEED_DOMAIN) >>> 0
  )
}

/** The commitment to a noise key: lowercase hex sha-256. */
export function noiseCommitment(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex')
}

/** The SGM steps a DP-SGD round of `steps` steps adds for each record of the node's data. */
export function dpsgdRoundSteps(
  hyper: Pick<DpsgdReceiptHyper, 'sampleRate' | 'noiseMultiplier'>,
  steps: number
): SgmSteps {
  return dpsgdSteps({ sampleRate: hyper.sampleRate, noiseMultiplier: hyper.noiseMultiplier, steps })
}

/**
 * The DP-SGD rounds of one node in one job. The noise of round r comes from a 32-byte key derived from the
 * node's secret and (job, r); the receipt commits to the key's hash, and revealing one round's key (to a
 * verifier who may read the shard anyway) lets it re-run that round bit for bit without learning the others.
 */
export class DpsgdRounds {
  readonly model: DpsgdModel
  readonly plan: DpsgdPlan
  private readonly secret: Uint8Array
  private readonly jobId: string

  /**
   * @param secret the node's noise secret: 32 random bytes by default; a number derives one (tests only).
   * @throws as {@link planDpsgd}, and ModelSpecError / DpsgdGraphError from compiling the model.
   */
  constructor(init: {
    privacy: DpsgdPrivacy
    model: ModelSpec
    optimizer: OptimizerSpec
    jobId: string
    records: number
    batchSize: number
    H: number
    rounds: number
    secret?: Uint8Array | number | undefined
  }) {
    this.plan = planDpsgd(init.privacy, init)
    this.model = compileDpsgdModel(init.model, init.optimizer)
    this.jobId = init.jobId
    const s = init.secret
    this.secret =
      s === undefined
        ? randomBytes(32)
        : typeof s === 'number'
          ? createHash('sha256')
              .update(`shoal-dpsgd-test-secret:${s >>> 0}`)
              .digest()
          : Uint8Array.from(s)
    log.info({ job: init.jobId, ...this.plan }, 'DP-SGD plan')
  }

  /** The secret noise key of a round (reveal it only to a verifier allowed to read the round's data). */
  noiseKey(round: number): Uint8Array {
    return createHash('sha256').update(this.secret).update(`\0${this.jobId}\0${round}`).digest()
  }

  /** What the round's receipt records in `hyper.dp`. */
  receiptHyper(round: number): DpsgdReceiptHyper {
    const p = this.plan
    return {
      mode: 'dp-sgd',
      clipNorm: p.clipNorm,
      noiseMultiplier: p.noiseMultiplier,
      sampleRate: p.sampleRate,
      noise: noiseCommitment(this.noiseKey(round)),
      sampler: NOISE_SAMPLER
    }
  }

  /** Train round `round` (the trainer must run `this.model`). */
  async run(
    trainer: Trainer,
    data: TensorDataset,
    opts: {
      round: number
      seed: number
      lr: number
      H: number
      zeroState?: ReadonlyMap<string, Float32Array>
      signal?: AbortSignal
      beforeStep?: () => Promise<void>
    }
  ): Promise<DpsgdRoundResult> {
    const { round, ...rest } = opts
    return trainDpsgdRound(trainer, data, {
      ...rest,
      sampleRate: this.plan.sampleRate,
      clipNorm: this.plan.clipNorm,
      noiseMultiplier: this.plan.noiseMultiplier,
      noiseSeed: noiseSeedOf(this.noiseKey(round)),
      noiseSize: this.model.noiseSize,
      noiseSampler: NOISE_SAMPLER
    })
  }
}
