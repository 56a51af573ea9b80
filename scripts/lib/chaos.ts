/**
 * Kill-and-restart chaos on a LocalSwarm (test/e2e/chaos.spec.ts, scripts/bench-chaos.ts): a
 * driver SIGKILLs a trainer chosen by a seeded generator — when the swarm reaches given rounds,
 * or every so many seconds — restarts it on the same data dir, and at the end checks what must
 * survive: every node done, each restart resumed from its checkpoint, every receipt issued held by
 * every node, no (issuer, round) signed twice, every issued receipt and the last checkpoint still
 * pinned, identical ledgers.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Rng } from '../../src/common/index.js'
import { until, type JobStatus, type LocalSwarm, type SwarmNode } from './swarm.js'

export interface Kill {
  victim: string
  /** The victim's last finished round when it was killed (−1: none). */
  roundAtKill: number
  /** The first round it trained after the restart (undefined: none, it was done by then). */
  resumedAt?: number
  /** ms since the driver started. */
  at: number
}

export interface ChaosDriver {
  kills: Kill[]
  /** Stop the driver and wait for the restarts in progress (until the victims resume). */
  stop(): Promise<void>
}

interface ReceiptRow {
  hash: string
  job: string
  round: number
  issuer: string
  doc?: string
}

/**
 * Start killing: `at` rounds (the first trainer to reach each round triggers a kill) or
 * `every` [min, max] ms. The victim is drawn by `seed` among trainers that are running (not done,
 * not being restarted); it is restarted as soon as it has exited, while the driver goes on.
 */
export function startChaos(
  swarm: LocalSwarm,
  job: string,
  opts: { seed: number; at?: number[]; every?: [number, number]; log?: (s: string) => void }
): ChaosDriver {
  const rng = new Rng(opts.seed)
  const kills: Kill[] = []
  const t0 = Date.now()
  let stopped = false
  const pending: Array<Promise<void>> = []
  const resuming = new Set<string>()

  const roundOf = async (t: SwarmNode): Promise<JobStatus | undefined> =>
    swarm.status(t, job).catch(() => undefined)

  /** Kill a running trainer; its restart (and the wait for it to resume) goes on in the background. */
  const killOne = async (): Promise<void> => {
    const statuses = await Promise.all(swarm.trainers.map(async (t) => ({ t, s: await roundOf(t) })))
    // Running, and not a victim still resuming: a node killed again before it trained a round
    // would never show where it resumes.
    const live = statuses.filter(
      (x) => x.s !== undefined && x.s.state === 'running' && !resuming.has(x.t.name)
    )
    if (live.length === 0) return
    const { t: victim, s } = live[rng.int(live.length)]!
    const kill: Kill = { victim: victim.name, roundAtKill: s!.round ?? -1, at: Date.now() - t0 }
    kills.push(kill)
    opts.log?.(`kill ${victim.name} after round ${kill.roundAtKill} (${(kill.at / 1000).toFixed(1)} s)`)
    await swarm.kill(victim)
    resuming.add(victim.name)
    pending.push(
      (async () => {
        // A loaded machine can take a daemon past its start deadline: try again (it was killed).
        for (let attempt = 1; ; attempt++) {
          try {
            await swarm.startNode(victim)
            break
          } catch (err) {
            if (attempt >= 3) throw err
            opts.log?.(`${victim.name} did not start (attempt ${attempt}): retrying`)
          }
        }
        // Resumed: the job runs again (or is already done) on the restarted node.
        const resumed = await until(
          `${victim.name} to resume`,
          async () => {
            const r = await swarm.status(victim, job)
            if (r.state === 'done' || r.state === 'failed') return r
            return r.state === 'running' && r.history.length > 0 ? r : undefined
          },
          600_000
        )
        if (resumed.history[0] !== undefined) kill.resumedAt = resumed.history[0].round
        resuming.delete(victim.name)
        opts.log?.(`${victim.name} back, resumed at round ${kill.resumedAt ?? '(done)'}`)
      })()
    )
  }

  const loop = async (): Promise<void> => {
    if (opts.at !== undefined) {
      for (const target of opts.at) {
        await until(
          `a trainer to reach round ${target}`,
          async () => {
            if (stopped) return true
            const st = await Promise.all(swarm.trainers.map(async (t) => roundOf(t)))
            if (st.every((s) => s?.state === 'done')) return true
            return st.some((s) => (s?.round ?? -1) >= target) ? true : undefined
          },
          600_000
        )
        if (stopped) return
        await killOne()
      }
      return
    }
    const [lo, hi] = opts.every!
    while (!stopped) {
      const wait = lo + rng.next() * (hi - lo)
      const end = Date.now() + wait
      while (!stopped && Date.now() < end) await sleep(Math.min(250, end - Date.now()))
      if (stopped) return
      await killOne()
    }
  }
  pending.push(loop())
  return {
    kills,
    stop: async () => {
      stopped = true
      // Restarts started while waiting are pushed too: wait until none is left.
      for (let n = 0; n < pending.length; n = pending.length) await Promise.all(pending.slice(n))
    }
  }
}

