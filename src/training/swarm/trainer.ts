/**
 * `SwarmTrainer`: one node's side of gossip averaging, with no coordinator.
 *
 * Each round r: train H local steps from the round's base → store the model (compressed,
 * content-addressed) → announce `{ job, round, weightsCid, samples, loss, receipt? }` → wait
 * (bounded) for k peers to announce round r → fetch the chosen peer models (one deadline for
 * all) → decode and validate each (layout, finite values, ‖model − base‖ ≤ maxNorm; a reject
 * is reported with its reason and skipped) → aggregate them with the node's own model →
 * evaluate → checkpoint → round r + 1. See docs/training-swarm.md.
 */
import { randomInt } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { hasCode, logger } from '../../common/index.js'
import { Rng } from '../../common/rng.js'
import {
  aggregate,
  AggregationError,
  decodeCompressed,
  encodeCompressed,
  UpdateDecodeError,
  UpdateRejectedError,
  validateUpdate,
  type AggregationRule,
  type CompressionKind,
  type Weights
} from '../aggregate/index.js'
import { shapeSize, type TensorDataset } from '../data/index.js'
import { decodeWeights, encodeWeights } from '../export/index.js'
import { compileModel, initParams, initState, type CompiledModel } from '../graph/index.js'
import { applyUpdate, diffWeights, privatizeUpdate } from '../privacy/index.js'
import { DpsgdRounds, isDpsgd } from '../dpsgd/index.js'
import { Trainer, type Device } from '../runtime/index.js'
import {
  DEFAULT_EVAL_EVERY,
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_JOIN_WAIT_MS,
  DEFAULT_PEER_WAIT_MS,
  DEFAULT_RETAIN_ROUNDS,
  DEFAULT_ROUNDS,
  MAX_TRACKED_PEERS,
  MODEL_HEADER_SLACK_BYTES,
  CATCH_UP_LAG,
  PARALLEL_CPU_EP,
  REPRODUCIBLE_EP
} from './constants.js'
import { claimedResultHash, resultHash, verifySignature } from '../receipts/index.js'
import { ModelTooLargeError, ReceiptBindingError, SwarmOptionsError, SwarmStateError } from './errors.js'
import type { JobSpec } from './job.js'
import { UpdateAnnouncementSchema, type UpdateAnnouncement } from './messages.js'
import { concatDatasets, roundSeed, trainRound } from './round.js'
import type {
  AnnouncementSource,
  RejectedModel,
  RejectReason,
  RoundStats,
  StartPoint,
  SwarmComponents,
  SwarmCounters,
  SwarmRunOptions,
  SwarmRunResult,
  SwarmTrainerInit,
  UnavailableModel,
  UsedModel
} from './types.js'

const log = logger('shoal:training:swarm')

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
}

interface PeerEntry {
  did: string
  msg: UpdateAnnouncement
}

type Fetched = { peer: PeerEntry; bytes: Uint8Array } | { peer: PeerEntry; error: unknown; timedOut: boolean }

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

function resolveOptions(init: SwarmTrainerInit): ResolvedSwarmOptions {
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
  if (!['mean', 'trimmed-mean', 'median', 'krum'].includes(rule)) {
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
    device: init.device
  }
}

/** A 32-bit hash of a string (FNV-1a), to derive per-node seeds. */
function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** `promise`, or the signal's reason as soon as it aborts (even if `promise` never settles). */
async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  promise.catch(() => {}) // a late rejection after the abort is not unhandled
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

