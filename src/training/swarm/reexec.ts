/**
 * `RoundReexecutor`: re-runs a peer's local round from its receipt, so that a verifier can
 * compare the weights hash it claims (the `reexecution` level of receipt verification).
 *
 * A round is a pure function of its inputs (see `round.ts`): the job's compiled model, the
 * base weights named by `baseCid`, the shards' samples in the receipt's order, and the
 * receipt's hyper-parameters and data-order seed. The re-run installs the base weights and a
 * zeroed optimizer state on a deterministic CPU trainer (one thread) and calls `trainRound`
 * exactly as `SwarmTrainer` does, then hashes the weights after the local steps (before any
 * privacy noise or compression) in the SHOALWT1 encoding, as the trainer's receipt does.
 */
import { performance } from 'node:perf_hooks'
import { logger } from '../../common/index.js'
import { shapeSize } from '../data/index.js'
import {
  perturbWeights,
  resultHash,
  toleranceFor,
  type ClaimedResult,
  type ReceiptClaims,
  type ReexecutionResult,
  type Reexecutor
} from '../receipts/index.js'
import {
  ReexecClosedError,
  ReexecInputError,
  ReexecSpecError,
  ReexecUnsupportedError,
  SwarmOptionsError,
  type ReexecInput
} from './errors.js'
import { DEFAULT_ROUNDS, REPRODUCIBLE_EP } from './constants.js'
import type { JobSpec } from './job.js'
import {
  checkScheduleClaim,
  receiptSchedule,
  roundRerunner,
  type ParamLayout,
  type RoundRerunner,
  type ShardData
} from './local/index.js'

export {
  ReexecClosedError,
  ReexecInputError,
  ReexecSpecError,
  ReexecUnsupportedError,
  type ReexecInput
} from './errors.js'

const log = logger('shoal:training:reexec')

/** Jobs whose compiled model and deterministic trainer a re-executor keeps at once. */
export const DEFAULT_REEXEC_MAX_TRAINERS = 2

/** What a {@link RoundReexecutor} reads its inputs through. */
export interface RoundReexecutorComponents {
  /** The spec of a job by id (a verified job document). Throw (or return nothing) for an unknown job. */
  job(jobId: string, signal?: AbortSignal): Promise<JobSpec>
  /** Decoded weights (SHOALWT1) by CID. */
  weights(cid: string, signal?: AbortSignal): Promise<Map<string, Float32Array>>
  /**
   * The samples of the shards, decrypted and prepared for `job`'s model exactly as the
   * trainer prepared them, concatenated in the given order (as `concatDatasets` does): tensors,
   * or the tokens of text shards for a language-model job.
   * `jobId` is the receipt's job (the purpose to read the shards under).
   */
  shards(
    cids: readonly string[],
    job: JobSpec,
    signal: AbortSignal | undefined,
    jobId: string
  ): Promise<ShardData>
}

/** Options of a {@link RoundReexecutor}. */
export interface RoundReexecutorInit {
  /** Jobs kept compiled, each with its CPU trainer; the least recently used is closed beyond it (default 2). */
  maxTrainers?: number
  /**
   * Refuse receipts whose `hyper.lr`, `hyper.batchSize`, `hyper.steps` or `hyper.schedule` differ
   * from the job's `lr`, `batchSize`, `H` and the round's share of its schedule (default true), which also bounds the cost of a re-run by
   * the job's H. Set it to false to re-run the receipt's own values, for trainers that
   * override them (`SwarmTrainerInit.lr`, `batchSize`, `H`). The optimizer must always be
   * the job's: the compiled graph fixes it.
   */
  strictHyper?: boolean
}

interface JobEntry {
  spec: JobSpec
  /** The job's compiled model and its deterministic CPU trainer, of the model's kind. */
  rounds: RoundRerunner
}

