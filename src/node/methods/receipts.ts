/** `receipts_*` and `ledger_*` RPC methods: stored receipts, their verification, and the credit ledger. */
import { z } from 'zod'
import { method, type RpcMethod } from '../rpc/index.js'
import { ReceiptRequestError, type NodeReceipts } from '../receipts.js'

const ReceiptRecord = z.object({
  hash: z.string(),
  jwt: z.string(),
  job: z.string(),
  round: z.number(),
  issuer: z.string()
})

const Level = z.enum(['signature', 'chain', 'lineage', 'reexecution'])

const Exclusion = z.object({
  did: z.string(),
  reason: z.enum(['equivocation', 'replay', 'fraud', 'lineage']),
  receipt: z.string()
})

const LedgerEntry = z.object({
  did: z.string(),
  job: z.string(),
  round: z.number(),
  samples: z.number(),
  credits: z.number(),
  forfeited: z.boolean(),
  receipt: z.string()
})

export function receiptMethods(receipts: NodeReceipts): RpcMethod[] {
  return [
    method({
      name: 'receipts_list',
      summary: 'Receipts stored on this node (its own and those gossiped), by issuer, job and round',
      params: z.object({ job: z.string().optional(), issuer: z.string().optional().describe('a did:key') }),
      result: z.array(ReceiptRecord),
      handler: async (filter) => receipts.list(filter)
    }),
    method({
      name: 'receipts_get',
      summary: 'One stored receipt by its hash',
      params: z.object({ hash: z.string().describe('receiptHash: the CID of the JWT as a raw block') }),
      result: ReceiptRecord,
      handler: async ({ hash }) => {
        const rec = await receipts.get(hash)
        if (rec === undefined) {
          throw new ReceiptRequestError('RECEIPT_NOT_FOUND', `no receipt ${hash} on this node`, {
            receipt: hash
          })
        }
        return rec
      }
    }),
    method({
      name: 'receipts_verify',
      summary:
        'Verify a receipt level by level: signature, chain (over the issuer’s stored receipts), lineage (grants); re-execution is skipped',
      params: z.object({
        receipt: z.string().min(1).max(65_536).describe('a receipt JWT, or the hash of a stored one')
      }),
      result: z.object({
        receipt: z.string(),
        ok: z.boolean(),
        failed: Level.nullable(),
        levels: z.array(
          z.object({
            level: Level,
            status: z.enum(['pass', 'fail', 'skip']),
            reason: z.string().optional(),
            detail: z.string().optional()
          })
        ),
        issuer: z
          .object({ did: z.string(), excluded: z.boolean(), exclusions: z.array(Exclusion) })
          .nullable(),
        stored: z.boolean()
      }),
      handler: async ({ receipt }) => receipts.verify(receipt)
    }),
    method({
      name: 'receipts_stats',
      summary: 'Gossiped receipts accepted, duplicated, and rejected per reason since the node started',
      params: z.object({}),
      result: z.object({
        accepted: z.number(),
        duplicates: z.number(),
        rejected: z.record(z.string(), z.number())
      }),
      handler: async () => receipts.stats()
    }),
    method({
      name: 'ledger_balances',
      summary:
        'Credits per DID over the stored receipts that pass verification (excluded DIDs forfeit); the hash is equal on nodes with the same receipts',
      params: z.object({}),
      result: z.object({
        balances: z.record(z.string(), z.number()),
        hash: z.string(),
        excluded: z.array(z.string()),
        exclusions: z.array(Exclusion),
        receipts: z.number(),
        verified: z.number()
      }),
      handler: async () => {
        const { history: _history, ...rest } = await receipts.ledger()
        return rest
      }
    }),
    method({
      name: 'ledger_history',
      summary: 'The credited receipts the balances add up from, ordered by (did, job, round, receipt)',
      params: z.object({ did: z.string().optional() }),
      result: z.array(LedgerEntry),
      handler: async ({ did }) => receipts.history(did === undefined ? {} : { did })
    })
  ]
}
