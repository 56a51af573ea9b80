/**
 * Decentralized training rounds (gossip averaging, no coordinator). Each node trains H local
 * steps on its shards, stores its model content-addressed, announces
 * `{ job, round, weightsCid, samples, loss, receipt? }` on the job's updates topic, takes the
 * latest models of k peers (fetched by CID under a deadline), validates each (layout, finite
 * values, norm bound; rejects are reported with their reason), aggregates them with its own
 * and goes on. Stragglers never block a round for longer than the wait and fetch deadlines;
 * restarted nodes resume from their checkpoint and late joiners from the newest peer models
 * that validate. Jobs are JWTs signed by their creator, with content-addressed ids.
 * The protocol runs over three small interfaces (`UpdateBus`, `WeightStore`,
 * `CheckpointStore`): in memory for tests, over gossipsub + Helia in a node. See
 * docs/training-swarm.md.
 *
 * @example
 * ```ts
 * import { Identity, generateKeypair } from '../../identity/index.js'
 * import { MODELS } from '../graph/index.js'
 * import { fromTensors } from '../data/index.js'
 * import { MemoryCheckpointStore, MemoryHub, MemoryWeightStore, SwarmTrainer, createJob } from './index.js'
 *
 * const creator = Identity.fromKeypair(generateKeypair())
 * const { id, spec } = await createJob(creator, {
 *   name: 'mnist-mlp',
 *   model: MODELS.mlp,
 *   optimizer: { type: 'sgd', momentum: 0.9 },
 *   hyper: { lr: 0.05, batchSize: 32, H: 10, k: 3, rounds: 5 },
 *   dataset: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
 *   aggregation: 'mean',
 *   compression: 'int8',
 *   maxNorm: 50,
 *   seed: 1
 * })
 * const hub = new MemoryHub()
 * const store = new MemoryWeightStore()
 * const me = Identity.fromKeypair(generateKeypair())
 * const shard = fromTensors(new Float32Array(64 * 784), new Uint8Array(64), [784])
 * const node = new SwarmTrainer(
 *   { bus: hub.bus(me.did), store, checkpoints: new MemoryCheckpointStore(), train: shard },
 *   { job: spec, jobId: id, did: me.did, deterministic: true, joinWaitMs: 0, peerWaitMs: 100 }
 * )
 * const result = await node.run({ onRound: (s) => void s.peersUsed })
 * await node.stop()
 * void result.nextRound
 * ```
 */
export { SwarmTrainer } from './trainer.js'
export { maxModelBytes, type ResolvedSwarmOptions } from './options.js'
export {
  createJob,
  verifyJob,
  parseJobSpec,
  jobIdOf,
  jobAnnouncement,
  verifyJobAnnouncement,
  JobSpecSchema,
  JobHyperSchema,
  JobPrivacySchema,
  JobOuterSchema,
  JobAnnouncementSchema,
  isGptModel,
  type ClassifierJobSpec,
  type JobModel,
  type LmJobSpec,
  type JobSpec,
  type JobSpecInput,
  type SignedJob,
  type VerifiedJob,
  type VerifyJobOptions,
  type JobAnnouncement
} from './job.js'
export { UpdateAnnouncementSchema, epochOf, updatesTopic, type UpdateAnnouncement } from './messages.js'
export {
  roundSeed,
  concatDatasets,
  trainRound,
  type TrainRoundOptions,
  type TrainRoundResult
} from './round.js'
export { shareRound, type ShareInput, type SharedRound } from './share.js'
export {
  localRounds,
  modelParams,
  isTextShard,
  concatTokens,
  OuterOptimizer,
  LM_EVAL_WINDOWS,
  type LocalRounds,
  type LocalRoundsInit,
  type LocalRoundOptions,
  type LocalRoundResult,
  type LocalEvaluation,
  type ParamLayout,
  type ShardData,
  type TextShard
} from './local/index.js'
export {
  BYZANTINE_ATTACKS,
  byzantineTamper,
  flipLabels,
  parseByzantine,
  withheldCid,
  type ByzantineAttack,
  type ByzantineAttackKind,
  type ShareTamper,
  type TamperContext,
  type Tampered
} from './byzantine.js'
export { MemoryHub, MemoryWeightStore, MemoryCheckpointStore, rawCid } from './memory.js'
export {
  gossipUpdateBus,
  ContentWeightStore,
  FileCheckpointStore,
  type ContentWeightStoreInit
} from './adapters.js'
export type {
  UpdateBus,
  WeightStore,
  CheckpointStore,
  Checkpoint,
  AnnouncementSource,
  RoundRecord,
  RoundReceiptSigner,
  SwarmComponents,
  SwarmTrainerInit,
  RejectReason,
  RejectedModel,
  UnavailableModel,
  UsedModel,
  RoundStats,
  SwarmCounters,
  StartPoint,
  SwarmRunResult,
  SwarmRunOptions
} from './types.js'
export { emptyCounters } from './types.js'
export {
  JobError,
  SwarmOptionsError,
  SwarmStateError,
  ModelTooLargeError,
  type JobInvalidReason
} from './errors.js'
export {
  RoundReexecutor,
  DEFAULT_REEXEC_MAX_TRAINERS,
  type RoundReexecutorComponents,
  type RoundReexecutorInit,
  ReexecInputError,
  ReexecSpecError,
  ReexecUnsupportedError,
  ReexecClosedError,
  type ReexecInput
} from './reexec.js'
export * as swarmConstants from './constants.js'
export { REPRODUCIBLE_EP, PARALLEL_CPU_EP } from './constants.js'
