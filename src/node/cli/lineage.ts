/** `shoal job lineage`: the human view of `job_lineage`. */
import type { JobLineage } from '../jobs/index.js'

const short = (s: string | null, n = 12): string =>
  s === null ? '?' : s.length > n + 3 ? `${s.slice(0, n)}…` : s

/** Round numbers as ranges: [0,1,2,5] → "0–2, 5". */
function ranges(rounds: readonly number[]): string {
  const out: string[] = []
  let start: number | undefined
  let prev: number | undefined
  for (const r of [...rounds].sort((a, b) => a - b)) {
    if (start !== undefined && prev !== undefined && r === prev + 1) {
      prev = r
      continue
    }
    if (start !== undefined) out.push(start === prev ? `${start}` : `${start}–${prev}`)
    start = prev = r
  }
  if (start !== undefined) out.push(start === prev ? `${start}` : `${start}–${prev}`)
  return out.length === 0 ? 'none' : out.join(', ')
}

export function renderLineage(r: JobLineage): string {
  const lines = [
    `job ${r.job}${r.epoch === '' ? '' : ` (lineage epoch ${r.epoch}, excluding ${r.excluded.length} grants)`}`
  ]
  // Per dataset and owner: its grants and the checkpoints (rounds) of this node they influenced.
  const byDataset = new Map<string, JobLineage['grants']>()
  for (const g of r.grants) {
    const key = `${g.dataset ?? '?'} ${g.owner ?? '?'}`
    byDataset.set(key, [...(byDataset.get(key) ?? []), g])
  }
  for (const [, grants] of byDataset) {
    const g0 = grants[0]!
    lines.push(`dataset ${short(g0.dataset, 20)} owned by ${short(g0.owner, 24)}`)
    for (const g of grants) {
      const influenced = r.checkpoints.filter((c) => c.influencedBy.includes(g.grant)).map((c) => c.round)
      lines.push(
        `  grant ${short(g.grant, 20)} → ${short(g.grantee, 24)}: ${g.status}${g.unlearned ? ', unlearned' : ''}; ` +
          `trained rounds ${g.firstRound}–${g.lastRound} (${g.receipts} receipts); ` +
          `influences checkpoints: ${ranges(influenced)}`
      )
    }
  }
  if (r.grants.length === 0) lines.push('no receipts for this job on this node')
  for (const e of r.unlearning) {
    lines.push(
      `unlearned grant ${short(e.grant, 20)} (${e.how}): first used in round ${e.fromRound}, rolled back to ` +
        `${e.rolledBackTo === null ? 'the initial weights' : `round ${e.rolledBackTo}`}, ${e.checkpointsDropped} checkpoints dropped; ` +
        `retraining ${e.retrain}${e.ms === undefined ? '' : ` in ${(e.ms / 1000).toFixed(1)} s`}`
    )
  }
  return lines.join('\n')
}
