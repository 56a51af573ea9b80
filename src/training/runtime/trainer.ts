/**
 * `Trainer`: runs a model's train-step graph with onnxruntime-node.
 *
 * One session per trainer, created once. Params and optimizer state are Float32Arrays held
 * as ort Tensors: the `new:<name>` output tensors of one step are fed, as they are, as the
 * next step's inputs (no copies), and the previous step's tensors are kept one step longer,
 * which makes a rollback after a non-finite loss free. The only per-step allocations are
 * onnxruntime's output buffers and result object, plus a Tensor wrapper when `x` (or int64 `y`)
 * is not the array of the previous step.
 * (Pre-allocated output buffers written in place by onnxruntime were measured 2–3 % slower
 * for the MLP on CPU, so they are not used.)
 */
import * as ort from 'onnxruntime-node'
import { logger } from '../../common/index.js'
import { checkLabels, shapeSize, type TensorDataset, ShapeError } from '../data/index.js'
import { DEFAULT_EVAL_BATCH_SIZE } from './constants.js'
import { ModelContractError, NonFiniteLossError, TrainerOptionsError, TrainerStateError } from './errors.js'
import {
  createSession,
  planProvider,
  type ExecutionProviderName,
  type ProviderPlan,
  type SessionConfig
} from './providers.js'
import type { EvalResult, StepResult, TensorInfo, TrainableModel } from './types.js'

const log = logger('shoal:training:runtime')

/** Labels of a batch: int64 as the graph wants them, or small integers converted on the fly. */
export type BatchLabels =
  BigInt64Array | Uint8Array | Uint16Array | Int32Array | Uint32Array | readonly number[]

export interface TrainerOptions extends SessionConfig {
  /** Initial params (copied), one per `model.params` entry. */
  weights: ReadonlyMap<string, Float32Array>
  /** Initial optimizer state (copied); zeros when omitted. */
  state?: ReadonlyMap<string, Float32Array>
  signal?: AbortSignal
}

/** Params and optimizer state by name, as float32 tensors. */
type Values = Record<string, ort.Tensor>

interface LabelBuffer {
  data: BigInt64Array
  tensor: ort.Tensor
}

const MAX_LABEL_BUFFERS = 4

function isFiniteArray(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false
  return true
}

function checkContract(
  session: ort.InferenceSession,
  inputs: readonly string[],
  outputs: readonly string[],
  graph: string
): void {
  const missingIn = inputs.filter((n) => !session.inputNames.includes(n))
  const missingOut = outputs.filter((n) => !session.outputNames.includes(n))
  if (missingIn.length > 0 || missingOut.length > 0) {
    throw new ModelContractError(
      `${graph} graph lacks inputs [${missingIn.join(', ')}] / outputs [${missingOut.join(', ')}]`,
      { graph, missingInputs: missingIn, missingOutputs: missingOut }
    )
  }
}

/**
 * Trains one model with onnxruntime-node.
 *
 * @example
 * ```ts
 * const trainer = await Trainer.create(compiled, { weights: initParams(compiled, 1), deterministic: true })
 * const { loss } = await trainer.step(x, y, 0.05)
 * const { accuracy } = await trainer.evaluate(test)
 * await trainer.close()
 * ```
 */
export class Trainer {
  readonly model: TrainableModel
  /** The provider the train-step session runs on. */
  readonly executionProvider: ExecutionProviderName
  readonly deterministic: boolean
  /** Shape of one input sample. */
  readonly inputShape: readonly number[]
  /** Number of classes, when the model spec declares it (labels are then range-checked). */
  readonly classes: number | undefined

