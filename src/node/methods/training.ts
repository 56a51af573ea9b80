/**
 * Local training (`train_local`, `train_status`) and model export/import (`model_export`,
 * `model_import`) RPC methods. Training runs as a background task in the daemon; the CLI polls
 * `train_status` to draw a progress bar. Every epoch's weights are checkpointed in the storage
 * layer (encrypted for this node) and recorded with their held-out accuracy.
 */
import { randomUUID } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import { ShoalError, type ErrorCategory, logger } from '../../common/index.js'
import {
  asDiskFull,
  loadMnist,
  trainTestSplit,
  type LabeledImages,
  type ContentStore
} from '../../storage/index.js'
import {
  MODELS,
  decodeWeights,
  encodeWeights,
  exportOnnx,
  extractWeights,
  readOnnxMetadata,
  readInputContract,
  readLineage,
  IMAGE_NORMALIZATION,
  trainLocal,
  validateSpec,
  paramsOf,
  type ModelSpec
} from '../../training/index.js'
import type { ShoalConfig } from '../config/index.js'
import { exportOptionsOf, type CheckpointRecord, type NodeDb } from '../db.js'
import type { JobLineage } from '../jobs/index.js'
import { method, type RpcMethod } from '../rpc/index.js'
import { BadRequestError, parseCid } from './storage.js'

const log = logger('shoal:node:training')

/** Thrown for training requests that cannot run (unknown task or checkpoint, busy). */
export class TrainingRequestError extends ShoalError<
  'TASK_NOT_FOUND' | 'CHECKPOINT_NOT_FOUND' | 'TRAINING_BUSY' | 'MODEL_INVALID' | 'DATASET_UNAVAILABLE',
  Record<string, unknown>
> {
  static override readonly categories: Record<TrainingRequestError['code'], ErrorCategory> = {
    TASK_NOT_FOUND: 'not-found',
    CHECKPOINT_NOT_FOUND: 'not-found',
    TRAINING_BUSY: 'refused',
    MODEL_INVALID: 'usage',
    DATASET_UNAVAILABLE: 'unavailable'
  }
}

interface EpochLine {
  epoch: number
  loss: number
  accuracy?: number
  testLoss?: number
  checkpoint?: string
}

interface Task {
  id: string
  state: 'running' | 'done' | 'failed' | 'cancelled'
  model: string
  epochs: number
  stepsPerEpoch: number
  epoch: number
  step: number
  history: EpochLine[]
  executionProvider?: string
  samplesPerSecond?: number
  error?: { code?: string; message: string }
  controller: AbortController
}

const TaskView = z.object({
  id: z.string(),
  state: z.enum(['running', 'done', 'failed', 'cancelled']),
  model: z.string(),
  epochs: z.number(),
  stepsPerEpoch: z.number(),
  epoch: z.number(),
  step: z.number(),
  history: z.array(
    z.object({
      epoch: z.number(),
      loss: z.number(),
      accuracy: z.number().optional(),
      testLoss: z.number().optional(),
      checkpoint: z.string().optional()
    })
  ),
  executionProvider: z.string().optional(),
  samplesPerSecond: z.number().optional(),
  error: z.object({ code: z.string().optional(), message: z.string() }).optional()
})

function view(t: Task): z.infer<typeof TaskView> {
  const { controller: _c, ...rest } = t
  return rest
}

export interface TrainingComponents {
  store: ContentStore
  db: NodeDb
  config: ShoalConfig
  /** A job's lineage (grants and their consent status), carried by exported job checkpoints. */
  lineage?: (job: string) => Promise<Pick<JobLineage, 'grants' | 'excluded'>>
  /** The digits of a dataset this node owns or holds grants for (personal models: `train_local` on own data). */
  readDataset?: (dataset: string, signal?: AbortSignal) => Promise<LabeledImages>
  /** Whether a grant has ended here (revoked or expired): imported models influenced by it are flagged. */
  grantStatus?: (grant: string) => Promise<'valid' | 'revoked' | 'expired' | 'unknown'>
}

/** Consent status of the data that trained a checkpoint, as export metadata carries it. */
export interface ConsentEntry {
  grant: string
  dataset: string | null
  owner: string | null
  status: string
  unlearned: boolean
}