/** `promise`, or the signal's reason as soon as it aborts. */
async function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Re-executes receipts' rounds on the CPU, bit for bit as a `SwarmTrainer` with
 * `deterministic: true` trained them. Runs are serialized: one at a time per executor, on one
 * core. Implements the receipts module's `Reexecutor`.
 *
 * A receipt that claims fewer steps than its `hyper.steps` says the round stopped early on a
 * non-finite loss; the re-run then tries one step more, which must fail the same way (the
 * trainer rolls back exactly as the original did) for the result to match.
 *
 * @example
 * ```ts
 * const reexec = new RoundReexecutor({
 *   job: async (id) => jobs.get(id)!,
 *   weights: async (cid) => decodeWeights(await store.get(cid)),
 *   shards: async (cids) => concatDatasets(cids.map((cid) => shards.get(cid)!))
 * })
 * const check = await verifyReexecution(receipt, reexec) // { ok: true, … } for an honest round
 * await reexec.close()
 * ```
 */
export class RoundReexecutor implements Reexecutor {
  readonly maxTrainers: number
  readonly strictHyper: boolean

  private readonly c: RoundReexecutorComponents
  /** Per job id, least recently used first. */
  private readonly entries = new Map<string, JobEntry>()
  private readonly lifetime = new AbortController()
  /** Settles when the last run queued so far has finished (never rejects). */
  private tail: Promise<void> = Promise.resolve()
  private closed = false

  /** @throws {SwarmOptionsError} `SWARM_OPTIONS_INVALID` (option `maxTrainers`) for a bound below 1. */
  constructor(components: RoundReexecutorComponents, init: RoundReexecutorInit = {}) {
    this.c = components
    const max = init.maxTrainers ?? DEFAULT_REEXEC_MAX_TRAINERS
    if (!Number.isInteger(max) || max < 1) {
      throw new SwarmOptionsError(`maxTrainers must be an integer ≥ 1, got ${max}`, {
        option: 'maxTrainers',
        value: max
      })
    }
    this.maxTrainers = max
    this.strictHyper = init.strictHyper !== false
  }

  /**
   * Re-run the round of `claims` and hash the resulting weights. Waits for the runs queued
   * before it.
   *
   * @throws {ReexecInputError} `REEXEC_INPUT_UNAVAILABLE` when the job, the base weights or
   *   a shard cannot be had.
   * @throws {ReexecSpecError} `REEXEC_SPEC_MISMATCH` when the claims contradict the job spec
   *   or the inputs do not fit its model.
   * @throws {ReexecUnsupportedError} `REEXEC_NOT_REPRODUCIBLE` for a round run on another
   *   execution provider than the CPU.
   * @throws {ReexecClosedError} `REEXEC_CLOSED` after `close()`.
   * @throws the signal's reason when aborted; errors of the training runtime otherwise.
   */
  async run(
    claims: ReceiptClaims,
    opts: { signal?: AbortSignal; keepWeights?: boolean; perturbBase?: number } = {}
  ): Promise<ReexecutionResult> {
    if (this.closed) throw new ReexecClosedError()
    const signal =
      opts.signal === undefined ? this.lifetime.signal : AbortSignal.any([opts.signal, this.lifetime.signal])
    const before = this.tail
    let release!: () => void
    const done = new Promise<void>((resolve) => (release = resolve))
    this.tail = before.then(async () => done)
    try {
      await untilAborted(before, signal)
      return await this.execute(claims, signal, opts.keepWeights === true, opts.perturbBase)
    } finally {
      release()
    }
  }

