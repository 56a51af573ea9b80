/** `job_*`, `node_pause`/`node_resume`/`node_contributions`, `model_predict` and `model_generate` RPC methods. */
import { z } from 'zod'
import type { ContentStore } from '../../storage/index.js'
import {
  AGGREGATION_RULES,
  DEFAULT_LM_BATCH_SIZE,
  DEFAULT_LM_LR,
  DEFAULT_LM_OPTIMIZER,
  DILOCO_OUTER,
  DPSGD_DEFAULTS,
  GPT_DEFAULT,
  JobOuterSchema,
  MODELS,
  Predictor,
  exportOnnx,
  validateGptSpec,
  validateSpec,
  type JobModel,
  type OuterNesterovOptions,
  type ModelSpec
} from '../../training/index.js'
import { readWeights } from './training.js'
import { generateMethods } from './generate.js'
import { exportOptionsOf, type NodeDb } from '../db.js'
import { JobRequestError, type NodeJobs } from '../jobs/index.js'
import { method, type RpcMethod } from '../rpc/index.js'

const JobRecord = z.object({
  id: z.string(),
  jwt: z.string(),
  name: z.string(),
  creator: z.string(),
  dataset: z.string(),
  createdAt: z.string()
})

/** A job's outer step: as asked (null: plain averaging), else DiLoCo's for a gpt job and none for a classifier. */
function outerOf(
  asked: OuterNesterovOptions | null | undefined,
  gpt: boolean
): { outer?: OuterNesterovOptions } {
  const outer = asked === undefined ? (gpt ? { ...DILOCO_OUTER } : null) : asked
  return outer === null ? {} : { outer }
}