  private readonly config: SessionConfig
  private readonly session: ort.InferenceSession
  private inferenceSession: Promise<ort.InferenceSession> | undefined
  private readonly sampleSize: number
  /** Params then state tensors, with their sizes. */
  private readonly tensors: ReadonlyArray<TensorInfo & { size: number; output: string }>
  private current: Values = {}
  private previous: Values | undefined
  private stepsDone = 0
  private busy = false
  private closed = false
  private readonly feeds: Record<string, ort.Tensor>
  private readonly lr = new Float32Array(1)
  private readonly lrTensor: ort.Tensor
  private lastX: Float32Array | undefined
  private lastXTensor: ort.Tensor | undefined
  private lastY: BigInt64Array | undefined
  private lastYTensor: ort.Tensor | undefined
  private readonly labelBuffers = new Map<number, LabelBuffer>()

  private constructor(
    model: TrainableModel,
    session: ort.InferenceSession,
    provider: ExecutionProviderName,
    config: SessionConfig,
    weights: ReadonlyMap<string, Float32Array>,
    state: ReadonlyMap<string, Float32Array> | undefined
  ) {
    this.model = model
    this.session = session
    this.executionProvider = provider
    this.config = {
      device: provider,
      deterministic: config.deterministic === true,
      ...(config.intraOpNumThreads !== undefined ? { intraOpNumThreads: config.intraOpNumThreads } : {}),
      ...(config.interOpNumThreads !== undefined ? { interOpNumThreads: config.interOpNumThreads } : {})
    }
    this.deterministic = config.deterministic === true
    this.inputShape = [...model.spec.input]
    this.sampleSize = shapeSize(model.spec.input)
    this.classes = typeof model.spec.classes === 'number' ? model.spec.classes : undefined
    this.tensors = [...model.params, ...model.state].map((t) => ({
      ...t,
      size: shapeSize(t.shape),
      output: `new:${t.name}`
    }))
    this.lrTensor = new ort.Tensor('float32', this.lr, [])
    this.feeds = { lr: this.lrTensor }
    for (const t of model.state) {
      this.current[t.name] = new ort.Tensor('float32', new Float32Array(shapeSize(t.shape)), [...t.shape])
    }
    this.copyInto(model.params, weights, 'weights')
    if (state !== undefined) this.copyInto(model.state, state, 'state')
  }

  /**
   * Create a trainer: one onnxruntime session for the train-step graph, on the device asked for.
   *
   * @throws {ExecutionProviderError} `EP_UNAVAILABLE` when `cuda`/`webgpu` was asked for and fails.
   * @throws {TrainerOptionsError} for contradictory options.
   * @throws {ModelContractError} when the graph lacks the contract's inputs/outputs.
   * @throws {ShapeError} when initial weights or state have the wrong sizes.
   */
  static async create(model: TrainableModel, opts: TrainerOptions): Promise<Trainer> {
    opts.signal?.throwIfAborted()
    if (!(opts.weights instanceof Map)) {
      throw new TrainerOptionsError('initial weights are required (a Map of param name to Float32Array)')
    }
    const plan: ProviderPlan = planProvider(opts)
    const { session, provider } = await createSession(model.trainStep, opts, plan)
    try {
      const names = [...model.params, ...model.state].map((t) => t.name)
      checkContract(
        session,
        [...names, 'x', 'y', 'lr'],
        [...names.map((n) => `new:${n}`), 'loss', 'correct'],
        'train-step'
      )
      const trainer = new Trainer(model, session, provider, opts, opts.weights, opts.state)
      log.info(
        {
          provider,
          reason: provider === plan.provider ? plan.reason : `${plan.provider} failed; fell back to CPU`,
          deterministic: opts.deterministic === true,
          intraOpNumThreads: opts.deterministic === true ? 1 : (opts.intraOpNumThreads ?? 0),
          params: model.params.length
        },
        'trainer ready'
      )
      opts.signal?.throwIfAborted()
      return trainer
    } catch (err) {
      await session.release()
      throw err
    }
  }

  /** Steps completed so far (rolled-back steps excluded). */
  get steps(): number {
    return this.stepsDone
  }