export interface ChaosChecks {
  statuses: Map<string, JobStatus>
  ledgerHashes: string[]
  /** Excluded DIDs in the ledger (equivocation, replay, fraud, lineage). */
  excluded: string[]
  /** Receipts of this job issued by a trainer (its own store) and not held by some node. */
  missingReceipts: Array<{ node: string; issuer: string; round: number }>
  /** (issuer, round) pairs signed more than once: a round trained twice. */
  duplicateRounds: Array<{ issuer: string; round: number; count: number }>
  /** Issued receipt documents and last checkpoints no longer pinned on their node. */
  missingPins: Array<{ node: string; cid: string; what: string }>
  receiptsIssued: number
  accuracy: number[]
}

/** Waits until every node holds the same receipts, then gathers what the checks need. */
export async function checkChaos(swarm: LocalSwarm, job: string, ms = 120_000): Promise<ChaosChecks> {
  const statuses = new Map<string, JobStatus>()
  for (const t of swarm.trainers) statuses.set(t.name, await swarm.status(t, job))
  const list = async (n: SwarmNode): Promise<ReceiptRow[]> =>
    swarm.call<ReceiptRow[]>(n, 'receipts_list', { job })
  // Own receipts, from each trainer's own store (what it signed, SIGKILLs included).
  const own = new Map<string, ReceiptRow[]>()
  for (const t of swarm.trainers)
    own.set(t.name, await list(t).then((rs) => rs.filter((r) => r.issuer === t.did)))
  const issued = [...own.values()].flat()
  // Receipt sync is anti-entropy: wait (bounded) until every node holds every issued receipt.
  const missing = async (): Promise<ChaosChecks['missingReceipts']> => {
    const out: ChaosChecks['missingReceipts'] = []
    for (const n of swarm.all) {
      const held = new Set((await list(n)).map((r) => r.hash))
      for (const r of issued)
        if (!held.has(r.hash)) out.push({ node: n.name, issuer: r.issuer, round: r.round })
    }
    return out
  }
  let missingReceipts = await missing()
  const end = Date.now() + ms
  while (missingReceipts.length > 0 && Date.now() < end) {
    await sleep(1000)
    missingReceipts = await missing()
  }
  const ledgers = async (): Promise<Array<{ hash: string; excluded: string[] }>> =>
    Promise.all(
      swarm.all.map(async (n) => swarm.call<{ hash: string; excluded: string[] }>(n, 'ledger_balances'))
    )
  let ledger = await ledgers()
  while (new Set(ledger.map((l) => l.hash)).size > 1 && Date.now() < end) {
    await sleep(1000)
    ledger = await ledgers()
  }
  const counts = new Map<string, number>()
  for (const r of issued)
    counts.set(`${r.issuer} ${r.round}`, (counts.get(`${r.issuer} ${r.round}`) ?? 0) + 1)
  const duplicateRounds = [...counts.entries()]
    .filter(([, c]) => c > 1)
    .map(([key, count]) => {
      const [issuer, round] = key.split(' ')
      return { issuer: issuer!, round: Number(round), count }
    })
  const missingPins: ChaosChecks['missingPins'] = []
  for (const t of swarm.trainers) {
    const pins = new Set((await swarm.call<Array<{ cid: string }>>(t, 'storage_pins')).map((p) => p.cid))
    for (const r of own.get(t.name)!)
      if (r.doc !== undefined && !pins.has(r.doc))
        missingPins.push({ node: t.name, cid: r.doc, what: `receipt r${r.round}` })
    const cps = (await swarm.call<{ checkpoints: Array<{ cid: string }> }>(t, 'job_status', { job }))
      .checkpoints
    const last = cps.at(-1)
    if (last !== undefined && !pins.has(last.cid))
      missingPins.push({ node: t.name, cid: last.cid, what: 'last checkpoint' })
  }
  return {
    statuses,
    ledgerHashes: ledger.map((l) => l.hash),
    excluded: [...new Set(ledger.flatMap((l) => l.excluded))],
    missingReceipts,
    duplicateRounds,
    missingPins,
    receiptsIssued: issued.length,
    accuracy: swarm.trainers.map((t) => statuses.get(t.name)!.accuracy ?? NaN)
  }
}
