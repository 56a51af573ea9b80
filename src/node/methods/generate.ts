/** `model_generate`: continue a prompt with a language model — a job's latest model or a checkpoint. */
import { z } from 'zod'
import type { ContentStore } from '../../storage/index.js'
import {
  DEFAULT_GENERATE_TOKENS,
  DEFAULT_TEMPERATURE,
  LmOptionsError,
  generate,
  validateGptSpec
} from '../../training/index.js'
import type { NodeDb } from '../db.js'
import { JobRequestError, type NodeJobs } from '../jobs/index.js'
import { method, type RpcMethod } from '../rpc/index.js'
import { readWeights } from './training.js'

/** Most tokens one call generates. */
export const MAX_GENERATE_TOKENS = 4096

export function generateMethods(
  jobs: Pick<NodeJobs, 'latestCheckpoint'>,
  store: ContentStore,
  db: Pick<NodeDb, 'get'>
): RpcMethod[] {
  return [
    method({
      name: 'model_generate',
      summary: 'Continue a prompt with a language model: the latest model of a gpt job, or a checkpoint',
      params: z.object({
        job: z.string().optional(),
        checkpoint: z.string().optional(),
        prompt: z.string().min(1).max(65_536).describe('UTF-8 text; its bytes are the tokens'),
        tokens: z
          .number()
          .int()
          .min(0)
          .max(MAX_GENERATE_TOKENS)
          .optional()
          .describe(`tokens (bytes) to generate, default ${DEFAULT_GENERATE_TOKENS}`),
        temperature: z
          .number()
          .min(0)
          .max(100)
          .optional()
          .describe(`sampling temperature, default ${DEFAULT_TEMPERATURE}; 0 is greedy`),
        seed: z.number().int().min(0).max(0xffffffff).optional().describe('sampling seed (default 1)')
      }),
      result: z.object({ checkpoint: z.string(), text: z.string(), completion: z.string() }),
      handler: async ({ job, checkpoint, prompt, tokens, temperature, seed }, { signal }) => {
        const cid = checkpoint ?? (job !== undefined ? (await jobs.latestCheckpoint(job))?.cid : undefined)
        if (cid === undefined) {
          throw new JobRequestError(
            'JOB_NOT_FOUND',
            job === undefined
              ? 'name a job with a checkpoint on this node, or a checkpoint'
              : `job ${job} has no checkpoint on this node`,
            { job: job ?? null }
          )
        }
        const rec = await db.get('checkpoints', cid)
        if (rec === undefined)
          throw new JobRequestError('JOB_NOT_FOUND', `no checkpoint ${cid} on this node`, { cid })
        const kind = (rec.spec as { type?: unknown; name?: unknown } | null)?.type
        if (kind !== 'gpt') {
          const name = (rec.spec as { name?: unknown } | null)?.name
          throw new LmOptionsError(
            `checkpoint ${cid} is not a language model (its model is ${JSON.stringify(name ?? null)}); model_predict runs classifiers`,
            { checkpoint: cid }
          )
        }
        const spec = validateGptSpec(rec.spec)
        const weights = await readWeights(store, cid, signal)
        const out = await generate(weights, prompt, {
          spec,
          tokens: tokens ?? DEFAULT_GENERATE_TOKENS,
          temperature: temperature ?? DEFAULT_TEMPERATURE,
          seed: seed ?? 1
        })
        return { checkpoint: cid, text: out.text, completion: out.completion }
      }
    })
  ]
}
