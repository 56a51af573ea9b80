/**
 * The interfaces a SwarmTrainer works through (so that the protocol runs the same over an
 * in-memory hub in tests and over gossipsub + Helia in a node), its options and what it
 * reports.
 */
import type { Logger } from '../../common/index.js'
import type { PARALLEL_CPU_EP } from './constants.js'
import type { AggregationRule, CompressionKind } from '../aggregate/index.js'
import type { Device, ExecutionProviderName } from '../runtime/index.js'
import type { JobSpec } from './job.js'
import type { ShardData } from './local/index.js'
import type { UpdateAnnouncement } from './messages.js'
import type { ShareTamper } from './byzantine.js'

/** Who sent an announcement (the signer of the gossip message). */
export interface AnnouncementSource {
  did: string
}

/** The job's updates topic. */
export interface UpdateBus {
  /** Announce this node's model of a round. */
  publish(msg: UpdateAnnouncement): Promise<void>
  /** Receive peers' announcements; returns the function that stops it. */
  subscribe(handler: (msg: UpdateAnnouncement, from: AnnouncementSource) => void): () => void
}

/** Content-addressed storage of encoded models. */
export interface WeightStore {
  /** Store bytes; returns their CID (string form). */
  put(bytes: Uint8Array, signal?: AbortSignal): Promise<string>
  /** The bytes of a CID, local or fetched from peers. */
  get(cid: string, signal?: AbortSignal): Promise<Uint8Array>
  /** Optional: drop (unpin) an object this node stored and no longer needs. */
  remove?(cid: string): Promise<void>
}

/** One checkpoint: the weights a node holds after round `round`'s aggregation. */
export interface Checkpoint {
  job: string
  round: number
  /** CID of the weights in the SHOALWT1 format (`encodeWeights`), in the WeightStore. */
  weightsCid: string
  /** CID of the outer optimizer's momentum buffer after that round (SHOALWT1), when the job has one. */
  momentumCid?: string
  /** Held-out accuracy of those weights, when evaluated. */
  accuracy?: number
  /** Mean training loss of the round. */
  loss?: number
}

/** Where a node persists its latest checkpoint per job (it survives a restart). */
export interface CheckpointStore {
  save(cp: Checkpoint): Promise<void>
  latest(job: string): Promise<Pick<Checkpoint, 'round' | 'weightsCid' | 'momentumCid'> | undefined>
}

/** What a node did in one local round: the facts a receipt names. */
export interface RoundRecord {
  job: string
  round: number
  /** CID (SHOALWT1) of the weights the round started from. */
  baseCid: string
  /** CID of the model as announced (compressed, privatized when the job says so). */
  weightsCid: string
  /** The weights after the local steps (full precision, before compression and privacy). */
  weights: ReadonlyMap<string, Float32Array>
  hyper: { lr: number; batchSize: number; steps: number; optimizer: string }
  /** Seed of the round's data order (`roundSeed(seed, round)`). */
  seed: number
  samples: number
  steps: number
  /** Loss of the first and last local step. */
  lossBefore: number
  lossAfter: number
  /** The provider, with `cpu` only for a deterministic round (`REPRODUCIBLE_EP`), else `cpu-parallel`. */
  ep: ExecutionProviderName | typeof PARALLEL_CPU_EP
  /**
   * A non-bit-exact round's exact result weights (the announced encoding), published so that a
   * verifier can compare its CPU re-run within a tolerance; absent for deterministic rounds and
   * under differential privacy.
   */
  resultCid?: string
  /** Intra-op threads of a non-deterministic round. */
  threads?: number
}

/** Signs a receipt for a round; its JWT goes into the announcement (`receipt`). */
export interface RoundReceiptSigner {
  sign(record: RoundRecord, signal?: AbortSignal): Promise<string | undefined>
}

