/**
 * The kind-specific side of a swarm round, behind one small interface (`LocalRounds`): the
 * model's parameter layout, its runtime, a round's local steps and the held-out evaluation. The
 * round protocol (`SwarmTrainer`) is the same for every kind; a classifier trains on tensors
 * (`classifier.ts`), a GPT language model on token windows (`lm.ts`).
 */
import type { TensorDataset } from '../../data/index.js'
import type { ExecutionProviderName, SessionConfig } from '../../runtime/index.js'
import type { JobSpec } from '../job.js'
import type { ResolvedSwarmOptions } from '../options.js'
import type { TrainRoundResult } from '../round.js'

/** A text shard: its byte tokens (a language model's training or held-out data). */
export interface TextShard {
  tokens: Uint8Array
}

/** A shard as a SwarmTrainer takes it: tensors (classifiers) or tokens (language models). */
export type ShardData = TensorDataset | TextShard

/** Whether a shard is text (tokens) rather than tensors. */
export function isTextShard(d: ShardData): d is TextShard {
  return (d as Partial<TextShard>).tokens instanceof Uint8Array
}

/** A model's parameters, as weights are encoded, validated and hashed. */
export type ParamLayout = ReadonlyArray<{ name: string; shape: number[] }>

/** One round's local steps. */
export interface LocalRoundOptions {
  round: number
  /** The round's data-order seed (`roundSeed(seed, round)`). */
  seed: number
  H: number
  lr: number
  batchSize: number
  signal: AbortSignal
  /** Awaited before each step (to hold while paused). */
  beforeStep?: () => Promise<void>
}

/** What a round's local steps report. */
export type LocalRoundResult = Pick<
  TrainRoundResult,
  'steps' | 'samples' | 'loss' | 'lossBefore' | 'lossAfter' | 'ms'
>

/** Held-out figures after aggregation: `loss` (a classifier's cross-entropy, a language model's nats per token). */
export interface LocalEvaluation {
  loss: number
  accuracy?: number
}

/** The kind-specific work of a round (see the module doc). */
export interface LocalRounds {
  /** The model's parameters, in graph order. */
  readonly params: ParamLayout
  /** Where the local steps run (after `open`). */
  readonly executionProvider: ExecutionProviderName
  /** The job's seeded initial weights. */
  initialWeights(seed: number): Map<string, Float32Array>
  /** Create the runtime holding `weights` (idempotent). */
  open(weights: Map<string, Float32Array>, signal: AbortSignal): Promise<void>
  setWeights(weights: Map<string, Float32Array>): void
  /** A copy of the weights held. */
  getWeights(): Map<string, Float32Array>
  /** H local steps from the weights held, with a zeroed optimizer state. */
  train(opts: LocalRoundOptions): Promise<LocalRoundResult>
  /** The held-out evaluation of the weights held; undefined without held-out data. */
  evaluate(signal: AbortSignal): Promise<LocalEvaluation | undefined>
  /** What a round's receipt adds to its `hyper` (DP-SGD's parameters, a language model's schedule). */
  receiptHyper(round: number): Record<string, unknown>
  close(): Promise<void>
}

/** What a {@link LocalRounds} is built from. */
export interface LocalRoundsInit {
  job: JobSpec
  jobId: string
  /** The node's training shards (concatenated in this order). */
  train: ShardData | readonly ShardData[]
  test?: ShardData | undefined
  options: Pick<
    ResolvedSwarmOptions,
    'lr' | 'batchSize' | 'H' | 'rounds' | 'deterministic' | 'device' | 'fallbackToCpu' | 'threads'
  >
  /** DP-SGD's noise secret (tests only). */
  noiseSeed?: number | undefined
}

/** The runtime settings of a kind's trainer, from the swarm's options. */
export function sessionConfig(o: LocalRoundsInit['options']): SessionConfig {
  return {
    deterministic: o.deterministic,
    ...(o.device !== undefined ? { device: o.device } : {}),
    fallbackToCpu: o.fallbackToCpu,
    ...(o.threads !== undefined ? { intraOpNumThreads: o.threads } : {})
  }
}