  /**
   * One training step on a batch: forward, loss, backward and optimizer update.
   * `x` holds `y.length` samples of `inputShape`, row-major. The arrays are read, not kept
   * (they may be reused for the next batch once the promise settles); the same `x` and
   * int64 `y` arrays passed again are wrapped without any copy. `opts.inputs` feeds a graph's
   * further inputs (e.g. DP-SGD's mask and noise), kept until replaced.
   *
   * @returns loss and correct count of the batch, on the weights before the update.
   * @throws {ShapeError} `SHAPE_MISMATCH` before calling onnxruntime when `x` does not fit.
   * @throws {LabelRangeError} when a label is outside `[0, classes)`.
   * @throws {NonFiniteLossError} `NON_FINITE_LOSS` when the loss is NaN/Inf. The step is rolled
   *   back; if the batch was finite the weights that produced that loss are discarded as well,
   *   back to those that last gave a finite loss (see the error's `rolledBackTo`).
   */
  async step(
    x: Float32Array,
    y: BatchLabels,
    lr: number,
    opts: { signal?: AbortSignal; inputs?: Readonly<Record<string, ort.Tensor>> } = {}
  ): Promise<StepResult> {
    opts.signal?.throwIfAborted()
    this.enter()
    try {
      const B = y.length
      this.feeds.x = this.inputTensor(x, B)
      this.feeds.y = this.labelTensor(y, B)
      if (opts.inputs !== undefined) Object.assign(this.feeds, opts.inputs)
      if (!Number.isFinite(lr)) {
        throw new TrainerOptionsError(`learning rate must be finite, got ${lr}`, { lr })
      }
      this.lr[0] = lr
      const result = await this.session.run(this.feeds)
      const loss = (result.loss!.data as Float32Array)[0]!
      const correct = (result.correct!.data as Float32Array)[0]!
      if (!Number.isFinite(loss)) this.rollBack(loss, x)
      const next: Values = {}
      for (const t of this.tensors) {
        const v = result[t.output] as ort.Tensor
        if (v.type !== 'float32' || v.size !== t.size) {
          throw new ModelContractError(`train step output '${t.output}' has the wrong type or size`, {
            name: t.name,
            expected: [...t.shape],
            got: [...v.dims]
          })
        }
        next[t.name] = v
      }
      this.previous = this.current
      this.current = next
      this.bindCurrent()
      this.stepsDone++
      return { loss, correct, size: B, step: this.stepsDone }
    } finally {
      this.busy = false
    }
  }