/** What a {@link SwarmTrainer} needs. */
export interface SwarmComponents {
  bus: UpdateBus
  store: WeightStore
  checkpoints: CheckpointStore
  /** This node's training shards (concatenated in this order): tensors, or text for a `gpt` job. */
  train: ShardData | readonly ShardData[]
  /** Held-out data evaluated after aggregation. */
  test?: ShardData
  /** Optional receipt signer (the node wires the receipts module and its shards/grants). */
  receipts?: RoundReceiptSigner
  /**
   * DIDs whose models are not used (e.g. convicted by a fraud proof): their announcements
   * are ignored from the moment `excluded` says so.
   */
  exclusions?: { excluded(did: string): boolean }
  /** Where the trainer logs (the node passes a child logger with its node id); default `logger('shoal:training:swarm')`. */
  log?: Logger
  /** LAB ONLY (benchmarks): corrupts what this node shares, as a Byzantine trainer (byzantine.ts). */
  tamper?: ShareTamper
}

/** Options of a {@link SwarmTrainer}; everything but `job`, `jobId` and `did` has a default. */
export interface SwarmTrainerInit {
  job: JobSpec
  /** The job's id (`jobIdOf(jwt)`): the `job` field of announcements. */
  jobId: string
  /** This node's did:key (its own announcements are ignored). */
  did: string
  /** Rounds of the job: the node stops after round `rounds − 1` (default `job.hyper.rounds` or 10). */
  rounds?: number
  /** Local steps per round (default `job.hyper.H`). */
  H?: number
  /** Peer models aggregated per round (default `job.hyper.k`). */
  k?: number
  /** Aggregation rule (default `job.aggregation`). */
  rule?: AggregationRule
  /** Trimmed mean: fraction trimmed per side (default 0.2). */
  trimFraction?: number
  /** Krum: assumed Byzantine models (default ⌊(n − 3) / 2⌋ for n models); multi-Krum averages n − f. */
  krumF?: number
  /** Compression of announced models (default `job.compression`). */
  compression?: CompressionKind
  /**
   * Use only peer models announced with a receipt (default false). A receipt must be signed by
   * the announcer for this job and round; when models travel uncompressed and without DP
   * noise, the model fetched must also hash to the receipt's `resultHash`.
   */
  requireReceipts?: boolean
  /**
   * The lineage epoch this node trains in (`epochOf(excluded grants)`, default ''): its
   * announcements carry it and announcements of other epochs are ignored.
   */
  epoch?: string
  /** Norm bound of a peer model minus the round base (default `job.maxNorm`). */
  maxNorm?: number
  batchSize?: number
  lr?: number
  /** Seed of the data order (default `job.seed`); the initial weights always use `job.seed`. */
  seed?: number
  /** Deadline of the round's peer-model fetches (ms). */
  fetchTimeoutMs?: number
  /** Longest wait for k peers to announce the round (ms). */
  peerWaitMs?: number
  /** Longest wait at start for announcements to join from, without a checkpoint (ms; 0: none). */
  joinWaitMs?: number
  /**
   * Catch up with the swarm (default true): after aggregating peer models whose lower-median
   * round r' is at least `CATCH_UP_LAG` (2) ahead, go on at round r' + 1 instead of r + 1, so
   * that a slow or restarted node skips the rounds the others have already done.
   */
  catchUp?: boolean
  /** Evaluate on `test` every this many rounds (and after the last). */
  evalEvery?: number
  /** Own rounds kept in the store before `WeightStore.remove` (default 2). */
  retainRounds?: number
  /** CPU, one thread: bit-reproducible local rounds (receipts re-execution needs it). */
  deterministic?: boolean
  /** Intra-op threads of the trainer (ignored when deterministic). */
  threads?: number
  device?: Device
  /** Train on the CPU (with a warning) when the requested GPU provider is missing or fails to start. */
  fallbackToCpu?: boolean
  /**
   * Seed of the differential-privacy noise. Random by default, and it must stay private: whoever
   * knows it can subtract the noise. Set it only to reproduce a run in tests.
   */
  noiseSeed?: number
}