function resolveSpec(model: string | Record<string, unknown>): ModelSpec {
  if (typeof model === 'string') {
    const m = (MODELS as Record<string, ModelSpec>)[model]
    if (m === undefined) {
      throw new TrainingRequestError(
        'MODEL_INVALID',
        `unknown model "${model}" (known: ${Object.keys(MODELS).join(', ')})`,
        {
          model
        }
      )
    }
    return m
  }
  return validateSpec(model)
}

/** The weights (SHOALWT1) stored under `cid`: checkpoints and imported models. */
export async function readWeights(
  store: ContentStore,
  cid: string,
  signal?: AbortSignal
): Promise<Map<string, Float32Array>> {
  const chunks: Uint8Array[] = []
  for await (const c of store.get(parseCid(cid), { signal })) chunks.push(c)
  return decodeWeights(Buffer.concat(chunks))
}

const Consent = z.object({
  grant: z.string(),
  dataset: z.string().nullable(),
  owner: z.string().nullable(),
  status: z.string(),
  unlearned: z.boolean()
})

/** The consent entries of an export's metadata (empty when absent or unreadable). */
function parseConsent(text: string | undefined): ConsentEntry[] {
  if (text === undefined) return []
  try {
    const parsed = z.array(Consent).safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : []
  } catch {
    return []
  }
}