export function jobMethods(
  jobs: NodeJobs,
  store: ContentStore,
  db: NodeDb,
  defaults: { unverifiable?: 'credit' | 'no-credit' | 'exclude' } = {}
): RpcMethod[] {
  // Written into the job only when it differs from the protocol's default (no-credit), so
  // jobs that do not care keep the same document (and id) as before.
  const unverifiableDefault = defaults.unverifiable === 'no-credit' ? undefined : defaults.unverifiable
  return [
    method({
      name: 'job_create',
      summary: 'Create a signed, content-addressed job and announce it on the swarm’s jobs topic',
      params: z.object({
        name: z.string().min(1).max(128),
        dataset: z.string().describe('manifest CID of the dataset'),
        model: z
          .union([z.enum(['mlp', 'cnn', 'gpt']), z.record(z.string(), z.unknown())])
          .optional()
          .describe(
            "mlp, cnn, a classifier spec; gpt (GPT_DEFAULT) or a GPT spec ({ type: 'gpt', … }): trains on a text dataset"
          ),
        optimizer: z
          .record(z.string(), z.unknown())
          .optional()
          .describe('default SGD, momentum 0.9 (a gpt model: AdamW, DEFAULT_LM_OPTIMIZER)'),
        outer: JobOuterSchema.nullable()
          .optional()
          .describe(
            'DiLoCo’s outer step (docs/lm.md, docs/training-swarm.md); default { lr: 0.7, momentum: 0.9 } for gpt, plain averaging for classifiers; null: plain averaging'
          ),
        schedule: z
          .enum(['warmup-cosine', 'constant'])
          .optional()
          .describe(
            'the learning rate over the rounds × H local steps: warmup-cosine (linear warm-up to lr, cosine decay to lr / 10; the default for gpt) or constant (the default for classifiers)'
          ),
        warmup: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe('warm-up steps of a warmup-cosine schedule (default min(100, 5 % of rounds × H))'),
        lr: z
          .number()
          .positive()
          .optional()
          .describe('peak learning rate (default 0.05; gpt: 2e-3; dp-sgd: the tuned DPSGD_DEFAULTS)'),
        batchSize: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe('examples (gpt: windows) per local step (default 32; gpt: 16)'),
        H: z.number().int().min(1).optional().describe('local steps per round'),
        k: z.number().int().min(0).optional().describe('peer models aggregated per round'),
        rounds: z.number().int().min(1).optional(),
        targetAccuracy: z.number().gt(0).max(1).optional(),
        aggregation: z
          .enum(AGGREGATION_RULES)
          .optional()
          .describe('default clipped-gossip: the best worst case under attack in bench:byzantine'),
        compression: z.enum(['none', 'int8']).optional(),
        maxNorm: z.number().positive().optional(),
        seed: z.number().int().min(0).optional(),
        privacy: z
          .looseObject({ clipNorm: z.number().positive() })
          .optional()
          .describe(
            "{ clipNorm, noiseMultiplier } (whole update) or { mode: 'dp-sgd', clipNorm, noiseMultiplier | targetEpsilon, delta }"
          ),
        init: z
          .string()
          .optional()
          .describe('a checkpoint on this node (e.g. an imported personal model) every node starts from'),
        unverifiable: z
          .enum(['credit', 'no-credit', 'exclude'])
          .optional()
          .describe(
            'what rounds nobody can check by re-execution earn in the ledger (default: the node’s receipts.unverifiable, no-credit)'
          )
      }),
      result: JobRecord,
      handler: async (p) => {
        const gpt = p.model === 'gpt' || (typeof p.model === 'object' && p.model.type === 'gpt')
        const dpsgd = (p.privacy as { mode?: unknown } | undefined)?.mode === 'dp-sgd'
        const model: JobModel =
          typeof p.model === 'object'
            ? gpt
              ? validateGptSpec(p.model)
              : validateSpec(p.model)
            : p.model === 'gpt'
              ? validateGptSpec(GPT_DEFAULT)
              : MODELS[p.model ?? 'mlp']
        return jobs.create({
          name: p.name,
          model,
          optimizer: (p.optimizer as never) ?? (gpt ? DEFAULT_LM_OPTIMIZER : { type: 'sgd', momentum: 0.9 }),
          // DiLoCo's outer step by default for a gpt job: in bench:lm-swarm (4 nodes, equal samples)
          // it ends 2.5–19 % below plain averaging's held-out loss at every H measured, 5–100 (BENCHMARKS.md).
          ...outerOf(p.outer, gpt),
          hyper: {
            // A DP-SGD job's open settings are the tuned ones (bench:dpsgd: larger, fewer batches).
            // A gpt job's: bench:lm's AdamW settings (a classifier's 0.05 makes AdamW diverge).
            lr: p.lr ?? (dpsgd ? DPSGD_DEFAULTS.lr : gpt ? DEFAULT_LM_LR : 0.05),
            batchSize: p.batchSize ?? (dpsgd ? DPSGD_DEFAULTS.batchSize : gpt ? DEFAULT_LM_BATCH_SIZE : 32),
            H: p.H ?? (dpsgd ? DPSGD_DEFAULTS.H : 50),
            k: p.k ?? 3,
            ...(p.rounds !== undefined ? { rounds: p.rounds } : { rounds: 20 }),
            ...(p.targetAccuracy !== undefined ? { targetAccuracy: p.targetAccuracy } : {}),
            ...(p.schedule === 'warmup-cosine' || (gpt && p.schedule !== 'constant')
              ? {
                  schedule: {
                    type: 'warmup-cosine' as const,
                    ...(p.warmup !== undefined ? { warmupSteps: p.warmup } : {})
                  }
                }
              : {})
          },
          dataset: p.dataset,
          // ClippedGossip by default: against every attack of bench:byzantine (1 of 5 trainers) the
          // best worst case with the median, at the mean's accuracy without attack (BENCHMARKS.md).
          aggregation: p.aggregation ?? 'clipped-gossip',
          compression: p.compression ?? 'none',
          privacy: (p.privacy as never) ?? null,
          maxNorm: p.maxNorm ?? 1000,
          seed: p.seed ?? 1,
          ...(p.init !== undefined ? { init: p.init } : {}),
          ...((p.unverifiable ?? unverifiableDefault) !== undefined
            ? { unverifiable: p.unverifiable ?? unverifiableDefault }
            : {})
        })
      }
    }),
    method({
      name: 'job_list',
      summary: 'Jobs this node knows (created, announced or joined) and its state in each',
      params: z.object({}),
      result: z.array(JobRecord.extend({ state: z.string() })),
      handler: async () => jobs.list()
    }),
    method({
      name: 'job_join',
      summary: 'Join a job with the shards this node holds grants for',
      params: z.object({ job: z.string(), shards: z.array(z.string()).optional() }),
      result: z.object({ job: z.string(), shards: z.number() }),
      handler: async ({ job, shards }) => jobs.join(job, shards !== undefined ? { shards } : {})
    }),
    method({
      name: 'job_announce',
      summary: 'Publish a known job on the jobs topic again (for nodes that joined the swarm later)',
      params: z.object({ job: z.string() }),
      result: z.object({ job: z.string() }),
      handler: async ({ job }) => {
        const rec = (await jobs.list()).find((j) => j.id === job)
        if (rec === undefined) throw new JobRequestError('JOB_NOT_FOUND', `unknown job ${job}`, { job })
        await jobs.announce(rec)
        return { job }
      }
    }),
    method({
      name: 'job_leave',
      summary: 'Stop contributing to a job (its checkpoints are kept)',
      params: z.object({ job: z.string() }),
      result: z.object({ job: z.string() }),
      handler: async ({ job }) => {
        await jobs.leave(job)
        return { job }
      }
    }),
    method({
      name: 'job_status',
      summary:
        'Round, loss, held-out accuracy, peers, bytes, receipts, rejected updates and checkpoints of a job',
      params: z.object({ job: z.string() }),
      result: z.record(z.string(), z.unknown()),
      handler: async ({ job }) => jobs.status(job)
    }),
    method({
      name: 'job_lineage',
      summary:
        'Which grants (datasets, owners) trained a job and which of this node’s checkpoints each influenced, from the receipts; revoked or expired grants and their unlearning (rollback and retraining)',
      params: z.object({ job: z.string() }),
      result: z.object({
        job: z.string(),
        epoch: z.string(),
        excluded: z.array(z.string()),
        grants: z.array(
          z.object({
            grant: z.string(),
            dataset: z.string().nullable(),
            owner: z.string().nullable(),
            grantee: z.string().nullable(),
            status: z.enum(['valid', 'revoked', 'expired', 'unknown']),
            unlearned: z.boolean(),
            firstRound: z.number(),
            lastRound: z.number(),
            receipts: z.number(),
            trainers: z.array(z.string())
          })
        ),
        checkpoints: z.array(
          z.object({
            cid: z.string(),
            round: z.number(),
            excluded: z.array(z.string()),
            influencedBy: z.array(z.string())
          })
        ),
        unlearning: z.array(
          z.object({
            grant: z.string(),
            how: z.enum(['revoked', 'expired']),
            fromRound: z.number(),
            rolledBackTo: z.number().nullable(),
            checkpointsDropped: z.number(),
            retrain: z.enum(['retraining', 'done', 'no-data', 'not-training']),
            startedAt: z.string(),
            finishedAt: z.string().optional(),
            ms: z.number().optional()
          })
        )
      }),
      handler: async ({ job }) => jobs.lineage(job)
    }),
    method({
      name: 'node_pause',
      summary:
        'Pause contribution to every job (volunteers): before the next step, or with fromRound, ' +
        'before round fromRound of each job (the rounds before it are trained)',
      params: z.object({ fromRound: z.number().int().nonnegative().optional() }),
      result: z.object({ paused: z.boolean() }),
      handler: async ({ fromRound }) => {
        jobs.pauseAll(fromRound === undefined ? {} : { fromRound })
        return { paused: true }
      }
    }),
    method({
      name: 'node_resume',
      summary: 'Resume contribution',
      params: z.object({}),
      result: z.object({ paused: z.boolean() }),
      handler: async () => {
        jobs.resumeAll()
        return { paused: false }
      }
    }),
    method({
      name: 'node_contributions',
      summary: 'What this node contributed to each job: rounds, samples, receipts, bytes',
      params: z.object({}),
      result: z.record(z.string(), z.unknown()),
      handler: async () => ({ paused: jobs.isPaused, jobs: jobs.contributions() })
    }),
    method({
      name: 'model_predict',
      summary: 'Run the current model of a job (or a checkpoint) on inputs; returns labels and probabilities',
      params: z.object({
        job: z.string().optional(),
        checkpoint: z.string().optional(),
        inputs: z
          .array(z.array(z.number()))
          .min(1)
          .max(1024)
          .describe(
            'samples as the data comes (pixels in [0, 1]), each flattened to the model input size; the model standardises them'
          )
      }),
      result: z.object({
        checkpoint: z.string(),
        predictions: z.array(z.object({ label: z.number(), probs: z.array(z.number()) }))
      }),
      handler: async ({ job, checkpoint, inputs }, { signal }) => {
        const cid = checkpoint ?? (job !== undefined ? (await jobs.latestCheckpoint(job))?.cid : undefined)
        if (cid === undefined) {
          throw new JobRequestError(
            'JOB_NOT_FOUND',
            'name a job with a checkpoint on this node, or a checkpoint',
            {
              job: job ?? null
            }
          )
        }
        const rec = await db.get('checkpoints', cid)
        if (rec === undefined)
          throw new JobRequestError('JOB_NOT_FOUND', `no checkpoint ${cid} on this node`, { cid })
        const spec = rec.spec as ModelSpec
        const onnx = exportOnnx(spec, await readWeights(store, cid, signal), {}, exportOptionsOf(rec))
        const size = spec.input.reduce((a, b) => a * b, 1)
        const x = new Float32Array(inputs.length * size)
        inputs.forEach((row, i) => {
          if (row.length !== size) {
            throw new JobRequestError(
              'JOB_NO_DATA',
              `input ${i} has ${row.length} values; the model takes ${size}`,
              {
                index: i,
                expected: size,
                actual: row.length
              }
            )
          }
          x.set(row, i * size)
        })
        const predictor = await Predictor.create(onnx)
        try {
          const p = await predictor.predict(x, inputs.length, { signal })
          return {
            checkpoint: cid,
            predictions: Array.from({ length: p.count }, (_, i) => ({
              label: p.labels[i]!,
              probs: Array.from(p.probs.subarray(i * p.classes, (i + 1) * p.classes))
            }))
          }
        } finally {
          await predictor.close()
        }
      }
    }),
    ...generateMethods(jobs, store, db)
  ]
}
