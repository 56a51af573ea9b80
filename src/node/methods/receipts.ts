/** `receipts_*` and `ledger_*` RPC methods: stored receipts, their verification, and the credit ledger. */
import { z } from 'zod'
import { method, type RpcMethod } from '../rpc/index.js'
import { ReceiptRequestError, type NodeReceipts } from '../receipts.js'

const ReceiptRecord = z.object({
  hash: z.string(),
  jwt: z.string(),
  job: z.string(),
  round: z.number(),
  issuer: z.string(),
  doc: z.string().optional().describe('CID of the receipt pinned as a dag-json document')
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
  unverifiable: z
    .literal(true)
    .optional()
    .describe('a round nobody can re-execute, credited per its job’s `unverifiable` policy'),
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
        'Verify a receipt level by level: signature, chain (over the issuer’s stored receipts), lineage (grants), re-execution (a fraud proof against it, a re-run now with reexecute when this node can read its data, or this node’s earlier re-run)',
      params: z.object({
        receipt: z.string().min(1).max(65_536).describe('a receipt JWT, or the hash of a stored one'),
        reexecute: z
          .boolean()
          .optional()
          .describe('re-run the round now (deterministic CPU) when this node can read its shards')
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
      handler: async ({ receipt, reexecute }) =>
        receipts.verify(receipt, reexecute === undefined ? {} : { reexecute })
    }),
    method({
      name: 'receipts_audit',
      summary:
        'This node’s re-execution of peers’ receipts (sampled, re-run, matched, mismatched, skipped per reason), the fraud proofs it holds and the DIDs they convict',
      params: z.object({}),
      result: z.object({
        fraction: z.number(),
        considered: z.number(),
        skipped: z.record(z.string(), z.number()),
        reexecuted: z.number(),
        reexecMs: z.number().describe('time spent re-executing (wall, inputs fetched and prepared)'),
        reexecTrainMs: z.number().describe('of which in training steps: the compute'),
        matched: z.number(),
        withinTolerance: z
          .number()
          .describe('of the matches, non-bit-exact rounds within their provider’s tolerance'),
        mismatched: z.number(),
        errors: z.number(),
        queued: z.number(),
        proofsIssued: z.number(),
        proofsAccepted: z.number(),
        proofsRejected: z.record(z.string(), z.number()),
        convicted: z.array(z.string()),
        lineageOffenders: z
          .array(z.string())
          .describe('DIDs whose receipts name grants that had ended: their models are excluded too'),
        proofs: z.array(
          z.object({
            hash: z.string(),
            offender: z.string(),
            verifier: z.string(),
            receipt: z.string(),
            job: z.string(),
            round: z.number(),
            checked: z.enum(['reexecution', 'attested', 'issued']),
            at: z.string()
          })
        )
      }),
      handler: async () => receipts.audit()
    }),
    method({
      name: 'receipts_check_proof',
      summary:
        'Check a fraud proof (re-run when this node can read the data, else accepted only from the data’s owner); a valid one is stored and convicts its offender',
      params: z.object({ proof: z.string().min(1).max(65_536).describe('a fraud-proof JWT') }),
      result: z.object({
        ok: z.boolean(),
        offender: z.string().optional(),
        reason: z.string().optional(),
        detail: z.string().optional(),
        checked: z.string().optional(),
        duplicate: z.boolean().optional()
      }),
      handler: async ({ proof }) => receipts.checkProof(proof)
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
