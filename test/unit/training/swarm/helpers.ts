/** Shared fixtures of the swarm specs: a small non-IID mnist task, jobs, nodes in one process. */
import { Identity, keypairFromSeed } from '../../../../src/identity/index.js'
import {
  loadMnist,
  shardDirichlet,
  subset,
  trainTestSplit,
  type LabeledImages
} from '../../../../src/storage/datasets/index.js'
import { BatchLoader, fromImages, type TensorDataset } from '../../../../src/training/data/index.js'
import { compileModel, initParams, MODELS } from '../../../../src/training/graph/index.js'
import { Trainer } from '../../../../src/training/runtime/index.js'
import {
  MemoryCheckpointStore,
  parseJobSpec,
  SwarmTrainer,
  type CheckpointStore,
  type ClassifierJobSpec,
  type JobSpecInput,
  type RoundReceiptSigner,
  type SwarmTrainerInit,
  type UpdateBus,
  type WeightStore
} from '../../../../src/training/swarm/index.js'

/** A deterministic identity from a small seed number. */
export function identityOf(seed: number): Identity {
  const bytes = new Uint8Array(32)
  bytes.fill(seed & 0xff)
  bytes[0] = 0x5a
  return Identity.fromKeypair(keypairFromSeed(bytes))
}

export const CREATOR = identityOf(200)
export const DATASET_CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

/** A job spec for the small MLP task (not signed: the trainer only needs the spec). */
export function jobInput(overrides: Partial<JobSpecInput> = {}): JobSpecInput {
  return {
    name: 'mnist-mlp-test',
    model: MODELS.mlp,
    optimizer: { type: 'sgd', momentum: 0.9 },
    hyper: { lr: 0.05, batchSize: 32, H: 8, k: 3, rounds: 6 },
    dataset: DATASET_CID,
    aggregation: 'mean',
    compression: 'none',
    privacy: null,
    maxNorm: 30,
    seed: 11,
    ...overrides
  }
}

export function testJob(overrides: Partial<JobSpecInput> = {}): ClassifierJobSpec {
  return parseJobSpec({ ...jobInput(overrides), creator: CREATOR.did }) as ClassifierJobSpec
}

export interface SmallTask {
  train: LabeledImages
  test: TensorDataset
  union: TensorDataset
  /** Non-IID shards of `train`, one per node. */
  shards: TensorDataset[]
}

let mnist: Promise<LabeledImages> | undefined

/** `nodes` Dirichlet(alpha) shards of `trainCount` mnist digits, and `testCount` held-out ones. */
export async function smallTask(
  nodes: number,
  opts: { trainCount?: number; testCount?: number; alpha?: number; seed?: number } = {}
): Promise<SmallTask> {
  mnist ??= loadMnist()
  const all = await mnist
  const { train, test } = trainTestSplit(all, {
    train: opts.trainCount ?? 800,
    test: opts.testCount ?? 400,
    seed: opts.seed ?? 7
  })
  const split = shardDirichlet(train, nodes, opts.alpha ?? 0.5, opts.seed ?? 7, { minSize: 40 })
  return {
    train,
    test: fromImages(test, { shape: [784] }),
    union: fromImages(train, { shape: [784] }),
    shards: split.map((idx) => fromImages(subset(train, idx), { shape: [784] }))
  }
}

/** Held-out accuracy of a centralised run: `steps` SGD steps on the union, same hyper-parameters. */
export async function centralBaseline(
  job: ClassifierJobSpec,
  union: TensorDataset,
  test: TensorDataset,
  steps: number
): Promise<number> {
  const compiled = compileModel(job.model, job.optimizer)
  const trainer = await Trainer.create(compiled, {
    weights: initParams(compiled, job.seed),
    deterministic: true
  })
  try {
    const loader = new BatchLoader(union, { batchSize: job.hyper.batchSize, seed: job.seed, dropLast: true })
    let done = 0
    for (let epoch = 0; done < steps; epoch++) {
      for (const b of loader.epochSync(epoch)) {
        if (done >= steps) break
        await trainer.step(b.x, b.y, job.hyper.lr)
        done++
      }
    }
    return (await trainer.evaluate(test)).accuracy
  } finally {
    await trainer.close()
  }
}

/** L2 distance between two models. */
export function distance(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): number {
  let s = 0
  for (const [name, x] of a) {
    const y = b.get(name)!
    for (let i = 0; i < x.length; i++) s += (x[i]! - y[i]!) ** 2
  }
  return Math.sqrt(s)
}

/**
 * The setup every swarm suite shares: a small task loaded once (`before`) and the nodes a test
 * pushes on `nodes`, stopped after each test. Call it in a `describe` body.
 */
export function swarmSuite(
  nodes: number,
  opts: Parameters<typeof smallTask>[1] = {}
): { readonly task: SmallTask; nodes: SwarmTrainer[] } {
  let task: SmallTask | undefined
  const running: SwarmTrainer[] = []
  before(async () => {
    task = await smallTask(nodes, opts)
  })
  afterEach(async () => {
    await Promise.all(running.splice(0).map(async (n) => n.stop()))
  })
  return {
    get task(): SmallTask {
      if (task === undefined) throw new Error('swarmSuite: the task is loaded in before()')
      return task
    },
    nodes: running
  }
}

/** A SwarmTrainer with fast test defaults (deterministic, short waits). */
export function makeNode(
  parts: {
    bus: UpdateBus
    store: WeightStore
    checkpoints?: CheckpointStore
    train: TensorDataset
    test?: TensorDataset
    receipts?: RoundReceiptSigner
    exclusions?: { excluded(did: string): boolean }
  },
  init: Omit<SwarmTrainerInit, 'jobId'> & { jobId?: string }
): SwarmTrainer {
  return new SwarmTrainer(
    {
      bus: parts.bus,
      store: parts.store,
      checkpoints: parts.checkpoints ?? new MemoryCheckpointStore(),
      train: parts.train,
      ...(parts.test !== undefined ? { test: parts.test } : {}),
      ...(parts.receipts !== undefined ? { receipts: parts.receipts } : {}),
      ...(parts.exclusions !== undefined ? { exclusions: parts.exclusions } : {})
    },
    {
      jobId: 'job-test',
      deterministic: true,
      joinWaitMs: 0,
      peerWaitMs: 2_000,
      fetchTimeoutMs: 2_000,
      noiseSeed: 1,
      ...init
    }
  )
}
