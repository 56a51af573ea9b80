/**
 * Where the node's events come from, wired from outside the services: the records they write
 * (`NodeDb.onPut`: checkpoints, receipts, re-executions, fraud proofs, lineage offenses), the
 * grant listeners of `NodeDatasets`, libp2p's connection events, a poll of the jobs' states, and
 * a debounced check of the privacy budgets after each receipt.
 */
import type { Logger } from '../../common/index.js'
import type { GrantInfo, PrivacyBudget } from '../../storage/index.js'
import type { NodeRecords, RecordKind } from '../records.js'
import type { EventBus } from './bus.js'

/** Default of {@link NodeEventSources.jobPollMs}. */
export const JOB_STATE_POLL_MS = 1_000
/** Default of {@link NodeEventSources.budgetCheckMs}. */
export const BUDGET_CHECK_MS = 2_000
/** Shares of a grant's ε budget whose crossing is an event. */
export const BUDGET_THRESHOLDS: readonly number[] = [0.5, 0.8, 1]

/** A libp2p-like event target for peer connections. */
export interface PeerEvents {
  addEventListener(type: 'peer:connect' | 'peer:disconnect', fn: (e: { detail: unknown }) => void): void
  removeEventListener(type: 'peer:connect' | 'peer:disconnect', fn: (e: { detail: unknown }) => void): void
}

export interface NodeEventSources {
  did: string
  db: { onPut(fn: <K extends RecordKind>(kind: K, key: string, value: NodeRecords[K]) => void): () => void }
  datasets: {
    onGrantAdded(fn: (g: GrantInfo) => void): unknown
    onGrantEnded(fn: (g: GrantInfo, how: 'revoked' | 'expired') => void): unknown
    grants: { list(): Promise<GrantInfo[]> }
  }
  /** Peer connections; `didOf` names a peer id's DID. */
  peers?: { events: PeerEvents; didOf(peerId: unknown): string }
  jobs?: { list(): Promise<Array<{ id: string; state: string }>> }
  privacy?: {
    report(
      dataset: string,
      shards: readonly string[],
      budgets: readonly PrivacyBudget[]
    ): Promise<{ epsilon: number | null }>
  }
  jobPollMs?: number
  budgetCheckMs?: number
  log: Logger
}

