/**
 * A SwarmTrainer's options: its init resolved against the job's defaults and checked
 * (`resolveOptions`), and the largest encoded model a node accepts (`maxModelBytes`).
 */
import { AGGREGATION_RULES, type AggregationRule, type CompressionKind } from '../aggregate/index.js'
import { shapeSize } from '../data/index.js'
import type { Device } from '../runtime/index.js'
import {
  DEFAULT_EVAL_EVERY,
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_JOIN_WAIT_MS,
  DEFAULT_PEER_WAIT_MS,
  DEFAULT_RETAIN_ROUNDS,
  DEFAULT_ROUNDS,
  MODEL_HEADER_SLACK_BYTES
} from './constants.js'
import { SwarmOptionsError } from './errors.js'
import type { JobSpec } from './job.js'
import type { SwarmTrainerInit } from './types.js'

/** The options of a SwarmTrainer with every default applied. */
export interface ResolvedSwarmOptions {
  rounds: number
  H: number
  k: number
  rule: AggregationRule
  trimFraction: number | undefined
  krumF: number | undefined
  compression: CompressionKind
  maxNorm: number
  batchSize: number
  lr: number
  seed: number
  fetchTimeoutMs: number
  peerWaitMs: number
  joinWaitMs: number
  evalEvery: number
  catchUp: boolean
  retainRounds: number
  requireReceipts: boolean
  epoch: string
  deterministic: boolean
  threads: number | undefined
  device: Device | undefined
  fallbackToCpu: boolean
}

/** The largest encoded model (float32, any header) a node accepts for these params. */
export function maxModelBytes(params: ReadonlyArray<{ shape: readonly number[] }>): number {
  return MODEL_HEADER_SLACK_BYTES + 4 * params.reduce((n, p) => n + shapeSize(p.shape), 0)
}

function positiveInt(value: number, option: string, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new SwarmOptionsError(`${option} must be an integer ≥ ${min}, got ${value}`, { option, value })
  }
  return value
}

function nonNegative(value: number, option: string): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new SwarmOptionsError(`${option} must be a finite number ≥ 0, got ${value}`, { option, value })
  }
  return value
}

/**
 * A SwarmTrainer's init with the job's values and the defaults filled in.
 *
 * @throws {SwarmOptionsError} for options that cannot work.
 */
export function resolveOptions(init: SwarmTrainerInit): ResolvedSwarmOptions {
  const job: JobSpec = init.job
  const lr = init.lr ?? job.hyper.lr
  const maxNorm = init.maxNorm ?? job.maxNorm
  if (!(lr > 0) || !Number.isFinite(lr)) {
    throw new SwarmOptionsError(`lr must be a finite number > 0, got ${lr}`, { option: 'lr', value: lr })
  }
  if (!(maxNorm > 0)) {
    throw new SwarmOptionsError(`maxNorm must be > 0, got ${maxNorm}`, { option: 'maxNorm', value: maxNorm })
  }
  const rule = init.rule ?? job.aggregation
  if (!(AGGREGATION_RULES as readonly string[]).includes(rule)) {
    throw new SwarmOptionsError(`unknown aggregation rule ${JSON.stringify(rule)}`, { option: 'rule' })
  }
  const compression = init.compression ?? job.compression
  if (compression !== 'none' && compression !== 'int8') {
    throw new SwarmOptionsError(`unknown compression ${JSON.stringify(compression)}`, {
      option: 'compression'
    })
  }
  return {
    rounds: positiveInt(init.rounds ?? job.hyper.rounds ?? DEFAULT_ROUNDS, 'rounds'),
    H: positiveInt(init.H ?? job.hyper.H, 'H'),
    k: positiveInt(init.k ?? job.hyper.k, 'k', 0),
    rule,
    trimFraction: init.trimFraction,
    krumF: init.krumF === undefined ? undefined : positiveInt(init.krumF, 'krumF', 0),
    compression,
    maxNorm,
    batchSize: positiveInt(init.batchSize ?? job.hyper.batchSize, 'batchSize'),
    lr,
    seed: (init.seed ?? job.seed) >>> 0,
    fetchTimeoutMs: nonNegative(init.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS, 'fetchTimeoutMs'),
    peerWaitMs: nonNegative(init.peerWaitMs ?? DEFAULT_PEER_WAIT_MS, 'peerWaitMs'),
    joinWaitMs: nonNegative(init.joinWaitMs ?? DEFAULT_JOIN_WAIT_MS, 'joinWaitMs'),
    evalEvery: positiveInt(init.evalEvery ?? DEFAULT_EVAL_EVERY, 'evalEvery'),
    catchUp: init.catchUp !== false,
    retainRounds: positiveInt(init.retainRounds ?? DEFAULT_RETAIN_ROUNDS, 'retainRounds'),
    requireReceipts: init.requireReceipts === true,
    epoch: init.epoch ?? '',
    deterministic: init.deterministic === true,
    threads: init.threads,
    device: init.device,
    fallbackToCpu: init.fallbackToCpu === true
  }
}
