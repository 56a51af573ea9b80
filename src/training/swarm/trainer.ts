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
import { logger, Rng, type Logger } from '../../common/index.js'
import { validateUpdate } from '../aggregate/index.js'
import { decodeWeights, encodeWeights } from '../export/index.js'
import { Aggregator, type Combined } from './aggregation.js'
import { SwarmStateError } from './errors.js'
import { ModelIntake, type Intake, type ValidModel } from './intake.js'
import type { JobSpec } from './job.js'
import type { UpdateAnnouncement } from './messages.js'
import { resolveOptions, type ResolvedSwarmOptions } from './options.js'
import { localRounds, OuterOptimizer, type LocalRoundResult, type LocalRounds } from './local/index.js'
import { PeerTable } from './peers.js'
import { RoundClock, roundSeed } from './round.js'
import { shareRound } from './share.js'
import { withheldCid } from './byzantine.js'
import { CATCH_UP_LAG, LAST_ROUND_FETCH_FACTOR } from './constants.js'
import { PauseGate } from './pause.js'
import { RetainedObjects } from './retained.js'
import {
  emptyCounters,
  type RoundStats,
  type StartPoint,
  type SwarmComponents,
  type SwarmCounters,
  type SwarmRunOptions,
  type SwarmRunResult,
  type SwarmTrainerInit,
  type UsedModel
} from './types.js'

const moduleLog = logger('shoal:training:swarm')

/** The node's own model of a round, as announced (step 2). */
interface Announced {
  /** The weights after the local steps. */
  mine: Map<string, Float32Array>
  /** The weights shared (privatized under output DP). */
  shared: Map<string, Float32Array>
  weightsCid: string
  /** The exact result weights published for a tolerance check (a non-bit-exact round). */
  resultCid: string | undefined
  bytesSent: number
}

/** What steps 1–4 of a round produced, for step 5. */
interface RoundWork {
  local: LocalRoundResult
  own: Announced
  taken: Intake
  combined: Combined
  /** The round the aggregate stands for (r, or later after catching up). */
  reached: number
  clock: RoundClock
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
  /** The kind-specific side of the rounds (a classifier's or a language model's). */
  readonly local: LocalRounds

  private readonly bus: SwarmComponents['bus']
  private readonly store: SwarmComponents['store']
  private readonly checkpoints: SwarmComponents['checkpoints']
  private readonly receipts: SwarmComponents['receipts']
  /** Lab only: a Byzantine trainer's tamper, and the peer models of its previous round. */
  private readonly tamper: SwarmComponents['tamper']
  private lastPeers: Map<string, Float32Array>[] = []
  private readonly noiseRng: Rng
  private readonly outer: OuterOptimizer
  private readonly lifetime = new AbortController()

  private base: Map<string, Float32Array> | undefined
  private baseCid: string | undefined
  private nextRound = 0
  private startPoint: StartPoint | undefined
  private starting: Promise<void> | undefined
  private running: Promise<unknown> | undefined
  private stopped = false
  private unsubscribe: (() => void) | undefined
  private readonly gate = new PauseGate()
  private readonly log: Logger
  private readonly peers: PeerTable
  private readonly intake: ModelIntake
  private readonly aggregator: Aggregator
  private readonly retained: RetainedObjects
  private lastAccuracy: number | undefined
  private readonly totals: SwarmCounters = emptyCounters()

  /**
   * @throws {SwarmOptionsError} for options that cannot work or data that does not fit the model.
   * @throws the model compiler's spec errors (ModelSpecError, GptSpecError, OptimizerSpecError).
   */
  constructor(components: SwarmComponents, init: SwarmTrainerInit) {
    this.job = init.job
    this.jobId = init.jobId
    this.did = init.did
    this.options = resolveOptions(init)
    this.log = components.log ?? moduleLog
    this.bus = components.bus
    this.store = components.store
    this.retained = new RetainedObjects(this.store, this.options.retainRounds, this.log)
    this.checkpoints = components.checkpoints
    this.receipts = components.receipts
    this.tamper = components.tamper
    const { train, test } = components
    this.local = localRounds({ ...init, train, test, options: this.options })
    this.outer = new OuterOptimizer(this.job.outer)
    const parts = { jobId: this.jobId, options: this.options, totals: this.totals, log: this.log }
    this.peers = new PeerTable({ ...parts, did: this.did, exclusions: components.exclusions })
    this.intake = new ModelIntake({ ...parts, job: this.job, compiled: this.local, store: this.store })
    this.aggregator = new Aggregator(this.options, this.log)
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
    return this.gate.isPaused
  }

  /** Whether training is paused and waiting (the step in progress, if any, has finished). */
  get isHeld(): boolean {
    return this.gate.isHeld
  }