/** The lower median of some numbers (−1 for none). */
function lowerMedian(values: number[]): number {
  if (values.length === 0) return -1
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

function rejectReason(err: unknown): RejectReason | undefined {
  if (err instanceof UpdateRejectedError || err instanceof ReceiptBindingError) return err.code
  if (err instanceof UpdateDecodeError) return 'UPDATE_DECODE_FAILED'
  if (hasCode(err, 'UPDATE_TOO_LARGE')) return 'UPDATE_TOO_LARGE'
  return undefined
}

/**
 * One node of a gossip-averaging job.
 *
 * @example
 * ```ts
 * const node = new SwarmTrainer(
 *   { bus, store, checkpoints, train: shard, test },
 *   { job: spec, jobId: id, did: me.did, deterministic: true }
 * )
 * const result = await node.run({ signal, onRound: (s) => log.info({ round: s.round, accuracy: s.accuracy }) })
 * await node.stop()
 * ```
 */
export class SwarmTrainer {
  readonly jobId: string
  readonly did: string
  readonly job: JobSpec
  readonly options: ResolvedSwarmOptions
  readonly compiled: CompiledModel

  private readonly bus: SwarmComponents['bus']
  private readonly store: SwarmComponents['store']
  private readonly checkpoints: SwarmComponents['checkpoints']
  private readonly receipts: SwarmComponents['receipts']
  private readonly exclusions: SwarmComponents['exclusions']
  private readonly data: TensorDataset
  private readonly test: TensorDataset | undefined
  private readonly zeroState: Map<string, Float32Array>
  private readonly maxBytes: number
  private readonly noiseRng: Rng
  /** The job's DP-SGD rounds (its plan solved before any round), when its privacy mode is dp-sgd. */
  readonly dpsgd: DpsgdRounds | undefined
  private readonly lifetime = new AbortController()

  private trainer: Trainer | undefined
  private base: Map<string, Float32Array> | undefined
  private baseCid: string | undefined
  private nextRound = 0
  private startPoint: StartPoint | undefined
  private starting: Promise<void> | undefined
  private running: Promise<unknown> | undefined
  private stopped = false
  private unsubscribe: (() => void) | undefined
  private paused = false
  private holding = false
  private readonly resumeWaiters = new Set<() => void>()
  private readonly peers = new Map<string, PeerEntry>()
  /** The CID of each peer's model last fetched (used, rejected or timed out): not tried again. */
  private readonly attempted = new Map<string, string>()
  private readonly announceWaiters = new Set<() => void>()
  private readonly retained: Array<{ round: number; cids: string[] }> = []
  private lastAccuracy: number | undefined
  private readonly totals: SwarmCounters = {
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

  /**
   * @throws {SwarmOptionsError} for options that cannot work or data that does not fit the model.
   * @throws {ModelSpecError} / {OptimizerSpecError} from compiling the job's model.
   */
  constructor(components: SwarmComponents, init: SwarmTrainerInit) {
    this.job = init.job
    this.jobId = init.jobId
    this.did = init.did
    this.options = resolveOptions(init)
    this.bus = components.bus
    this.store = components.store
    this.checkpoints = components.checkpoints
    this.receipts = components.receipts
    this.exclusions = components.exclusions
    this.data = concatDatasets(components.train)
    const p = this.job.privacy
    this.dpsgd = isDpsgd(p)
      ? new DpsgdRounds({
          ...this.options,
          privacy: p,
          model: this.job.model,
          optimizer: this.job.optimizer,
          jobId: this.jobId,
          records: this.data.count,
          secret: init.noiseSeed
        })
      : undefined
    this.compiled = this.dpsgd?.model ?? compileModel(this.job.model, this.job.optimizer)
    this.test = components.test
    const inputSize = shapeSize(this.job.model.input)
    for (const [name, d] of [
      ['train', this.data],
      ['test', this.test]
    ] as const) {
      if (d !== undefined && shapeSize(d.sampleShape) !== inputSize) {
        throw new SwarmOptionsError(
          `${name} samples of [${d.sampleShape.join(', ')}] do not fit model input [${this.job.model.input.join(', ')}]`,
          { option: name }
        )
      }
    }
    this.zeroState = initState(this.compiled)
    this.maxBytes = maxModelBytes(this.compiled.params)
    // DP noise must be unpredictable to others: a private seed, random unless given (tests).
    this.noiseRng = new Rng(init.noiseSeed ?? randomInt(0, 2 ** 32 - 1))
  }

  /** The next round this node will train (after a restart: its checkpoint's round + 1). */
  get round(): number {
    return this.nextRound
  }

  /** Where this node started from (after `start`). */
  get startedFrom(): StartPoint | undefined {
    return this.startPoint
  }

  /** Cumulative counters (a copy). */
  get counters(): SwarmCounters {
    return { ...this.totals, rejected: { ...this.totals.rejected } }
  }

  /** Whether `pause()` is in effect. */
  get isPaused(): boolean {
    return this.paused
  }

  /** Whether training is paused and waiting (the step in progress, if any, has finished). */
  get isHeld(): boolean {
    return this.holding
  }

  /** A copy of the node's current model (its latest aggregate), once started. */
  weights(): Map<string, Float32Array> | undefined {
    return this.base === undefined ? undefined : new Map([...this.base].map(([n, t]) => [n, t.slice()]))
  }

  /** The latest announcement of each peer, by DID (copies). */
  peerAnnouncements(): Map<string, UpdateAnnouncement> {
    return new Map([...this.peers].map(([did, p]) => [did, { ...p.msg }]))
  }

  /** Hold local training before its next step (announcements are still received). */
  pause(): void {
    if (!this.paused) log.info({ job: this.jobId }, 'paused')
    this.paused = true
  }

  /** Continue after `pause()`. */
  resume(): void {
    if (this.paused) log.info({ job: this.jobId }, 'resumed')
    this.paused = false
    for (const wake of [...this.resumeWaiters]) wake()
  }

  /**
   * Subscribe to the job's announcements, create the trainer and pick the starting point:
   * the node's own checkpoint if it verifies, else (after waiting up to `joinWaitMs`) the
   * newest announced peer models that validate, else the job's initial weights. Idempotent;
   * `run` calls it.
   */
  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.stopped) throw new SwarmStateError('SWARM_STOPPED', 'swarm trainer is stopped')
    this.starting ??= this.doStart(opts.signal ?? this.lifetime.signal)
    try {
      await this.starting
    } catch (err) {
      this.starting = undefined
      throw err
    }
  }

  /**
   * Stop: ends a run in progress (it resolves as aborted), unsubscribes and releases the
   * trainer. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.lifetime.abort(new SwarmStateError('SWARM_STOPPED', 'swarm trainer stopped'))
    this.resume()
    await this.running?.catch(() => {})
    await this.starting?.catch(() => {})
    this.unsubscribe?.()
    this.unsubscribe = undefined
    await this.trainer?.close()
    this.trainer = undefined
  }

  /**
   * Run rounds until round `rounds − 1` is done, the signal aborts (resolves with `stopped:
   * 'aborted'`; the round in progress is dropped, the last checkpoint stays) or the job's
   * `targetAccuracy` is reached.
   *
   * @throws {SwarmStateError} `SWARM_BUSY` while another run is in progress, `SWARM_STOPPED` after `stop()`.
   */
  async run(opts: SwarmRunOptions = {}): Promise<SwarmRunResult> {
    if (this.stopped) throw new SwarmStateError('SWARM_STOPPED', 'swarm trainer is stopped')
    if (this.running !== undefined) throw new SwarmStateError('SWARM_BUSY', 'a run is already in progress')
    const p = this.doRun(opts)
    this.running = p
    try {
      return await p
    } finally {
      this.running = undefined
    }
  }

  // ---------------------------------------------------------------------------------------

  private async doRun(opts: SwarmRunOptions): Promise<SwarmRunResult> {
    const signal =
      opts.signal === undefined ? this.lifetime.signal : AbortSignal.any([opts.signal, this.lifetime.signal])
    let roundsRun = 0
    const result = (stopped: SwarmRunResult['stopped']): SwarmRunResult => ({
      start: this.startPoint ?? { source: 'initial', round: this.nextRound },
      nextRound: this.nextRound,
      roundsRun,
      stopped,
      ...(this.lastAccuracy !== undefined ? { accuracy: this.lastAccuracy } : {})
    })
    try {
      await this.start({ signal })
    } catch (err) {
      if (signal.aborted) return result('aborted')
      throw err
    }
    const first = this.nextRound
    const target = this.job.hyper.targetAccuracy
    const maxRounds = opts.maxRounds ?? Infinity
    while (this.nextRound < this.options.rounds) {
      if (signal.aborted) break
      if (roundsRun >= maxRounds) {
        log.info({ job: this.jobId, roundsRun, nextRound: this.nextRound }, 'round allowance spent; stopping')
        return result('budget')
      }
      let stats: RoundStats
      try {
        stats = await this.runRound(this.nextRound, this.nextRound === first, signal)
      } catch (err) {
        if (signal.aborted) break
        throw err
      }
      this.nextRound = stats.nextRound
      roundsRun++
      await opts.onRound?.(stats)
      if (target !== undefined && stats.accuracy !== undefined && stats.accuracy >= target) {
        log.info({ job: this.jobId, round: stats.round, accuracy: stats.accuracy }, 'target accuracy reached')
        return result('target')
      }
    }
    if (this.nextRound < this.options.rounds) {
      log.info({ job: this.jobId, nextRound: this.nextRound }, 'run aborted')
      return result('aborted')
    }
    return result('done')
  }

  private async doStart(signal: AbortSignal): Promise<void> {
    this.unsubscribe ??= this.bus.subscribe((msg, from) => this.onAnnouncement(msg, from))
    const initial = await this.initialWeights(signal)
    this.trainer ??= await Trainer.create(this.compiled, {
      weights: initial,
      deterministic: this.options.deterministic,
      ...(this.options.device !== undefined ? { device: this.options.device } : {}),
      ...(this.options.threads !== undefined ? { intraOpNumThreads: this.options.threads } : {}),
      signal
    })
    if (await this.restoreCheckpoint(signal)) return
    if (this.options.joinWaitMs > 0 && this.options.k > 0 && this.peers.size === 0) {
      await this.waitForAnnouncement(this.options.joinWaitMs, signal)
    }
    if (this.peers.size > 0 && (await this.joinFromPeers(signal))) return
    this.base = initial
    this.baseCid = await this.store.put(encodeWeights(initial, this.compiled.params), signal)
    this.nextRound = 0
    this.startPoint = { source: 'initial', round: 0 }
    this.retained.push({ round: -1, cids: [this.baseCid] })
    log.info({ job: this.jobId, did: this.did }, 'starting from the initial weights')
  }

  /** The job's starting weights: its `init` model (fetched and validated), else seeded ones. */
  private async initialWeights(signal: AbortSignal): Promise<Map<string, Float32Array>> {
    if (this.job.init === undefined) return initParams(this.compiled, this.job.seed)
    const weights = decodeWeights(await this.store.get(this.job.init, signal))
    validateUpdate(weights, this.compiled)
    log.info({ job: this.jobId, init: this.job.init }, 'starting from the job’s initial model')
    return weights
  }

  private async restoreCheckpoint(signal: AbortSignal): Promise<boolean> {
    const cp = await this.checkpoints.latest(this.jobId)
    if (cp === undefined) return false
    try {
      const bytes = await this.store.get(cp.weightsCid, signal)
      const weights = decodeWeights(bytes)
      validateUpdate(weights, this.compiled)
      this.install(weights)
      this.baseCid = cp.weightsCid
      this.nextRound = cp.round + 1
      this.startPoint = { source: 'checkpoint', round: this.nextRound }
      this.retained.push({ round: cp.round, cids: [cp.weightsCid] })
      log.info({ job: this.jobId, round: cp.round, cid: cp.weightsCid }, 'resuming from checkpoint')
      return true
    } catch (err) {
      if (signal.aborted) throw err
      log.warn(
        { job: this.jobId, round: cp.round, cid: cp.weightsCid, err: (err as Error).message },
        'checkpoint does not verify; ignoring it'
      )
      return false
    }
  }

  /** Join a running job from the newest announced peer models that validate. */
  private async joinFromPeers(signal: AbortSignal): Promise<boolean> {
    const candidates = [...this.peers.values()]
      .sort((a, b) => b.msg.round - a.msg.round || (a.did < b.did ? -1 : 1))
      .slice(0, Math.max(1, this.options.k))
    for (const p of candidates) this.attempted.set(p.did, p.msg.weightsCid)
    const fetched = await this.fetchAll(candidates, signal)
    const valid: Array<{ peer: PeerEntry; weights: Map<string, Float32Array> }> = []
    for (const f of fetched) {
      if (!('bytes' in f)) continue
      try {
        const weights = decodeCompressed(f.bytes)
        // No base to bound the norm against: a joiner checks layout and finiteness only.
        validateUpdate(weights, this.compiled)
        valid.push({ peer: f.peer, weights })
      } catch (err) {
        log.warn({ from: f.peer.did, err: (err as Error).message }, 'peer model refused for joining')
      }
    }
    if (valid.length === 0) return false
    valid.sort((a, b) => (a.peer.did < b.peer.did ? -1 : 1))
    const { weights } = this.combine(valid.map((v) => v.weights))
    const round = Math.max(...valid.map((v) => v.peer.msg.round))
    this.install(weights)
    this.baseCid = await this.store.put(encodeWeights(weights, this.compiled.params), signal)
    this.nextRound = round + 1
    const peers = valid.map((v) => ({
      from: v.peer.did,
      cid: v.peer.msg.weightsCid,
      round: v.peer.msg.round
    }))
    this.startPoint = { source: 'peers', round: this.nextRound, peers }
    this.retained.push({ round, cids: [this.baseCid] })
    log.info({ job: this.jobId, round: this.nextRound, peers: peers.length }, 'joined from peer models')
    return true
  }

  private install(weights: Map<string, Float32Array>): void {
    this.base = weights
    this.trainer!.setWeights(weights)
  }

  private async runRound(r: number, first: boolean, signal: AbortSignal): Promise<RoundStats> {
    const trainer = this.trainer!
    const base = this.base!
    const o = this.options
    const seed = roundSeed(o.seed, r)

    // 1. local steps
    const steps = { H: o.H, lr: o.lr, seed, zeroState: this.zeroState, signal }
    const beforeStep = async (): Promise<void> => this.holdWhilePaused(signal)
    const local = await (this.dpsgd?.run(trainer, this.data, { ...steps, round: r, beforeStep }) ??
      trainRound(trainer, this.data, { ...steps, batchSize: o.batchSize, beforeStep }))
    const mine = trainer.getWeights()

    // 2. store and announce the shared model
    let t = performance.now()
    let shared: Map<string, Float32Array> = mine
    const privacy = this.job.privacy
    if (privacy !== undefined && privacy !== null && !isDpsgd(privacy)) {
      const { update } = privatizeUpdate(diffWeights(mine, base), {
        clipNorm: privacy.clipNorm,
        noiseMultiplier: privacy.noiseMultiplier,
        rng: this.noiseRng
      })
      shared = applyUpdate(base, update)
    }
    const bytes = encodeCompressed(shared, o.compression, this.compiled.params)
    let aggMs = performance.now() - t
    t = performance.now()
    const weightsCid = await this.store.put(bytes, signal)
    const receipt = await this.receipts?.sign(
      {
        job: this.jobId,
        round: r,
        baseCid: this.baseCid!,
        weightsCid,
        weights: mine,
        hyper: {
          lr: o.lr,
          batchSize: o.batchSize,
          steps: o.H,
          optimizer: this.job.optimizer.type,
          ...(this.dpsgd !== undefined ? { dp: this.dpsgd.receiptHyper(r) } : {})
        },
        seed,
        samples: local.samples,
        steps: local.steps,
        lossBefore: local.lossBefore,
        lossAfter: local.lossAfter,
        ep:
          trainer.executionProvider === REPRODUCIBLE_EP && !o.deterministic
            ? PARALLEL_CPU_EP
            : trainer.executionProvider
      },
      signal
    )
    const msg: UpdateAnnouncement = {
      type: 'update',
      job: this.jobId,
      round: r,
      weightsCid,
      samples: local.samples
    }
    if (Number.isFinite(local.loss)) msg.loss = local.loss
    if (o.epoch !== '') msg.epoch = o.epoch
    if (receipt !== undefined) msg.receipt = receipt
    await this.bus.publish(msg)
    this.totals.bytesSent += bytes.length

    // 3. peer models
    await this.waitForPeers(r, first, signal)
    const chosen = this.choosePeers(r)
    const fetched = await this.fetchAll(chosen, signal)
    let netMs = performance.now() - t

    // 4. validate and aggregate
    t = performance.now()
    let bytesReceived = 0
    const valid: Array<{ peer: PeerEntry; weights: Map<string, Float32Array> }> = []
    const rejected: RejectedModel[] = []
    const unavailable: UnavailableModel[] = []
    for (const f of fetched) {
      const { did, msg: m } = f.peer
      if (!('bytes' in f)) {
        const reason = rejectReason(f.error)
        if (reason !== undefined) {
          rejected.push({
            from: did,
            reason,
            detail: (f.error as Error).message,
            cid: m.weightsCid,
            round: m.round
          })
        } else {
          unavailable.push({
            from: did,
            reason: f.timedOut ? 'FETCH_TIMEOUT' : 'FETCH_FAILED',
            cid: m.weightsCid,
            round: m.round
          })
        }
        continue
      }
      bytesReceived += f.bytes.length
      try {
        if (f.bytes.length > this.maxBytes) {
          throw new ModelTooLargeError(`model of ${f.bytes.length} bytes exceeds ${this.maxBytes}`, {
            cid: m.weightsCid,
            limit: this.maxBytes
          })
        }
        const weights = decodeCompressed(f.bytes)
        validateUpdate(weights, this.compiled, { base, maxNorm: o.maxNorm })
        await this.checkReceipt(f.peer, weights)
        valid.push({ peer: f.peer, weights })
      } catch (err) {
        const reason = rejectReason(err)
        if (reason === undefined) throw err
        rejected.push({
          from: did,
          reason,
          detail: (err as Error).message,
          cid: m.weightsCid,
          round: m.round
        })
      }
    }
    for (const rj of rejected) {
      this.totals.rejected[rj.reason] = (this.totals.rejected[rj.reason] ?? 0) + 1
      log.warn({ job: this.jobId, ...rj, peerRound: rj.round, round: r }, 'peer model rejected')
    }
    for (const u of unavailable)
      log.info({ job: this.jobId, ...u, peerRound: u.round, round: r }, 'peer model unavailable')
    this.totals.unavailable += unavailable.length
    this.totals.bytesReceived += bytesReceived
    valid.sort((a, b) => (a.peer.did < b.peer.did ? -1 : 1))
    // Under DP the node aggregates its *announced* (noised) model, not its own un-noised one:
    // the aggregate is the base of its next announcement, and the un-noised model would leak
    // into it, outside the accountant (docs/privacy-accounting.md).
    const own = privacy !== undefined && privacy !== null ? shared : mine
    const { weights: next, rule } = this.combine([own, ...valid.map((v) => v.weights)])
    this.install(next)
    aggMs += performance.now() - t
    // The round the aggregate stands for: peer models of later rounds carry their progress.
    // The lower median of the peers' rounds, so that one peer lying about its round cannot
    // push the node to the end of the job; and only when it is CATCH_UP_LAG rounds or more
    // ahead: a node one round behind its peers (asynchrony) keeps training every round.
    // Jumping on a one-round lead made equally fast nodes leapfrog one another, each training
    // every other round only (seen on an idle machine: 10 local rounds of 20).
    const median = lowerMedian(valid.map((v) => v.peer.msg.round))
    const reached = o.catchUp && median >= r + CATCH_UP_LAG ? median : r

    // 5. evaluate and checkpoint
    let accuracy: number | undefined
    let testLoss: number | undefined
    if (this.test !== undefined && ((r + 1) % o.evalEvery === 0 || reached >= o.rounds - 1)) {
      const ev = await trainer.evaluate(this.test, undefined, { signal })
      accuracy = ev.accuracy
      testLoss = ev.loss
      this.lastAccuracy = accuracy
    }
    t = performance.now()
    const checkpointCid = await this.store.put(encodeWeights(next, this.compiled.params), signal)
    await this.checkpoints.save({
      job: this.jobId,
      round: reached,
      weightsCid: checkpointCid,
      ...(accuracy !== undefined ? { accuracy } : {}),
      ...(Number.isFinite(local.loss) ? { loss: local.loss } : {})
    })
    netMs += performance.now() - t
    this.baseCid = checkpointCid
    this.retain(r, [weightsCid, checkpointCid])
    this.totals.rounds++

    const peers: UsedModel[] = valid.map((v) => ({
      from: v.peer.did,
      cid: v.peer.msg.weightsCid,
      round: v.peer.msg.round
    }))
    const stats: RoundStats = {
      round: r,
      nextRound: reached + 1,
      loss: local.loss,
      ...(accuracy !== undefined ? { accuracy, testLoss } : {}),
      steps: local.steps,
      samples: local.samples,
      peersUsed: peers.length,
      peers,
      rejected,
      unavailable,
      rule,
      weightsCid,
      checkpointCid,
      bytesSent: bytes.length,
      bytesReceived,
      trainMs: local.ms,
      netMs,
      aggMs
    }
    log.info(
      {
        job: this.jobId,
        round: r,
        loss: local.loss,
        accuracy,
        nextRound: reached + 1,
        peersUsed: peers.length,
        rejected: rejected.length,
        unavailable: unavailable.length
      },
      'round done'
    )
    return stats
  }

  /** Aggregate the node's own model (first) with peer models; falls back when the rule cannot run. */
  private combine(models: Weights[]): { weights: Map<string, Float32Array>; rule: AggregationRule | 'own' } {
    if (models.length === 1) return { weights: new Map(models[0]!), rule: 'own' }
    const o = this.options
    const n = models.length
    try {
      switch (o.rule) {
        case 'mean':
          return { weights: aggregate('mean', models), rule: 'mean' }
        case 'trimmed-mean':
          return {
            weights: aggregate(
              'trimmed-mean',
              models,
              o.trimFraction !== undefined ? { beta: o.trimFraction } : {}
            ),
            rule: 'trimmed-mean'
          }
        case 'median':
          return { weights: aggregate('median', models), rule: 'median' }
        case 'krum': {
          const f = o.krumF ?? Math.max(0, Math.floor((n - 3) / 2))
          if (n < 2 * f + 3) return { weights: aggregate('median', models), rule: 'median' }
          return { weights: aggregate('krum', models, { f, m: n - f }), rule: 'krum' }
        }
      }
    } catch (err) {
      if (!(err instanceof AggregationError)) throw err
      log.warn({ rule: o.rule, n, err: err.message }, 'aggregation rule cannot run; using the median')
    }
    return { weights: aggregate('median', models), rule: 'median' }
  }

  private onAnnouncement(raw: unknown, from: AnnouncementSource): void {
    const parsed = UpdateAnnouncementSchema.safeParse(raw)
    if (!parsed.success) {
      log.debug({ from: from.did }, 'ignoring a malformed announcement')
      return
    }
    const msg = parsed.data
    if (msg.job !== this.jobId || from.did === this.did) return
    if ((msg.epoch ?? '') !== this.options.epoch) {
      this.totals.otherEpoch++
      return
    }
    if (this.isExcluded(from.did)) {
      this.totals.excluded++
      return
    }
    this.totals.announcementsReceived++
    const known = this.peers.get(from.did)
    if (known !== undefined) {
      if (msg.round < known.msg.round) return
      if (msg.round === known.msg.round) {
        if (msg.weightsCid !== known.msg.weightsCid) {
          this.totals.equivocations++
          log.warn(
            { from: from.did, round: msg.round },
            'peer announced two models for one round; keeping the first'
          )
        }
        return
      }
    } else if (this.peers.size >= MAX_TRACKED_PEERS) {
      return
    }
    this.peers.set(from.did, { did: from.did, msg })
    for (const wake of [...this.announceWaiters]) wake()
  }

  private isExcluded(did: string): boolean {
    return this.exclusions?.excluded(did) === true
  }

  /**
   * A peer model against the receipt it was announced with: signed by the announcer, for this
   * job and round; and — when models travel exactly (no DP noise, no compression) — the
   * weights hash to the receipt's `resultHash`, so that a node cannot announce other weights
   * than those its receipt (and a re-execution of it) stands for.
   *
   * @throws {ReceiptBindingError}
   */
  private async checkReceipt(peer: PeerEntry, weights: Map<string, Float32Array>): Promise<void> {
    const jwt = peer.msg.receipt
    if (jwt === undefined) {
      if (!this.options.requireReceipts) return
      throw new ReceiptBindingError('RECEIPT_MISSING', 'the announcement carries no receipt', {
        from: peer.did
      })
    }
    const r = await verifySignature(jwt)
    if (!r.ok) {
      throw new ReceiptBindingError('RECEIPT_MISMATCH', `the announced receipt is invalid: ${r.reason}`, {
        from: peer.did
      })
    }
    const c = r.claims
    if (c.iss !== peer.did || c.job !== this.jobId || c.round !== peer.msg.round) {
      throw new ReceiptBindingError(
        'RECEIPT_MISMATCH',
        `the announced receipt is ${c.iss}'s for job ${c.job} round ${c.round}, not ${peer.did}'s for round ${peer.msg.round}`,
        { from: peer.did }
      )
    }
    const exact =
      this.options.compression === 'none' && (this.job.privacy === undefined || this.job.privacy === null)
    const claimed = claimedResultHash(c)
    if (exact && claimed !== undefined) {
      const actual = resultHash(weights, this.compiled.params)
      if (actual !== claimed) {
        throw new ReceiptBindingError(
          'RESULT_MISMATCH',
          `the model hashes to ${actual}, its receipt claims ${claimed}`,
          { from: peer.did }
        )
      }
    }
  }

  private unused(p: PeerEntry): boolean {
    return this.attempted.get(p.did) !== p.msg.weightsCid
  }

  /**
   * Wait, up to `peerWaitMs`, until k peers have announced an unused model of round ≥ r.
   * Only peers expected to do so soon are waited for: those one round behind (their latest
   * is r − 1). On a run's first round, k peers are waited for (nobody is known yet).
   */
  private async waitForPeers(r: number, first: boolean, signal: AbortSignal): Promise<void> {
    const { k, peerWaitMs } = this.options
    if (k === 0) return
    const deadline = performance.now() + peerWaitMs
    for (;;) {
      let fresh = 0
      let awaited = 0
      for (const p of this.peers.values()) {
        const isFresh = p.msg.round >= r && this.unused(p)
        if (isFresh) fresh++
        if (isFresh || p.msg.round === r - 1) awaited++
      }
      const target = first ? k : Math.min(k, awaited)
      if (fresh >= target) return
      const left = deadline - performance.now()
      if (left <= 0) return
      await this.waitForAnnouncement(left, signal)
    }
  }

  /** Up to k unused peer models: fresh ones (round ≥ r) first in a seeded random order, then the newest stale ones. */
  private choosePeers(r: number): PeerEntry[] {
    const available = [...this.peers.values()].filter((p) => this.unused(p) && !this.isExcluded(p.did))
    available.sort((a, b) => (a.did < b.did ? -1 : 1))
    const fresh = available.filter((p) => p.msg.round >= r)
    const stale = available.filter((p) => p.msg.round < r).sort((a, b) => b.msg.round - a.msg.round)
    new Rng(roundSeed(this.options.seed ^ hash32(this.did), r)).shuffle(fresh)
    const chosen = [...fresh, ...stale].slice(0, this.options.k)
    for (const p of chosen) this.attempted.set(p.did, p.msg.weightsCid)
    return chosen
  }

  /** Fetch models in parallel under one deadline of `fetchTimeoutMs`. */
  private async fetchAll(peers: PeerEntry[], signal: AbortSignal): Promise<Fetched[]> {
    if (peers.length === 0) return []
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.options.fetchTimeoutMs)])
    const results = await Promise.all(
      peers.map(async (peer): Promise<Fetched> => {
        try {
          const bytes = await raceAbort(this.store.get(peer.msg.weightsCid, deadline), deadline)
          return { peer, bytes }
        } catch (error) {
          return { peer, error, timedOut: deadline.aborted && !signal.aborted }
        }
      })
    )
    signal.throwIfAborted()
    return results
  }

  private async waitForAnnouncement(ms: number, signal: AbortSignal): Promise<void> {
    await this.wakeOn(this.announceWaiters, signal, ms)
  }

  private async holdWhilePaused(signal: AbortSignal): Promise<void> {
    this.holding = this.paused
    try {
      while (this.paused) await this.wakeOn(this.resumeWaiters, signal)
    } finally {
      this.holding = false
    }
  }

  /** Resolve when a callback in `waiters` is called (or after `ms`); reject when `signal` aborts. */
  private async wakeOn(waiters: Set<() => void>, signal: AbortSignal, ms?: number): Promise<void> {
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        waiters.delete(wake)
        signal.removeEventListener('abort', onAbort)
      }
      const wake = (): void => {
        done()
        resolve()
      }
      const onAbort = (): void => {
        done()
        reject(signal.reason as Error)
      }
      const timer = ms === undefined ? undefined : setTimeout(wake, ms)
      waiters.add(wake)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Keep the own objects of the last `retainRounds` rounds; remove older ones from the store. */
  private retain(round: number, cids: string[]): void {
    this.retained.push({ round, cids })
    const remove = this.store.remove?.bind(this.store)
    while (this.retained.length > this.options.retainRounds) {
      const old = this.retained.shift()!
      if (remove === undefined) continue
      const keep = new Set(this.retained.flatMap((e) => e.cids))
      for (const cid of old.cids) {
        if (keep.has(cid)) continue
        remove(cid).catch((err: unknown) => log.debug({ cid, err }, 'could not remove an old model'))
      }
    }
  }
}