  /**
   * Loss and accuracy of the current weights on a data set, via the inference graph (its
   * session is created on first use and kept).
   *
   * @throws {ShapeError} when the data set's samples do not have the model's input size.
   */
  async evaluate(
    data: TensorDataset,
    batchSize: number = DEFAULT_EVAL_BATCH_SIZE,
    opts: { signal?: AbortSignal } = {}
  ): Promise<EvalResult> {
    if (shapeSize(data.sampleShape) !== this.sampleSize) {
      throw new ShapeError(
        `data samples of [${data.sampleShape.join(', ')}] do not fit model input [${this.inputShape.join(', ')}]`,
        { expected: [...this.inputShape], got: [...data.sampleShape] }
      )
    }
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new TrainerOptionsError(`batch size must be a positive integer, got ${batchSize}`, { batchSize })
    }
    if (this.classes !== undefined) checkLabels(data.y, this.classes)
    this.enter()
    try {
      return await this.evaluateLocked(data, batchSize, opts)
    } finally {
      this.busy = false
    }
  }

  private async evaluateLocked(
    data: TensorDataset,
    batchSize: number,
    opts: { signal?: AbortSignal }
  ): Promise<EvalResult> {
    let lossSum = 0
    let correct = 0
    const S = this.sampleSize
    for (let start = 0; start < data.count; start += batchSize) {
      opts.signal?.throwIfAborted()
      const end = Math.min(data.count, start + batchSize)
      const logits = await this.logits(data.x.subarray(start * S, end * S), end - start)
      const C = logits.length / (end - start)
      for (let i = 0; i < end - start; i++) {
        const row = logits.subarray(i * C, (i + 1) * C)
        let max = -Infinity
        let arg = 0
        for (let c = 0; c < C; c++) {
          if (row[c]! > max) {
            max = row[c]!
            arg = c
          }
        }
        let sum = 0
        for (let c = 0; c < C; c++) sum += Math.exp(row[c]! - max)
        const label = data.y[start + i]!
        lossSum += Math.log(sum) + max - row[label]!
        if (arg === label) correct++
      }
    }
    const count = data.count
    return {
      loss: count > 0 ? lossSum / count : NaN,
      accuracy: count > 0 ? correct / count : NaN,
      correct,
      count
    }
  }

  /**
   * Logits of the current weights for `count` samples (row-major `[count, classes]`).
   *
   * @throws {ShapeError} when `x` does not hold `count` samples.
   */
  async predict(x: Float32Array, count: number, opts: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    opts.signal?.throwIfAborted()
    this.checkX(x, count)
    this.enter()
    try {
      return await this.logits(x, count)
    } finally {
      this.busy = false
    }
  }

  /** A copy of the current params, in model order. */
  getWeights(): Map<string, Float32Array> {
    return this.copyOut(this.model.params)
  }

  /**
   * Replace the params (copied in). Every param must be given, with its exact size.
   *
   * @throws {ShapeError} naming the first missing, unknown or wrongly sized tensor.
   */
  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    this.enter()
    try {
      this.copyInto(this.model.params, weights, 'weights')
    } finally {
      this.busy = false
    }
  }

  /** A copy of the optimizer state, in model order. */
  getState(): Map<string, Float32Array> {
    return this.copyOut(this.model.state)
  }

  /**
   * Replace the optimizer state (copied in); e.g. zeros to reset momentum.
   *
   * @throws {ShapeError} naming the first missing, unknown or wrongly sized tensor.
   */
  setState(state: ReadonlyMap<string, Float32Array>): void {
    this.enter()
    try {
      this.copyInto(this.model.state, state, 'state')
    } finally {
      this.busy = false
    }
  }

  /** Release the onnxruntime sessions. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.session.release()
    const inference = this.inferenceSession
    this.inferenceSession = undefined
    if (inference !== undefined) await (await inference.catch(() => undefined))?.release()
  }

  // ---------------------------------------------------------------------------------------

  private enter(): void {
    if (this.closed) throw new TrainerStateError('TRAINER_CLOSED', 'trainer is closed')
    if (this.busy) throw new TrainerStateError('TRAINER_BUSY', 'trainer is busy with another call')
    this.busy = true
  }

  private bindCurrent(): void {
    for (const t of this.tensors) this.feeds[t.name] = this.current[t.name]!
  }

  private checkX(x: Float32Array, count: number): void {
    const expected = [count, ...this.inputShape]
    if (!(x instanceof Float32Array)) {
      throw new ShapeError(`x must be a Float32Array of shape [${expected.join(', ')}]`, {
        expected,
        got: Object.prototype.toString.call(x)
      })
    }
    if (!(count >= 1) || x.length !== count * this.sampleSize) {
      throw new ShapeError(
        `x has ${x.length} values; expected shape [${expected.join(', ')}] (${count * this.sampleSize} values)`,
        { expected, got: x.length }
      )
    }
  }

  private inputTensor(x: Float32Array, B: number): ort.Tensor {
    if (x === this.lastX && this.lastXTensor !== undefined && x.length === B * this.sampleSize) {
      return this.lastXTensor
    }
    this.checkX(x, B)
    this.lastX = x
    this.lastXTensor = new ort.Tensor('float32', x, [B, ...this.inputShape])
    return this.lastXTensor
  }

  private labelTensor(y: BatchLabels, B: number): ort.Tensor {
    if (this.classes !== undefined) checkLabels(y, this.classes)
    if (y instanceof BigInt64Array) {
      if (y !== this.lastY || this.lastYTensor === undefined) {
        this.lastY = y
        this.lastYTensor = new ort.Tensor('int64', y, [B])
      }
      return this.lastYTensor
    }
    let buf = this.labelBuffers.get(B)
    if (buf === undefined) {
      if (this.labelBuffers.size >= MAX_LABEL_BUFFERS) this.labelBuffers.clear()
      const data = new BigInt64Array(B)
      buf = { data, tensor: new ort.Tensor('int64', data, [B]) }
      this.labelBuffers.set(B, buf)
    }
    for (let i = 0; i < B; i++) buf.data[i] = BigInt(y[i]!)
    return buf.tensor
  }

  /**
   * Discard a step whose loss is not finite. When the batch itself holds NaN/Inf, only this
   * step is discarded. Otherwise the current weights are to blame (they gave a non-finite
   * loss on clean data), so they are discarded too, back to the weights that last gave a
   * finite loss, when those are still held.
   */
  private rollBack(loss: number, x: Float32Array): never {
    const failed = this.stepsDone + 1
    let rolledBackTo = this.stepsDone
    if (isFiniteArray(x) && this.previous !== undefined) {
      this.current = this.previous
      this.bindCurrent()
      this.stepsDone--
      rolledBackTo = this.stepsDone
    }
    this.previous = undefined
    log.warn({ step: failed, loss, rolledBackTo }, 'non-finite loss; step rolled back')
    throw new NonFiniteLossError(
      `loss is ${loss} at step ${failed}; weights rolled back to step ${rolledBackTo}`,
      {
        step: failed,
        loss: String(loss),
        rolledBackTo
      }
    )
  }

  private copyInto(
    infos: readonly TensorInfo[],
    values: ReadonlyMap<string, Float32Array>,
    what: string
  ): void {
    const known = new Set(infos.map((t) => t.name))
    for (const name of values.keys()) {
      if (!known.has(name))
        throw new ShapeError(`unknown ${what} tensor '${name}'`, { name, expected: [...known] })
    }
    for (const t of infos) {
      const v = values.get(t.name)
      const size = shapeSize(t.shape)
      if (v === undefined || !(v instanceof Float32Array) || v.length !== size) {
        throw new ShapeError(
          `${what} tensor '${t.name}' must be a Float32Array of shape [${t.shape.join(', ')}] (${size} values), got ${
            v === undefined ? 'nothing' : `${v.length} values`
          }`,
          { name: t.name, expected: [...t.shape], got: v?.length ?? null }
        )
      }
    }
    const next: Values = { ...this.current }
    for (const t of infos) next[t.name] = new ort.Tensor('float32', values.get(t.name)!.slice(), [...t.shape])
    this.current = next
    this.previous = undefined
    this.bindCurrent()
  }

  private copyOut(infos: readonly TensorInfo[]): Map<string, Float32Array> {
    return new Map(infos.map((t) => [t.name, (this.current[t.name]!.data as Float32Array).slice()]))
  }

  private async inference(): Promise<ort.InferenceSession> {
    if (this.inferenceSession === undefined) {
      const p = createSession(this.model.inference, this.config, {
        provider: this.executionProvider,
        fallbackToCpu: false,
        reason: 'same as train step'
      }).then(({ session }) => {
        checkContract(session, [...this.model.params.map((t) => t.name), 'x'], ['logits'], 'inference')
        return session
      })
      this.inferenceSession = p
      p.catch(() => {
        if (this.inferenceSession === p) this.inferenceSession = undefined
      })
    }
    return this.inferenceSession
  }

  private async logits(x: Float32Array, count: number): Promise<Float32Array> {
    if (this.closed) throw new TrainerStateError('TRAINER_CLOSED', 'trainer is closed')
    const session = await this.inference()
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [count, ...this.inputShape]) }
    for (const p of this.model.params) feeds[p.name] = this.current[p.name]!
    const out = await session.run(feeds, ['logits'])
    return out.logits!.data as Float32Array
  }
}