export function trainingMethods(c: TrainingComponents): RpcMethod[] {
  const tasks = new Map<string, Task>()
  /** The grants behind a checkpoint: a job's lineage, or what an imported model carried. */
  const consentOf = async (rec: CheckpointRecord): Promise<ConsentEntry[]> => {
    if (rec.consent !== undefined) return rec.consent
    if (rec.job === undefined || c.lineage === undefined) return []
    const l = await c.lineage(rec.job)
    return l.grants
      .filter((g) => !(rec.excluded ?? []).includes(g.grant))
      .map((g) => ({
        grant: g.grant,
        dataset: g.dataset,
        owner: g.owner,
        status: g.status,
        unlearned: g.unlearned
      }))
  }
  const taskOf = (id: string): Task => {
    const t = tasks.get(id)
    if (t === undefined)
      throw new TrainingRequestError('TASK_NOT_FOUND', `no training task ${id}`, { task: id })
    return t
  }
  const checkpoint = async (cid: string): Promise<CheckpointRecord> => {
    const r = await c.db.get('checkpoints', cid)
    if (r === undefined) {
      throw new TrainingRequestError('CHECKPOINT_NOT_FOUND', `no checkpoint ${cid} on this node`, { cid })
    }
    return r
  }
  return [
    method({
      name: 'train_local',
      summary: 'Start a centralized (single-node) training run on MNIST; returns a task id',
      params: z.object({
        model: z.union([z.enum(['mlp', 'cnn']), z.record(z.string(), z.unknown())]).optional(),
        epochs: z.number().int().min(1).max(1000).optional(),
        batchSize: z.number().int().min(1).max(4096).optional(),
        lr: z.number().positive().optional(),
        seed: z.number().int().optional(),
        trainSamples: z.number().int().min(1).max(9000).optional(),
        deterministic: z.boolean().optional(),
        initialCheckpoint: z
          .string()
          .optional()
          .describe('start from this checkpoint (e.g. an imported model)'),
        dataset: z
          .string()
          .optional()
          .describe(
            'train on this dataset (manifest CID) that the node owns: a personal model on one’s own data; default the mnist package'
          )
      }),
      result: z.object({ task: z.string() }),
      handler: async (p) => {
        if ([...tasks.values()].some((t) => t.state === 'running')) {
          throw new TrainingRequestError(
            'TRAINING_BUSY',
            'a training task is already running on this node',
            {}
          )
        }
        const spec = resolveSpec(p.model ?? 'mlp')
        const epochs = p.epochs ?? 10
        const batchSize = p.batchSize ?? 64
        const seed = p.seed ?? 42
        const all = await loadMnist()
        const split = trainTestSplit(all, { train: p.trainSamples ?? 8000, test: 2000, seed })
        const test = split.test
        let train = split.train
        if (p.dataset !== undefined) {
          if (c.readDataset === undefined) {
            throw new TrainingRequestError('DATASET_UNAVAILABLE', 'this node cannot read datasets', {})
          }
          // Held-out digits: the mnist package's test split, disjoint from any import of its training part.
          train = await c.readDataset(p.dataset)
        }
        const initialWeights =
          p.initialCheckpoint !== undefined ? await readWeights(c.store, p.initialCheckpoint) : undefined
        const task: Task = {
          id: randomUUID(),
          state: 'running',
          model: typeof p.model === 'string' ? p.model : spec.name,
          epochs,
          stepsPerEpoch: Math.ceil(train.count / batchSize),
          epoch: 0,
          step: 0,
          history: [],
          controller: new AbortController()
        }
        tasks.set(task.id, task)
        const lineage = [
          ...(p.initialCheckpoint !== undefined ? [p.initialCheckpoint] : []),
          ...(p.dataset !== undefined ? [p.dataset] : [])
        ]
        trainLocal({
          spec,
          optimizer: { type: 'sgd', momentum: 0.9 },
          lr: { kind: 'cosine', lr: p.lr ?? 0.05 },
          epochs,
          batchSize,
          seed,
          train,
          test,
          normalization: IMAGE_NORMALIZATION,
          device: c.config.training.device,
          threads: c.config.training.threads > 0 ? c.config.training.threads : undefined,
          deterministic: p.deterministic,
          initialWeights,
          signal: task.controller.signal,
          onProgress: (e) => {
            task.epoch = e.epoch
            task.step = e.step
          },
          onEpoch: (r) => {
            task.history.push({
              epoch: r.epoch,
              loss: r.loss,
              accuracy: r.testAccuracy,
              testLoss: r.testLoss
            })
          },
          onCheckpoint: async (epoch, weights) => {
            const added = await c.store.add(encodeWeights(weights, paramsOf(spec)), {
              name: `checkpoint ${task.id} epoch ${epoch}`
            })
            const cid = added.cid.toString()
            const line = task.history.find((h) => h.epoch === epoch)
            if (line !== undefined) line.checkpoint = cid
            const record: CheckpointRecord = {
              cid,
              spec,
              source: 'local',
              epoch,
              accuracy: line?.accuracy,
              loss: line?.loss,
              lineage: [...lineage],
              createdAt: new Date().toISOString()
            }
            await c.db.put('checkpoints', cid, record)
            lineage.push(cid)
          }
        }).then(
          (r) => {
            task.state = 'done'
            task.executionProvider = r.executionProvider
            task.samplesPerSecond = Math.round(r.samplesPerSecond)
            log.info({ task: task.id, accuracy: task.history.at(-1)?.accuracy }, 'local training done')
          },
          (caught: unknown) => {
            const err = asDiskFull(caught) ?? caught
            task.state = task.controller.signal.aborted ? 'cancelled' : 'failed'
            task.error = { code: (err as ShoalError).code, message: (err as Error).message }
            log.warn({ task: task.id, err: task.error }, 'local training stopped')
          }
        )
        return { task: task.id }
      }
    }),
    method({
      name: 'train_status',
      summary: 'Progress, per-epoch loss and held-out accuracy, and checkpoints of a training task',
      params: z.object({ task: z.string() }),
      result: TaskView,
      handler: async ({ task }) => view(taskOf(task))
    }),
    method({
      name: 'train_cancel',
      summary: 'Stop a running training task (its last checkpoint is kept)',
      params: z.object({ task: z.string() }),
      result: TaskView,
      handler: async ({ task }) => {
        const t = taskOf(task)
        t.controller.abort()
        return view(t)
      }
    }),
    method({
      name: 'model_list',
      summary: 'Checkpoints held by this node',
      params: z.object({}),
      result: z.array(z.record(z.string(), z.unknown())),
      handler: async () => (await c.db.list('checkpoints')) as unknown as Record<string, unknown>[]
    }),
    method({
      name: 'model_export',
      summary:
        'Write a checkpoint as a standard ONNX inference model (weights as initializers, lineage in metadata)',
      params: z.object({
        checkpoint: z.string().optional(),
        job: z.string().optional().describe('export the newest checkpoint of this job'),
        path: z.string().min(1)
      }),
      result: z.object({
        path: z.string(),
        bytes: z.number(),
        lineage: z.array(z.string()),
        consent: z.array(Consent)
      }),
      handler: async ({ checkpoint: given, job, path }) => {
        const cid = given ?? (job !== undefined ? (await c.db.get('latest', job))?.cid : undefined)
        if (cid === undefined) {
          throw new TrainingRequestError(
            'CHECKPOINT_NOT_FOUND',
            'name a checkpoint, or a job with a checkpoint on this node',
            {
              job: job ?? null
            }
          )
        }
        const rec = await checkpoint(cid)
        const weights = await readWeights(c.store, cid)
        const lineage = [...rec.lineage, cid]
        const consent = await consentOf(rec)
        const onnx = exportOnnx(
          rec.spec as ModelSpec,
          weights,
          {
            job: rec.job,
            lineage,
            'shoal.consent': JSON.stringify(consent),
            ...(rec.excluded !== undefined && rec.excluded.length > 0
              ? { 'shoal.excluded': rec.excluded }
              : {}),
            ...(rec.accuracy !== undefined ? { 'shoal.accuracy': rec.accuracy } : {}),
            'shoal.checkpoint': cid,
            'shoal.source': rec.source
          },
          exportOptionsOf(rec)
        )
        await writeFile(path, onnx)
        return { path, bytes: onnx.length, lineage, consent }
      }
    }),
    method({
      name: 'model_import',
      summary: 'Import an ONNX model exported by Shoal as a checkpoint (a starting point for training)',
      params: z.object({ path: z.string().min(1) }),
      result: z.object({
        checkpoint: z.string(),
        lineage: z.array(z.string()),
        consent: z.array(Consent),
        warnings: z.array(z.string())
      }),
      handler: async ({ path }) => {
        const bytes = new Uint8Array(
          await readFile(path).catch((err: NodeJS.ErrnoException) => {
            throw new BadRequestError('BAD_PATH', `cannot read ${path}: ${err.code ?? err.message}`, {
              value: path
            })
          })
        )
        const meta = readOnnxMetadata(bytes)
        const specText = meta['shoal.spec']
        if (specText === undefined) {
          throw new TrainingRequestError(
            'MODEL_INVALID',
            `${path} is not a Shoal export (no shoal.spec metadata)`,
            { path }
          )
        }
        let specJson: unknown
        try {
          specJson = JSON.parse(specText)
        } catch {
          throw new TrainingRequestError('MODEL_INVALID', `${path}: its shoal.spec metadata is not JSON`, {
            path
          })
        }
        const spec = validateSpec(specJson)
        // Its input contract says whether the graph standardises its input; an export from
        // before contracts were recorded was trained on standardised images.
        const contract = readInputContract(meta)
        const lineage = readLineage(meta)
        const weights = extractWeights(bytes, spec)
        const added = await c.store.add(encodeWeights(weights, paramsOf(spec)), { name: `imported ${path}` })
        const cid = added.cid.toString()
        const consent = parseConsent(meta['shoal.consent'])
        // Data whose grant has ended since the export (as this node knows) still shaped the model.
        const warnings: string[] = []
        for (const e of consent) {
          if (e.unlearned) continue
          const here = (await c.grantStatus?.(e.grant)) ?? 'unknown'
          const status = here === 'unknown' ? e.status : here
          if (status === 'revoked' || status === 'expired') {
            warnings.push(
              `the model was trained on data of grant ${e.grant} (dataset ${e.dataset ?? '?'}), which is ${status}: ` +
                'retrain without it before using the model'
            )
          }
        }
        await c.db.put('checkpoints', cid, {
          cid,
          spec,
          source: 'import',
          lineage,
          consent,
          ...(contract !== undefined ? { normalization: contract.normalization } : {}),
          createdAt: new Date().toISOString()
        })
        return { checkpoint: cid, lineage, consent, warnings }
      }
    })
  ]
}
