/**
 * `LmTrainer`: runs a GPT's train-step graph with onnxruntime-node. Params and optimizer state
 * stay in ort tensors between steps (the `new:*` outputs of a step are the next step's inputs);
 * the previous step's tensors are kept, so a non-finite loss rolls the step back.
 */
import type * as ort from 'onnxruntime-node'
import { Tensor } from 'onnxruntime-node'
import {
  NonFiniteLossError,
  TrainerStateError,
  createSession,
  type ExecutionProviderName,
  type SessionConfig
} from '../runtime/index.js'
import type { WindowBatch } from '../text/index.js'
import type { CompiledGpt } from './model.js'
import { LmOptionsError } from './errors.js'

export interface LmTrainerOptions extends SessionConfig {
  /** Initial params (copied). */
  weights: ReadonlyMap<string, Float32Array>
  /** Initial optimizer state (copied); zeros when omitted. */
  state?: ReadonlyMap<string, Float32Array>
}

export interface LmStepResult {
  /** Mean next-token cross-entropy of the batch, nats per token, before the update. */
  loss: number
  /** Global gradient norm before clipping. */
  gradNorm: number
  /** Steps completed, this one included. */
  step: number
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/**
 * @example
 * ```ts
 * const trainer = await LmTrainer.create(model, { weights: initGptParams(model, 1), deterministic: true })
 * const { loss } = await trainer.step(batch, 3e-3)
 * await trainer.close()
 * ```
 */
export class LmTrainer {
  readonly model: CompiledGpt
  readonly executionProvider: ExecutionProviderName
  private readonly session: ort.InferenceSession
  private readonly config: SessionConfig
  private evalSession: Promise<ort.InferenceSession> | undefined
  private current: Record<string, ort.Tensor> = {}
  private stepsDone = 0
  private busy = false
  private closed = false
  private readonly lr = new Float32Array(1)
  private readonly lrTensor: ort.Tensor

  private constructor(
    model: CompiledGpt,
    session: ort.InferenceSession,
    provider: ExecutionProviderName,
    opts: LmTrainerOptions
  ) {
    this.model = model
    this.session = session
    this.executionProvider = provider
    this.config = { ...opts }
    this.lrTensor = new Tensor('float32', this.lr, [])
    const load = (
      infos: ReadonlyArray<{ name: string; shape: readonly number[] }>,
      from: ReadonlyMap<string, Float32Array> | undefined,
      what: string
    ): void => {
      for (const t of infos) {
        const n = size(t.shape)
        const src = from?.get(t.name)
        if (from !== undefined && what === 'weights' && src === undefined)
          throw new LmOptionsError(`missing initial ${what} '${t.name}'`, { name: t.name })
        if (src !== undefined && src.length !== n)
          throw new LmOptionsError(`${what} '${t.name}' has ${src.length} values, expected ${n}`, {
            name: t.name,
            expected: n,
            actual: src.length
          })
        this.current[t.name] = new Tensor(
          'float32',
          src === undefined ? new Float32Array(n) : Float32Array.from(src),
          [...t.shape]
        )
      }
    }
    load(model.params, opts.weights, 'weights')
    load(model.state, opts.state, 'state')
  }

  /**
   * One session for the train step, on the device the options ask for (`deterministic`: CPU,
   * one thread, bit-reproducible).
   *
   * @throws {LmOptionsError} when an initial weight is missing or mis-sized.
   * @throws {ExecutionProviderError} when an explicitly requested GPU provider fails.
   */
  static async create(model: CompiledGpt, opts: LmTrainerOptions): Promise<LmTrainer> {
    const { session, provider } = await createSession(model.trainStep, opts)
    try {
      return new LmTrainer(model, session, provider, opts)
    } catch (err) {
      await session.release()
      throw err
    }
  }

  get steps(): number {
    return this.stepsDone
  }

