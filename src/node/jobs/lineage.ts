/**
 * A job's lineage from the receipts a node holds: each grant whose shards trained the job
 * (dataset, owner, grantee, status), the rounds that used it, and which of the node's
 * checkpoints it influenced — conservatively, every checkpoint built from rounds at or after its
 * first use, unless the checkpoint's lineage excludes it — and the unlearning events.
 */
import { grantStatus, type GrantInfo } from '../../storage/index.js'
import { decodeReceipt, epochOf } from '../../training/index.js'
import type { CheckpointRecord, ExclusionRecord, UnlearningEvent } from '../records.js'

/** What {@link jobLineage} returns (`job_lineage`). */
export interface JobLineage {
  job: string
  epoch: string
  excluded: string[]
  grants: Array<{
    grant: string
    dataset: string | null
    owner: string | null
    grantee: string | null
    status: 'valid' | 'revoked' | 'expired' | 'unknown'
    /** Rolled back and retrained without. */
    unlearned: boolean
    firstRound: number
    lastRound: number
    receipts: number
    trainers: string[]
  }>
  checkpoints: Array<{ cid: string; round: number; excluded: string[]; influencedBy: string[] }>
  unlearning: UnlearningEvent[]
}

export interface LineageInput {
  job: string
  /** Stored receipts (any job: the others are skipped; undecodable ones too). */
  receipts: ReadonlyArray<{ jwt: string; job: string }>
  /** The node's checkpoints (any job). */
  checkpoints: readonly CheckpointRecord[]
  exclusions: ExclusionRecord | undefined
  grant(id: string): Promise<GrantInfo | undefined>
  now?: number
}

export async function jobLineage(input: LineageInput): Promise<JobLineage> {
  const { job: jobId, exclusions: excl } = input
  const uses = new Map<string, { rounds: Set<number>; issuers: Set<string>; receipts: number }>()
  for (const r of input.receipts) {
    if (r.job !== jobId) continue
    let claims
    try {
      claims = decodeReceipt(r.jwt).claims
    } catch {
      continue
    }
    for (const g of new Set(claims.shards.map((x) => x.grant))) {
      let u = uses.get(g)
      if (u === undefined) uses.set(g, (u = { rounds: new Set(), issuers: new Set(), receipts: 0 }))
      u.rounds.add(claims.round)
      u.issuers.add(claims.iss)
      u.receipts++
    }
  }
  const now = input.now ?? Math.floor(Date.now() / 1000)
  const grants: JobLineage['grants'] = []
  for (const [id, u] of [...uses].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const info = await input.grant(id)
    const rounds = [...u.rounds].sort((a, b) => a - b)
    grants.push({
      grant: id,
      dataset: info?.dataset ?? null,
      owner: info?.owner ?? null,
      grantee: info?.grantee ?? null,
      status: info === undefined ? 'unknown' : grantStatus(info, now),
      unlearned: excl?.grants.includes(id) === true,
      firstRound: rounds[0]!,
      lastRound: rounds.at(-1)!,
      receipts: u.receipts,
      trainers: [...u.issuers].sort()
    })
  }
  const checkpoints = input.checkpoints
    .filter((c) => c.job === jobId && c.source === 'job')
    .sort((a, b) => (a.round ?? 0) - (b.round ?? 0))
    .map((c) => {
      const reach = c.maxInputRound ?? c.round ?? 0
      const excluded = c.excluded ?? []
      return {
        cid: c.cid,
        round: c.round ?? 0,
        excluded,
        influencedBy: grants
          .filter((g) => g.firstRound <= reach && !excluded.includes(g.grant))
          .map((g) => g.grant)
      }
    })
  return {
    job: jobId,
    epoch: epochOf(excl?.grants ?? []),
    excluded: excl?.grants ?? [],
    grants,
    checkpoints,
    unlearning: excl?.events ?? []
  }
}