  /**
   * Abort the run in progress and those queued (they reject with `REEXEC_CLOSED`), then
   * release every trainer. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.lifetime.abort(new ReexecClosedError())
    }
    await this.tail
    const entries = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(entries.map(async (e) => this.release(e)))
  }

  /**
   * The weights a receipt's `resultCid` names, checked against the job's model and hashed as
   * its receipt's `resultHash` is (for a tolerance check, `verifyReexecution`).
   *
   * @throws {ReexecInputError} `REEXEC_INPUT_UNAVAILABLE` when the receipt names no resultCid,
   *   or the weights (SHOALWT1, read like a base) cannot be had.
   * @throws {ReexecSpecError} `REEXEC_SPEC_MISMATCH` when they do not fit the job's model.
   */
  async result(claims: ReceiptClaims, opts: { signal?: AbortSignal } = {}): Promise<ClaimedResult> {
    if (this.closed) throw new ReexecClosedError()
    const signal =
      opts.signal === undefined ? this.lifetime.signal : AbortSignal.any([opts.signal, this.lifetime.signal])
    const cid = claims.resultCid
    if (cid === undefined) {
      throw new ReexecInputError('result', 'the receipt names no resultCid', {
        job: claims.job,
        round: claims.round
      })
    }
    const entry = await this.entryFor(claims.job, signal)
    const weights = await this.load('result', { job: claims.job, cid }, signal, async () =>
      this.c.weights(cid, signal)
    )
    checkLayout(weights, entry.rounds, cid, 'resultCid')
    return { weights, resultHash: resultHash(weights, entry.rounds.params) }
  }

  // ---------------------------------------------------------------------------------------

  private async execute(
    claims: ReceiptClaims,
    signal: AbortSignal,
    keepWeights: boolean,
    perturbBase: number | undefined
  ): Promise<ReexecutionResult> {
    const t0 = performance.now()
    if (claims.ep !== REPRODUCIBLE_EP && toleranceFor(claims.ep) === undefined) {
      throw new ReexecUnsupportedError(
        `the round ran on '${claims.ep}', which is neither deterministic CPU nor a provider with a calibrated tolerance`,
        { ep: claims.ep, job: claims.job, round: claims.round }
      )
    }
    const entry = await this.entryFor(claims.job, signal)
    this.checkHyper(claims, entry.spec)

    const base = await this.load('base', { job: claims.job, cid: claims.baseCid }, signal, async () =>
      this.c.weights(claims.baseCid, signal)
    )
    checkLayout(base, entry.rounds, claims.baseCid, 'baseCid')
    const cids = claims.shards.map((s) => s.cid)
    const data = await this.load('shards', { job: claims.job, cids }, signal, async () =>
      this.c.shards(cids, entry.spec, signal, claims.job)
    )

    const start = perturbBase === undefined ? base : perturbWeights(base, perturbBase)
    // An honest receipt with fewer steps than hyper.steps stopped on a non-finite loss: one
    // step more must diverge (and roll back) the same way here.
    const H = claims.steps < claims.hyper.steps ? claims.steps + 1 : claims.steps
    const tTrain = performance.now()
    const local = await entry.rounds.rerun(start, data, {
      H,
      batchSize: claims.hyper.batchSize,
      lr: claims.hyper.lr,
      schedule: receiptSchedule(claims.hyper.schedule),
      seed: claims.seed,
      signal
    })
    const trainMs = performance.now() - tTrain
    const after = local.weights
    const result = resultHash(after, entry.rounds.params)
    log.debug(
      {
        job: claims.job,
        round: claims.round,
        steps: local.steps,
        samples: local.samples,
        diverged: local.diverged,
        trainMs: Math.round(trainMs),
        ms: Math.round(performance.now() - t0)
      },
      're-executed a round'
    )
    return {
      resultHash: result,
      samples: local.samples,
      trainMs,
      ...(keepWeights ? { weights: after, base } : {})
    }
  }