  /** A copy of the node's current model (its latest aggregate), once started. */
  weights(): Map<string, Float32Array> | undefined {
    return this.base === undefined ? undefined : new Map([...this.base].map(([n, t]) => [n, t.slice()]))
  }

  /** The latest announcement of each peer, by DID (copies). */
  peerAnnouncements(): Map<string, UpdateAnnouncement> {
    return this.peers.announcements()
  }

  /**
   * Hold local training before its next step (announcements are still received); with
   * `fromRound`, train on until round `fromRound` and hold before its first step (a round the
   * node skips to, catching up with its peers, counts as reached). Pausing again replaces
   * `fromRound` and lets a held round go on when it is now below it.
   */
  pause(opts: { fromRound?: number } = {}): void {
    const from = opts.fromRound ?? 0
    if (this.gate.pause(from)) this.log.info({ job: this.jobId, fromRound: from }, 'paused')
  }

  /** Continue after `pause()`. */
  resume(): void {
    if (this.gate.resume()) this.log.info({ job: this.jobId }, 'resumed')
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
    await this.local.close()
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
        this.log.info(
          { job: this.jobId, roundsRun, nextRound: this.nextRound },
          'round allowance spent; stopping'
        )
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
        this.log.info(
          { job: this.jobId, round: stats.round, accuracy: stats.accuracy },
          'target accuracy reached'
        )
        return result('target')
      }
    }
    if (this.nextRound < this.options.rounds) {
      this.log.info({ job: this.jobId, nextRound: this.nextRound }, 'run aborted')
      return result('aborted')
    }
    return result('done')
  }

  private async doStart(signal: AbortSignal): Promise<void> {
    this.unsubscribe ??= this.bus.subscribe((msg, from) => this.peers.onAnnouncement(msg, from))
    const initial = await this.initialWeights(signal)
    await this.local.open(initial, signal)
    if (await this.restoreCheckpoint(signal)) return
    if (this.options.joinWaitMs > 0 && this.options.k > 0 && this.peers.size === 0) {
      await this.peers.waitForAnnouncement(this.options.joinWaitMs, signal)
    }
    if (this.peers.size > 0 && (await this.joinFromPeers(signal))) return
    this.base = initial
    this.baseCid = await this.store.put(encodeWeights(initial, this.local.params), signal)
    this.nextRound = 0
    this.startPoint = { source: 'initial', round: 0 }
    this.retained.keep(-1, [this.baseCid])
    this.log.info({ job: this.jobId, did: this.did }, 'starting from the initial weights')
  }

  /** The job's starting weights: its `init` model (fetched and validated), else seeded ones. */
  private async initialWeights(signal: AbortSignal): Promise<Map<string, Float32Array>> {
    if (this.job.init === undefined) return this.local.initialWeights(this.job.seed)
    const weights = decodeWeights(await this.store.get(this.job.init, signal))
    validateUpdate(weights, this.local)
    this.log.info({ job: this.jobId, init: this.job.init }, 'starting from the job’s initial model')
    return weights
  }

  private async restoreCheckpoint(signal: AbortSignal): Promise<boolean> {
    const cp = await this.checkpoints.latest(this.jobId)
    if (cp === undefined) return false
    try {
      const bytes = await this.store.get(cp.weightsCid, signal)
      const weights = decodeWeights(bytes)
      validateUpdate(weights, this.local)
      this.install(
        weights,
        await this.outer.restore(this.store, cp.momentumCid, this.local, signal, this.log)
      )
      this.baseCid = cp.weightsCid
      this.nextRound = cp.round + 1
      this.startPoint = { source: 'checkpoint', round: this.nextRound }
      this.retained.keep(cp.round, [cp.weightsCid, cp.momentumCid])
      this.log.info({ job: this.jobId, round: cp.round, cid: cp.weightsCid }, 'resuming from checkpoint')
      return true
    } catch (err) {
      if (signal.aborted) throw err
      this.log.warn(
        { job: this.jobId, round: cp.round, cid: cp.weightsCid, err: (err as Error).message },
        'checkpoint does not verify; ignoring it'
      )
      return false
    }
  }

  /**
   * Join a running job from the newest announced peer models that validate. Not when the peers
   * are fewer than CATCH_UP_LAG rounds in: a node starting with the others is not late, and a
   * join takes the first models announced without a norm bound — with one honest and one
   * Byzantine model every rule is a mean, and the noise of one attacker became every node's
   * start (npm run bench:byzantine). Such a node trains from the initial weights like the
   * others; its round-0 aggregation is the job's robust rule over every model of the round.
   */
  private async joinFromPeers(signal: AbortSignal): Promise<boolean> {
    const entries = this.peers.entries()
    if (Math.max(...entries.map((e) => e.msg.round)) < CATCH_UP_LAG) return false
    const candidates = entries
      .sort((a, b) => b.msg.round - a.msg.round || (a.did < b.did ? -1 : 1))
      .slice(0, Math.max(1, this.options.k))
    this.peers.markAttempted(candidates)
    const fetched = await this.intake.fetch(candidates, signal)
    const valid = this.intake.takeForJoining(fetched)
    if (valid.length === 0) return false
    const { weights } = this.aggregator.combine(valid.map((v) => v.weights))
    const round = Math.max(...valid.map((v) => v.peer.msg.round))
    this.install(weights)
    this.baseCid = await this.store.put(encodeWeights(weights, this.local.params), signal)
    this.nextRound = round + 1
    const peers = valid.map((v) => ({
      from: v.peer.did,
      cid: v.peer.msg.weightsCid,
      round: v.peer.msg.round
    }))
    this.startPoint = { source: 'peers', round: this.nextRound, peers }
    this.retained.keep(round, [this.baseCid])
    this.log.info({ job: this.jobId, round: this.nextRound, peers: peers.length }, 'joined from peer models')
    return true
  }

  /** Install the next base; `momentum`: the outer step's buffer that goes with it (none: zeros). */
  private install(weights: Map<string, Float32Array>, momentum?: Map<string, Float32Array>): void {
    this.outer.reset(momentum)
    this.base = weights
    this.local.setWeights(weights)
  }

  /**
   * One round: 1. local steps, 2. store, sign and announce the model to share, 3. wait for,
   * choose and fetch peer models, 4. validate them and aggregate them with the own model,
   * 5. evaluate, checkpoint and report.
   */
  private async runRound(r: number, first: boolean, signal: AbortSignal): Promise<RoundStats> {
    const base = this.base!
    const seed = roundSeed(this.options.seed, r)

    // 1. local steps
    const local = await this.trainLocal(r, seed, signal)
    const mine = this.local.getWeights()

    // 2. store and announce the shared model
    const clock = new RoundClock()
    const own = await this.announce(r, seed, local, mine, base, clock, signal)

    // 3. peer models
    await this.peers.waitForPeers(r, first, signal)
    const last = r >= this.options.rounds - 1
    const deadline = this.options.fetchTimeoutMs * (last ? LAST_ROUND_FETCH_FACTOR : 1)
    const fetched = await this.intake.fetch(this.peers.choosePeers(r, last), signal, deadline)
    clock.lap('netMs')

    // 4. validate and aggregate
    const taken = await this.intake.take(fetched, base, r)
    if (this.tamper?.needsPeers === true)
      this.lastPeers = [...taken.valid]
        .sort((a, b) => b.peer.msg.round - a.peer.msg.round)
        .map((v) => v.weights)
    const reached = this.aggregator.reachedRound(
      r,
      taken.valid.map((v) => v.peer.msg.round)
    )
    const combined = this.aggregate(own, taken.valid, base, reached > r)
    clock.lap('aggMs')

    // 5. evaluate and checkpoint
    return await this.finishRound(r, { local, own, taken, combined, reached, clock }, signal)
  }

  /** Step 1: H local steps (of the job's kind: `LocalRounds`) from the weights the trainer holds. */
  private async trainLocal(r: number, seed: number, signal: AbortSignal): Promise<LocalRoundResult> {
    const { H, lr, batchSize } = this.options
    const beforeStep = async (): Promise<void> => this.gate.hold(r, signal)
    return await this.local.train({ round: r, seed, H, lr, batchSize, signal, beforeStep })
  }

  /**
   * Step 2: the model to share (privatized under output DP), encoded and stored, its receipt
   * signed (when a signer is given) and its announcement published.
   */
  private async announce(
    r: number,
    seed: number,
    local: LocalRoundResult,
    mine: Map<string, Float32Array>,
    base: Map<string, Float32Array>,
    clock: RoundClock,
    signal: AbortSignal
  ): Promise<Announced> {
    const o = this.options
    const tampered = this.tamper?.share({ round: r, mine, base, peers: this.lastPeers })
    const announced = tampered !== undefined && 'weights' in tampered ? tampered.weights : mine
    const { shared, bytes, weightsCid, ep, result } = await shareRound({
      mine: announced,
      base,
      job: this.job,
      params: this.local.params,
      compression: o.compression,
      noiseRng: this.noiseRng,
      store: this.store,
      executionProvider: this.local.executionProvider,
      deterministic: o.deterministic,
      threads: o.threads,
      signal
    })
    clock.lap('aggMs')
    const announcedCid =
      tampered !== undefined && 'withhold' in tampered ? withheldCid(weightsCid) : weightsCid
    const receipt = await this.receipts?.sign(
      {
        job: this.jobId,
        round: r,
        baseCid: this.baseCid!,
        weightsCid: announcedCid,
        weights: announced,
        hyper: {
          lr: o.lr,
          batchSize: o.batchSize,
          steps: o.H,
          optimizer: this.job.optimizer.type,
          ...this.local.receiptHyper(r)
        },
        seed,
        samples: local.samples,
        steps: local.steps,
        lossBefore: local.lossBefore,
        lossAfter: local.lossAfter,
        ep,
        ...(result === undefined ? {} : result)
      },
      signal
    )
    const msg: UpdateAnnouncement = {
      type: 'update',
      job: this.jobId,
      round: r,
      weightsCid: announcedCid,
      samples: local.samples
    }
    if (Number.isFinite(local.loss)) msg.loss = local.loss
    if (o.epoch !== '') msg.epoch = o.epoch
    if (receipt !== undefined) msg.receipt = receipt
    await this.bus.publish(msg)
    this.totals.bytesSent += bytes.length
    return { mine, shared, weightsCid, resultCid: result?.resultCid, bytesSent: bytes.length }
  }

  /**
   * Step 4: the own model aggregated with the valid peer models (by DID); the next base is the
   * aggregate, or the job's outer step from `base` towards it.
   */
  private aggregate(
    own: Announced,
    valid: ValidModel[],
    base: Map<string, Float32Array>,
    catchingUp = false
  ): Combined {
    // Under DP the node aggregates its *announced* (noised) model, not its own un-noised one:
    // the aggregate is the base of its next announcement, and the un-noised model would leak
    // into it, outside the accountant (docs/privacy-accounting.md).
    const privacy = this.job.privacy
    const model = privacy !== undefined && privacy !== null ? own.shared : own.mine
    // Catching up (most peer models CATCH_UP_LAG or more rounds ahead), the own model is rounds
    // stale: with two or more peer models the aggregate is theirs alone. Averaged in, it cost a
    // trainer restarted near a job's end 5–8 points that no later round won back (chaos test).
    const peers = valid.map((v) => v.weights)
    const combined = this.aggregator.combine(catchingUp && peers.length >= 2 ? peers : [model, ...peers])
    const weights = this.outer.next(base, combined.weights)
    this.install(weights, this.outer.momentum)
    return { ...combined, weights }
  }

  /** Step 5: evaluate (every `evalEvery` rounds and at the end), checkpoint and report the round. */
  private async finishRound(r: number, work: RoundWork, signal: AbortSignal): Promise<RoundStats> {
    const { local, own, taken, combined, reached, clock } = work
    const { valid, rejected, unavailable } = taken
    const o = this.options
    const evaluate = (r + 1) % o.evalEvery === 0 || reached >= o.rounds - 1
    const { accuracy, loss: testLoss } = (evaluate ? await this.local.evaluate(signal) : undefined) ?? {}
    if (accuracy !== undefined) this.lastAccuracy = accuracy
    clock.lap()
    const checkpointCid = await this.store.put(encodeWeights(combined.weights, this.local.params), signal)
    const momentumCid = await this.outer.save(this.store, this.local.params, signal)
    await this.checkpoints.save({
      job: this.jobId,
      round: reached,
      weightsCid: checkpointCid,
      ...(momentumCid !== undefined ? { momentumCid } : {}),
      ...(accuracy !== undefined ? { accuracy } : {}),
      ...(Number.isFinite(local.loss) ? { loss: local.loss } : {})
    })
    clock.lap('netMs')
    this.baseCid = checkpointCid
    this.retained.keep(r, [own.weightsCid, checkpointCid, own.resultCid, momentumCid])
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
      ...(accuracy !== undefined ? { accuracy } : {}),
      ...(testLoss !== undefined ? { testLoss } : {}),
      steps: local.steps,
      samples: local.samples,
      peersUsed: peers.length,
      peers,
      rejected,
      unavailable,
      rule: combined.rule,
      weightsCid: own.weightsCid,
      checkpointCid,
      bytesSent: own.bytesSent,
      bytesReceived: taken.bytesReceived,
      trainMs: local.ms,
      netMs: clock.netMs,
      aggMs: clock.aggMs
    }
    this.log.info(
      {
        job: this.jobId,
        round: r,
        loss: local.loss,
        accuracy,
        testLoss,
        nextRound: reached + 1,
        peersUsed: peers.length,
        rejected: rejected.length,
        unavailable: unavailable.length
      },
      'round done'
    )
    return stats
  }
}