/** Why a peer model was not aggregated although it was fetched. */
export type RejectReason =
  | 'UPDATE_SHAPE_MISMATCH'
  | 'UPDATE_NON_FINITE'
  | 'UPDATE_NORM_EXCEEDED'
  | 'UPDATE_DECODE_FAILED'
  | 'UPDATE_TOO_LARGE'
  | 'RECEIPT_MISSING' // requireReceipts, and the announcement carries none
  | 'RECEIPT_MISMATCH' // the announcement's receipt is invalid, or not the announcer's for this job and round
  | 'RESULT_MISMATCH' // the model announced is not the one its receipt commits to
  | 'RECEIPT_UNVERIFIABLE' // the job excludes rounds nobody can re-execute (`unverifiable: exclude`), and this is one

/** A rejected peer model. */
export interface RejectedModel {
  /** The announcer's DID. */
  from: string
  reason: RejectReason
  detail: string
  cid: string
  round: number
}

/** A peer model that could not be fetched in time. */
export interface UnavailableModel {
  from: string
  reason: 'FETCH_TIMEOUT' | 'FETCH_FAILED'
  cid: string
  round: number
}

/** A peer model that took part in the aggregation. */
export interface UsedModel {
  from: string
  cid: string
  round: number
}

/** Per-round report. */
export interface RoundStats {
  /** The round trained. */
  round: number
  /** The round this node trains next: `round + 1`, or later after catching up with peers. */
  nextRound: number
  /** Mean training loss of the local steps (NaN when none ran). */
  loss: number
  /** Held-out accuracy and loss after aggregation, when evaluated. */
  accuracy?: number
  testLoss?: number
  steps: number
  samples: number
  peersUsed: number
  peers: UsedModel[]
  rejected: RejectedModel[]
  unavailable: UnavailableModel[]
  /** The rule actually applied (a fallback when the configured one cannot run on so few models). */
  rule: AggregationRule | 'own'
  /** CID of the announced model and of the checkpoint. */
  weightsCid: string
  checkpointCid: string
  /** Compressed model bytes announced / fetched in this round. */
  bytesSent: number
  bytesReceived: number
  /** Time in local steps, in the network (store, announce, wait, fetch), in decode/validate/aggregate. */
  trainMs: number
  netMs: number
  aggMs: number
}

/** Cumulative counters of a SwarmTrainer. */
export interface SwarmCounters {
  rounds: number
  bytesSent: number
  bytesReceived: number
  announcementsReceived: number
  /** Rejected peer models by reason. */
  rejected: Partial<Record<RejectReason, number>>
  /** Peer models not fetched in time, or whose fetch failed. */
  unavailable: number
  /** A peer announced two models for one round; the first is kept. */
  equivocations: number
  /** Announcements ignored because their announcer is excluded (`components.exclusions`). */
  excluded: number
  /** Announcements ignored because they belong to another lineage epoch (before or after an unlearning). */
  otherEpoch: number
}

/** Counters of a trainer that has done nothing yet. */
export function emptyCounters(): SwarmCounters {
  return {
    rounds: 0,
    bytesSent: 0,
    bytesReceived: 0,
    announcementsReceived: 0,
    rejected: {},
    unavailable: 0,
    equivocations: 0,
    excluded: 0,
    otherEpoch: 0
  }
}

/** Where a run started from. */
export interface StartPoint {
  source: 'initial' | 'checkpoint' | 'peers'
  /** The first round this run trains. */
  round: number
  /** With `peers`: the peer models it joined from. */
  peers?: UsedModel[]
}

/** How {@link SwarmTrainer.run} ended. */
export interface SwarmRunResult {
  start: StartPoint
  /** The next round this node would train. */
  nextRound: number
  roundsRun: number
  /** `budget`: `maxRounds` local rounds were trained (e.g. a privacy budget's allowance). */
  stopped: 'done' | 'aborted' | 'target' | 'budget'
  /** Last held-out accuracy, when evaluated. */
  accuracy?: number
}

/** Options of {@link SwarmTrainer.run}. */
export interface SwarmRunOptions {
  /** Stops the run between steps; `run` then resolves with `stopped: 'aborted'`. */
  signal?: AbortSignal
  /** Called (and awaited) after each round. */
  onRound?: (stats: RoundStats) => void | Promise<void>
  /** Train at most this many local rounds in this run, then stop with `budget` (default no limit). */
  maxRounds?: number
}