  /**
   * One step on a batch of windows at learning rate `lr`.
   *
   * @throws {NonFiniteLossError} NON_FINITE_LOSS (the step is rolled back: weights unchanged).
   * @throws {TrainerStateError} when closed or when another step is running.
   */
  async step(batch: WindowBatch, lr: number): Promise<LmStepResult> {
    this.enter()
    try {
      const c = this.model.spec.context
      this.lr[0] = lr
      const feeds: Record<string, ort.Tensor> = {
        ...this.current,
        x: new Tensor('int64', batch.x, [batch.count, c]),
        y: new Tensor('int64', batch.y, [batch.count, c]),
        lr: this.lrTensor
      }
      const out = await this.session.run(feeds)
      const loss = out.loss!.data[0] as number
      const gradNorm = out.gradNorm!.data[0] as number
      if (!Number.isFinite(loss)) {
        throw new NonFiniteLossError(
          `non-finite loss ${loss} at step ${this.stepsDone + 1}; step rolled back`,
          {
            loss,
            step: this.stepsDone + 1
          }
        )
      }
      const next: Record<string, ort.Tensor> = {}
      for (const t of [...this.model.params, ...this.model.state]) next[t.name] = out[`new:${t.name}`]!
      this.current = next
      this.stepsDone++
      return { loss, gradNorm, step: this.stepsDone }
    } finally {
      this.busy = false
    }
  }

  /** Mean loss (nats per token) over batches of windows, with the current weights (no update). */
  async evaluate(batches: readonly WindowBatch[]): Promise<number> {
    this.enter()
    try {
      this.evalSession ??= createSession(this.model.evalStep, this.config).then((r) => r.session)
      const s = await this.evalSession
      const c = this.model.spec.context
      let sum = 0
      let rows = 0
      for (const b of batches) {
        const feeds: Record<string, ort.Tensor> = {
          x: new Tensor('int64', b.x, [b.count, c]),
          y: new Tensor('int64', b.y, [b.count, c])
        }
        for (const p of this.model.params) feeds[p.name] = this.current[p.name]!
        const out = await s.run(feeds)
        sum += (out.loss!.data[0] as number) * b.count
        rows += b.count
      }
      return sum / rows
    } finally {
      this.busy = false
    }
  }

  /**
   * Replace the params (copied), e.g. with a round's base.
   *
   * @throws {LmOptionsError} when a param is missing or mis-sized.
   * @throws {TrainerStateError} when closed or while a step is running.
   */
  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    this.replace(this.model.params, weights, 'weights')
  }

  /**
   * Replace the optimizer state (copied); without `state`, zeros (a fresh optimizer, as a swarm
   * round starts).
   *
   * @throws {LmOptionsError} when a given state tensor is mis-sized.
   * @throws {TrainerStateError} when closed or while a step is running.
   */
  setState(state?: ReadonlyMap<string, Float32Array>): void {
    this.replace(this.model.state, state, 'state')
  }

  /** A copy of the current params. */
  weights(): Map<string, Float32Array> {
    return new Map(
      this.model.params.map((p) => [p.name, Float32Array.from(this.current[p.name]!.data as Float32Array)])
    )
  }

  /** A copy of the current optimizer state. */
  state(): Map<string, Float32Array> {
    return new Map(
      this.model.state.map((t) => [t.name, Float32Array.from(this.current[t.name]!.data as Float32Array)])
    )
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.session.release()
    if (this.evalSession !== undefined) await (await this.evalSession).release()
  }

  private replace(
    infos: ReadonlyArray<{ name: string; shape: readonly number[] }>,
    from: ReadonlyMap<string, Float32Array> | undefined,
    what: 'weights' | 'state'
  ): void {
    this.enter()
    try {
      const next: Record<string, ort.Tensor> = {}
      for (const t of infos) {
        const n = size(t.shape)
        const src = from?.get(t.name)
        if (from !== undefined && what === 'weights' && src === undefined)
          throw new LmOptionsError(`missing ${what} '${t.name}'`, { name: t.name })
        if (src !== undefined && src.length !== n)
          throw new LmOptionsError(`${what} '${t.name}' has ${src.length} values, expected ${n}`, {
            name: t.name,
            expected: n,
            actual: src.length
          })
        next[t.name] = new Tensor(
          'float32',
          src === undefined ? new Float32Array(n) : Float32Array.from(src),
          [...t.shape]
        )
      }
      Object.assign(this.current, next)
    } finally {
      this.busy = false
    }
  }

  private enter(): void {
    if (this.closed) throw new TrainerStateError('TRAINER_CLOSED', 'the LM trainer is closed')
    if (this.busy) throw new TrainerStateError('TRAINER_BUSY', 'another LM trainer call is running')
    this.busy = true
  }
}
