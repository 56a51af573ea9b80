/** `shoal receipts list|verify|audit` and `shoal ledger [history]`: clients of the receipts_* and ledger_* RPC methods. */
import type { Command } from 'commander'
import type { AuditStats } from '../audit.js'
import type { RpcClient } from '../rpc/index.js'

/** Exit code of `shoal receipts verify` when a level fails (EXIT.REFUSED in main.ts). */
export const EXIT_RECEIPT_INVALID = 6

interface ReceiptRow {
  hash: string
  job: string
  round: number
  issuer: string
}

interface VerifyView {
  receipt: string
  ok: boolean
  failed: string | null
  levels: Array<{ level: string; status: string; reason?: string; detail?: string }>
  issuer: { did: string; excluded: boolean; exclusions: Array<{ reason: string; receipt: string }> } | null
}

/** What `receipts_audit` returns (a type-only import: nothing of the audit service loads here). */
type AuditView = AuditStats & {
  fraction: number
  proofs: Array<{ offender: string; verifier: string; job: string; round: number; checked: string }>
}

interface BalancesView {
  balances: Record<string, number>
  hash: string
  excluded: string[]
  receipts: number
  verified: number
}

interface EntryView {
  did: string
  job: string
  round: number
  samples: number
  credits: number
  forfeited: boolean
  unverifiable?: true
  receipt: string
}

/** Rows of cells as left-aligned columns. */
function table(rows: string[][]): string {
  const widths = rows.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), [])
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n')
}

function defined(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined))
}

export function registerReceiptCommands(
  program: Command,
  client: () => Promise<RpcClient>,
  out: (json: boolean, value: unknown, human: () => string) => void,
  json: () => boolean
): void {
  const receipts = program.command('receipts').description('training receipts stored on this node')
  receipts
    .command('list')
    .description('stored receipts (this node’s and those gossiped in the swarm)')
    .option('--job <id>', 'only this job')
    .option('--issuer <did>', 'only this trainer')
    .action(async (o: { job?: string; issuer?: string }) => {
      const r = await (await client()).call<ReceiptRow[]>('receipts_list', defined(o))
      out(json(), r, () =>
        r.length === 0
          ? 'no receipts'
          : table([
              ['HASH', 'ISSUER', 'JOB', 'ROUND'],
              ...r.map((x) => [x.hash, x.issuer, x.job, String(x.round)])
            ])
      )
    })
  receipts
    .command('verify <receipt>')
    .description(
      `verify a receipt (JWT or hash) level by level; exit ${EXIT_RECEIPT_INVALID} when a level fails`
    )
    .option('--reexecute', 're-run the round now (deterministic CPU) when this node can read its data')
    .action(async (receipt: string, o: { reexecute?: boolean }) => {
      const r = await (
        await client()
      ).call<VerifyView>('receipts_verify', {
        receipt,
        ...(o.reexecute === true ? { reexecute: true } : {})
      })
      out(json(), r, () => {
        const lines = [
          `receipt ${r.receipt}`,
          table(
            r.levels.map((l) => [
              l.level,
              l.status,
              [l.reason, l.detail].filter((s) => s !== undefined).join(': ')
            ])
          ),
          r.ok ? 'valid' : `INVALID at the ${r.failed ?? '?'} level`
        ]
        if (r.issuer?.excluded === true) {
          const why = [...new Set(r.issuer.exclusions.map((e) => e.reason))].join(', ')
          lines.push(`issuer ${r.issuer.did} is excluded from the ledger (${why})`)
        }
        return lines.join('\n')
      })
      if (!r.ok) process.exitCode = EXIT_RECEIPT_INVALID
    })

  receipts
    .command('audit')
    .description('peers’ receipts this node re-executed, the fraud proofs it holds and whom they convict')
    .action(async () => {
      const r = await (await client()).call<AuditView>('receipts_audit')
      out(json(), r, () =>
        [
          `re-execution fraction ${r.fraction}: ${r.considered} receipts considered, ${r.reexecuted} re-executed ` +
            `(${r.matched} matched${r.withinTolerance > 0 ? `, ${r.withinTolerance} of them within a tolerance` : ''}, ` +
            `${r.mismatched} mismatched, ${r.errors} errors), ${r.queued} queued`,
          `skipped: ${
            Object.entries(r.skipped)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none'
          }`,
          `fraud proofs: ${r.proofsIssued} issued here, ${r.proofsAccepted} accepted, ` +
            `${Object.values(r.proofsRejected).reduce((a, b) => a + b, 0)} refused`,
          ...r.proofs.map(
            (p) => `  ${p.offender} round ${p.round} of ${p.job}: by ${p.verifier} (${p.checked})`
          ),
          r.convicted.length === 0 ? 'nobody convicted' : `convicted (excluded): ${r.convicted.join(', ')}`
        ].join('\n')
      )
    })

  const ledger = program
    .command('ledger')
    .description('credits per DID over the verified receipts on this node')
    .action(async () => {
      const c = await client()
      const r = await c.call<BalancesView>('ledger_balances')
      // Data owners (docs/governance.md, "Rewards for data"): the owners of the shards each round trained on.
      // A daemon without `ledger_rewards` (an older one) shows the trainers only.
      const owners = await c
        .call<{ dataOwners: { balances: Record<string, number> } }>('ledger_rewards')
        .then((x) => x.dataOwners.balances)
        .catch((): Record<string, number> => ({}))
      out(json(), { ...r, dataOwners: owners }, () =>
        [
          Object.keys(r.balances).length === 0
            ? 'no credits'
            : table([
                ['TRAINER', 'CREDITS'],
                ...Object.entries(r.balances).map(([did, c]) => [did, String(c)])
              ]),
          ...(Object.keys(owners).length === 0
            ? []
            : [
                table([
                  ['DATA OWNER', 'CREDITS'],
                  ...Object.entries(owners).map(([did, c]) => [did, String(c)])
                ])
              ]),
          `${r.verified} of ${r.receipts} receipts verified; ledger hash ${r.hash}`,
          ...(r.excluded.length > 0 ? [`excluded: ${r.excluded.join(', ')}`] : [])
        ].join('\n')
      )
    })
  ledger
    .command('history')
    .description('the credited receipts the balances add up from')
    .option('--did <did>', 'only this DID')
    .action(async (o: { did?: string }) => {
      const r = await (await client()).call<EntryView[]>('ledger_history', defined(o))
      out(json(), r, () =>
        r.length === 0
          ? 'no entries'
          : table([
              ['DID', 'JOB', 'ROUND', 'SAMPLES', 'CREDITS', 'RECEIPT'],
              ...r.map((e) => [
                e.did,
                e.job,
                String(e.round),
                String(e.samples),
                e.forfeited
                  ? `${e.credits} (forfeited)`
                  : e.unverifiable === true
                    ? `${e.credits} (unverifiable)`
                    : String(e.credits),
                e.receipt
              ])
            ])
      )
    })
}