  /** The job's cached entry (moved to most recently used), or a new one (evicting the oldest). */
  private async entryFor(jobId: string, signal: AbortSignal): Promise<JobEntry> {
    const known = this.entries.get(jobId)
    if (known !== undefined) {
      this.entries.delete(jobId)
      this.entries.set(jobId, known)
      return known
    }
    const spec = await this.load('job', { job: jobId }, signal, async () => this.c.job(jobId, signal))
    const entry: JobEntry = { spec, rounds: roundRerunner(spec) }
    this.entries.set(jobId, entry)
    while (this.entries.size > this.maxTrainers) {
      const [oldest, evicted] = this.entries.entries().next().value!
      this.entries.delete(oldest)
      await this.release(evicted)
    }
    return entry
  }

  private checkHyper(claims: ReceiptClaims, spec: JobSpec): void {
    const mismatch = (field: string, claimed: unknown, expected: unknown, what: string): never => {
      throw new ReexecSpecError(
        field,
        `${what}: the receipt claims ${String(claimed)}, expected ${String(expected)}`,
        {
          claimed,
          expected,
          job: claims.job,
          round: claims.round
        }
      )
    }
    const { hyper } = claims
    if (hyper.optimizer !== spec.optimizer.type) {
      mismatch('hyper.optimizer', hyper.optimizer, spec.optimizer.type, "optimizer other than the job's")
    }
    if (claims.steps > hyper.steps) {
      mismatch('steps', claims.steps, `at most ${hyper.steps}`, 'more steps than its hyper.steps')
    }
    if (!this.strictHyper) return
    if (hyper.lr !== spec.hyper.lr)
      mismatch('hyper.lr', hyper.lr, spec.hyper.lr, "learning rate other than the job's")
    if (hyper.batchSize !== spec.hyper.batchSize) {
      mismatch('hyper.batchSize', hyper.batchSize, spec.hyper.batchSize, "batch size other than the job's")
    }
    if (hyper.steps !== spec.hyper.H)
      mismatch('hyper.steps', hyper.steps, spec.hyper.H, "local steps other than the job's H")
    checkScheduleClaim(hyper.schedule, spec, claims.round, DEFAULT_ROUNDS)
  }

  /** Run a component's read; a failure (other than an abort) becomes a ReexecInputError. */
  private async load<T>(
    input: ReexecInput,
    fields: Record<string, unknown>,
    signal: AbortSignal,
    read: () => Promise<T | undefined>
  ): Promise<T> {
    let value: T | undefined
    try {
      value = await read()
    } catch (err) {
      if (signal.aborted) throw signal.reason as Error
      throw new ReexecInputError(input, `cannot read the round's ${input}: ${messageOf(err)}`, fields, err)
    }
    signal.throwIfAborted()
    if (value === undefined || value === null) {
      throw new ReexecInputError(input, `the round's ${input} is unknown here`, fields)
    }
    return value
  }

  private async release(entry: JobEntry): Promise<void> {
    await entry.rounds
      .close()
      .catch((err: unknown) => log.warn({ err: messageOf(err) }, 'could not close a trainer'))
  }
}

/** @throws {ReexecSpecError} (field `baseCid` or `resultCid`) unless `weights` has exactly the model's params and sizes. */
function checkLayout(
  weights: ReadonlyMap<string, Float32Array>,
  compiled: { params: ParamLayout },
  cid: string,
  field: 'baseCid' | 'resultCid'
): void {
  const what = field === 'baseCid' ? 'base' : 'result'
  const problem = (detail: string): never => {
    throw new ReexecSpecError(field, `${what} weights ${cid} do not fit the job's model: ${detail}`, { cid })
  }
  if (!(weights instanceof Map)) problem('not a map of tensors')
  for (const p of compiled.params) {
    const t = weights.get(p.name)
    if (t === undefined) problem(`no tensor '${p.name}'`)
    if (!(t instanceof Float32Array) || t.length !== shapeSize(p.shape)) {
      problem(`tensor '${p.name}' is not ${shapeSize(p.shape)} float32 values`)
    }
  }
  if (weights.size !== compiled.params.length) {
    problem(`${weights.size} tensors, the model has ${compiled.params.length}`)
  }
}