/** Wires every source to `bus`; returns the function that unwires them (timers stopped). */
export function wireNodeEvents(bus: EventBus, s: NodeEventSources): () => void {
  const stops: Array<() => void> = []
  let budgetTimer: ReturnType<typeof setTimeout> | undefined
  const crossed = new Map<string, number>()
  const checkBudgets = async (): Promise<void> => {
    if (s.privacy === undefined) return
    for (const g of await s.datasets.grants.list()) {
      if (g.privacy === undefined || g.revokedAt !== undefined) continue
      const r = await s.privacy.report(g.dataset, g.shards, [g.privacy])
      const share = r.epsilon === null ? Infinity : r.epsilon / g.privacy.epsMax
      const reached = BUDGET_THRESHOLDS.filter((t) => share >= t).at(-1)
      if (reached === undefined || (crossed.get(g.id) ?? 0) >= reached) continue
      crossed.set(g.id, reached)
      bus.publish('privacy.budget', {
        grant: g.id,
        dataset: g.dataset,
        grantee: g.grantee,
        epsilon: r.epsilon,
        epsMax: g.privacy.epsMax,
        threshold: reached
      })
    }
  }
  const scheduleBudgets = (): void => {
    if (s.privacy === undefined || budgetTimer !== undefined) return
    budgetTimer = setTimeout(() => {
      budgetTimer = undefined
      checkBudgets().catch((err: unknown) =>
        s.log.debug({ err: (err as Error).message }, 'privacy budget check failed')
      )
    }, s.budgetCheckMs ?? BUDGET_CHECK_MS)
    budgetTimer.unref?.()
  }
  stops.push(() => clearTimeout(budgetTimer))

  stops.push(
    s.db.onPut((kind, _key, value) => {
      if (kind === 'checkpoints') {
        const c = value as NodeRecords['checkpoints']
        if (c.source !== 'job' || c.job === undefined || c.round === undefined) return
        bus.publish('round.completed', {
          job: c.job,
          round: c.round,
          loss: c.loss ?? null,
          accuracy: c.accuracy ?? null,
          checkpoint: c.cid
        })
      } else if (kind === 'receipts') {
        const r = value as NodeRecords['receipts']
        bus.publish('receipt.accepted', {
          hash: r.hash,
          issuer: r.issuer,
          job: r.job,
          round: r.round,
          mine: r.issuer === s.did
        })
        scheduleBudgets()
      } else if (kind === 'audits') {
        const a = value as NodeRecords['audits']
        bus.publish('receipt.reexecuted', {
          receipt: a.receipt,
          issuer: a.issuer,
          job: a.job,
          round: a.round,
          outcome: a.outcome,
          mode: a.mode ?? null
        })
      } else if (kind === 'fraud-proofs') {
        const p = value as NodeRecords['fraud-proofs']
        bus.publish('fraud.proof', {
          hash: p.hash,
          offender: p.offender,
          verifier: p.verifier,
          receipt: p.receipt,
          job: p.job,
          round: p.round,
          checked: p.checked
        })
      } else if (kind === 'lineage-offenses') {
        const o = value as NodeRecords['lineage-offenses']
        bus.publish('fraud.lineage', {
          did: o.did,
          receipt: o.receipt,
          reason: o.reason,
          grant: o.grant ?? null
        })
      }
    })
  )

  const unsub = (r: unknown): void => {
    if (typeof r === 'function') stops.push(r as () => void)
  }
  unsub(
    s.datasets.onGrantAdded((g) =>
      bus.publish('grant.issued', {
        grant: g.id,
        dataset: g.dataset,
        grantee: g.grantee,
        owner: g.owner,
        purpose: g.purpose,
        exp: g.exp ?? null,
        mine: g.grantee === s.did
      })
    )
  )
  unsub(
    s.datasets.onGrantEnded((g, how) =>
      bus.publish('grant.revoked', { grant: g.id, dataset: g.dataset, grantee: g.grantee, how })
    )
  )

  if (s.peers !== undefined) {
    const { events, didOf } = s.peers
    const named = (detail: unknown): { peerId: string; did: string } => {
      let did = ''
      try {
        did = didOf(detail)
      } catch {
        did = ''
      }
      return { peerId: String(detail), did }
    }
    const joined = (e: { detail: unknown }): void => void bus.publish('peer.joined', named(e.detail))
    const left = (e: { detail: unknown }): void => void bus.publish('peer.left', named(e.detail))
    events.addEventListener('peer:connect', joined)
    events.addEventListener('peer:disconnect', left)
    stops.push(() => {
      events.removeEventListener('peer:connect', joined)
      events.removeEventListener('peer:disconnect', left)
    })
  }

  if (s.jobs !== undefined) {
    const jobs = s.jobs
    const states = new Map<string, string>()
    let polling = false
    const poll = async (): Promise<void> => {
      if (polling) return
      polling = true
      try {
        for (const j of await jobs.list()) {
          const previous = states.get(j.id)
          if (previous === j.state) continue
          states.set(j.id, j.state)
          // A job merely known here (never run) at start is not a change.
          if (previous === undefined && j.state === 'known') continue
          bus.publish('job.state', { job: j.id, state: j.state, previous: previous ?? null })
        }
      } catch (err) {
        s.log.debug({ err: (err as Error).message }, 'job state poll failed')
      } finally {
        polling = false
      }
    }
    const timer = setInterval(() => void poll(), s.jobPollMs ?? JOB_STATE_POLL_MS)
    timer.unref?.()
    stops.push(() => clearInterval(timer))
  }

  return () => {
    for (const stop of stops.splice(0)) stop()
  }
}
