/**
 * `npm start`: the main job. A private Shoal swarm of node processes on 127.0.0.1 trains MNIST
 * with no coordinator, through the same daemon, RPC and CLI code paths as a real deployment:
 *
 *   1. an owner node and N trainer nodes (default 4) start, each with its own data dir;
 *   2. the owner creates a private swarm and invites every trainer (`swarm_invite` / `swarm_join`);
 *   3. the owner imports MNIST, shards it non-IID (Dirichlet 0.5), encrypts each shard and
 *      grants trainer i the key of shard i (published on the consent topic);
 *   4. the owner creates a signed job; trainers join it and gossip-average: train H local steps,
 *      announce the model's CID, fetch k peers' models over bitswap, validate, aggregate, repeat;
 *   5. a live table shows each trainer's round, loss, held-out accuracy, peers and bytes;
 *   6. at the end: each node's accuracy beside a centralized reference trained on the same data
 *      for the same number of epochs, bytes exchanged, receipts, and the exported ONNX model.
 *
 * The owner's web dashboard URL (a one-time login) is printed while the swarm trains;
 * `npm start -- --keep` leaves every node running at the end (Ctrl-C stops them), so that a
 * newcomer can look around in the dashboard and with the CLI.
 *
 * Options (environment): SHOAL_NODES (trainers, 4), SHOAL_ROUNDS (20), SHOAL_H (local steps per
 * round, 40), SHOAL_K (peers averaged per round, min(3, N − 1)), SHOAL_DEMO_DIR (where the data
 * dirs go; default a new temp dir). These are the launcher's, not node config: the node's
 * config loader reads only SHOAL_<SECTION>_<KEY> of its own sections (see src/node/config).
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { LocalSwarm, type JobStatus } from './lib/swarm.js'

/** A whole-number option from the environment, or a clear error naming the variable. */
function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const v = Number(raw)
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`npm start: ${name} must be a whole number from ${min} to ${max}, got "${raw}"`)
    process.exit(2)
  }
  return v
}

const N = intEnv('SHOAL_NODES', 4, 2, 32)
const ROUNDS = intEnv('SHOAL_ROUNDS', 20, 1, 10_000)
const H = intEnv('SHOAL_H', 40, 1, 100_000)
const K = intEnv('SHOAL_K', Math.min(3, N - 1), 1, N - 1)
const BATCH = 32
const LR = 0.05
const tty = process.stdout.isTTY === true
const KEEP = process.argv.slice(2).includes('--keep')

const root =
  process.env.SHOAL_DEMO_DIR !== undefined && process.env.SHOAL_DEMO_DIR !== ''
    ? resolve(process.env.SHOAL_DEMO_DIR)
    : await mkdtemp(join(tmpdir(), 'shoal-swarm-'))
const swarm = new LocalSwarm({ root, trainers: N })
const t0 = Date.now()
const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s`
const step = (s: string): void => console.log(`\n[${elapsed()}] ▶ ${s}`)

let stopping = false
process.on('SIGINT', () => {
  if (stopping) process.exit(130)
  stopping = true
  console.log('\nCtrl-C: stopping every node cleanly…')
  void swarm.stop().then(() => process.exit(130))
})

const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`
const pct = (a: number | null | undefined): string =>
  a === null || a === undefined ? '   -  ' : `${(a * 100).toFixed(2)}%`

function table(statuses: Map<string, JobStatus>): string {
  const head = 'node      state      round   loss     held-out acc  peers  sent       received   receipts'
  const lines = swarm.trainers.map((t) => {
    const s = statuses.get(t.name)
    if (s === undefined) return `${t.name.padEnd(9)} starting`
    const round = `${String(s.round === null ? '-' : s.round + 1).padStart(3)}/${String(ROUNDS).padEnd(3)}`
    return `${t.name.padEnd(9)} ${s.state.padEnd(10)} ${round} ${(s.loss ?? NaN).toFixed(4).padStart(7)}  ${pct(s.accuracy).padStart(11)}  ${String(s.peersUsed).padStart(5)}  ${mib(s.bytesSent).padStart(9)}  ${mib(s.bytesReceived).padStart(9)}  ${String(s.receipts).padStart(8)}`
  })
  return [head, ...lines].join('\n')
}

try {
  console.log(
    `Shoal main job: a private swarm of ${N} trainers and a data owner on 127.0.0.1 (data dirs in ${root})`
  )
  step('shoal init + shoal daemon for every node (each its own process, data dir, DID and RPC)')
  await swarm.start()
  for (const n of swarm.all) console.log(`  ${n.name.padEnd(8)} ${n.did}`)

  step('owner: swarm create (private) and an invite per trainer; trainers join with it')
  console.log(`  swarm ${await swarm.form()}`)

  step(`owner: dataset import (the mnist package, ${N} non-IID shards by Dirichlet(0.5), each encrypted),`)
  console.log(
    '        and a grant of shard i to trainer i (signed, keys as JWE to its DID, on the consent topic)'
  )
  const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
  console.log(`  manifest ${ds.manifestCid}`)
  for (const [i, s] of ds.shards.entries()) {
    console.log(
      `  shard ${i + 1} → node-${i + 1}: ${String(s.count).padStart(4)} digits, per label [${s.labelCounts.join(' ')}]`
    )
  }

  step(
    `owner: job create (MLP 784-128-10, ${ROUNDS} rounds × ${H} local steps, k=${K} peers, mean aggregation)`
  )
  const job = await swarm.createJob({
    name: 'mnist-mlp',
    dataset: ds.manifestCid,
    model: 'mlp',
    rounds: ROUNDS,
    H,
    k: K,
    lr: LR,
    batchSize: BATCH,
    aggregation: 'mean',
    compression: 'none',
    seed: 1
  })
  console.log(`  job ${job}`)

  const dash = await swarm.call<{ url: string }>(swarm.owner, 'dashboard_login')
  console.log(
    `  the owner's dashboard (a one-time login URL; \`npx shoal --home ${swarm.owner.home} dashboard\` prints another):`
  )
  console.log(`  ${dash.url}`)

  step('training: no coordinator; each trainer gossip-averages with its peers')
  let printed = ''
  const statuses = await swarm.waitDone(job, (s) => {
    const view = table(s)
    if (tty) {
      if (printed !== '') process.stdout.write(`\x1b[${printed.split('\n').length}A`)
      process.stdout.write(
        view
          .split('\n')
          .map((l) => `\x1b[2K${l}`)
          .join('\n') + '\n'
      )
      printed = view
    } else {
      const rounds = swarm.trainers.map((t) => s.get(t.name)?.round ?? -1)
      const key = String(Math.min(...rounds))
      if (Math.min(...rounds) % 5 === 4 && key !== printed) {
        console.log(`[${elapsed()}]\n${view}`)
        printed = key
      }
    }
  })
  if (!tty) console.log(table(statuses))
  const failed = swarm.trainers.filter((t) => statuses.get(t.name)?.state !== 'done')
  if (failed.length > 0) {
    throw new Error(
      `training did not complete on ${failed.map((t) => `${t.name} (${JSON.stringify(statuses.get(t.name)?.error)})`).join(', ')}`
    )
  }

  const total = ds.shards.reduce((a, s) => a + s.count, 0)
  const epochs = Math.max(1, Math.round((ROUNDS * H * BATCH * N) / total))
  step(
    `centralized reference: the same MLP on all ${total} digits for ${epochs} epochs (owner node, train --local)`
  )
  const refAcc = await swarm.reference({ epochs, batchSize: BATCH, lr: LR })

  step('summary')
  console.log(`centralized reference: ${pct(refAcc)}`)
  let sent = 0
  let receipts = 0
  for (const t of swarm.trainers) {
    const s = statuses.get(t.name)!
    sent += s.bytesSent
    receipts += s.receipts
    const gap = s.accuracy === null ? NaN : (s.accuracy - refAcc) * 100
    console.log(
      `${t.name}: ${pct(s.accuracy)} (${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points vs reference), sent ${mib(s.bytesSent)}, received ${mib(s.bytesReceived)}, ${s.receipts} receipts signed, ${s.rejected.length} updates rejected`
    )
  }
  console.log(`bytes announced by the swarm: ${mib(sent)}; receipts signed: ${receipts}`)
  // Every node audits the receipts it can: the owner reads every shard, so it re-executes a
  // sample of every trainer's rounds (receipts.reexecFraction); trainers read only their own.
  interface Audit {
    reexecuted: number
    reexecMs: number
    reexecTrainMs: number
    matched: number
    mismatched: number
    queued: number
    proofsAccepted: number
    convicted: string[]
  }
  const audits = async (): Promise<Audit[]> =>
    Promise.all(swarm.all.map(async (n) => swarm.call<Audit>(n, 'receipts_audit')))
  let audit = await audits()
  for (let i = 0; i < 120 && audit.some((a) => a.queued > 0); i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    audit = await audits()
  }
  // Every node derives the same ledger from the receipts gossiped on the receipts topic.
  const ledgers = await Promise.all(
    swarm.all.map(async (n) =>
      swarm.call<{
        balances: Record<string, number>
        hash: string
        receipts: number
        verified: number
        excluded: string[]
      }>(n, 'ledger_balances')
    )
  )
  const names = new Map(swarm.all.map((n) => [n.did!, n.name]))
  console.log('receipts per node: issued here, held, verified (signature, chain, lineage), re-executed here')
  swarm.all.forEach((n, i) => {
    const a = audit[i]!
    const lg = ledgers[i]!
    const issued = statuses.get(n.name)?.receipts ?? 0
    console.log(
      `  ${n.name.padEnd(8)} issued ${String(issued).padStart(3)}, held ${String(lg.receipts).padStart(3)}, verified ${String(lg.verified).padStart(3)}, ` +
        `re-executed ${a.reexecuted} (${a.matched} matched, ${a.mismatched} mismatched), fraud proofs ${a.proofsAccepted}`
    )
  })
  const trainMs = [...statuses.values()].reduce(
    (sum, s) => sum + s.history.reduce((a, h) => a + (h.trainMs ?? 0), 0),
    0
  )
  const auditMs = audit.reduce((sum, a) => sum + a.reexecMs, 0)
  const auditTrainMs = audit.reduce((sum, a) => sum + a.reexecTrainMs, 0)
  console.log(
    `re-execution: ${audit.reduce((n, a) => n + a.reexecuted, 0)} receipts, ${(auditTrainMs / 1000).toFixed(1)} s of ` +
      `training steps = ${((100 * auditTrainMs) / Math.max(1, trainMs)).toFixed(1)} % of the swarm's ${(trainMs / 1000).toFixed(1)} s ` +
      `(${(auditMs / 1000).toFixed(1)} s with fetching bases and preparing shards)`
  )
  const l = ledgers[0]!
  console.log(
    `ledger (credits = samples trained, from ${l.verified} verified receipts; excluded: ${l.excluded.length}):`
  )
  for (const [did, credits] of Object.entries(l.balances))
    console.log(`  ${(names.get(did) ?? did).padEnd(8)} ${credits}`)
  const same = ledgers.every((x) => x.hash === l.hash)
  console.log(`  ${same ? 'identical' : 'DIFFERENT'} ledger hash on all ${ledgers.length} nodes: ${l.hash}`)
  const onnx = join(root, 'mnist-mlp.onnx')
  const exp = await swarm.call<{ path: string; bytes: number }>(swarm.trainers[0]!, 'model_export', {
    job,
    path: onnx
  })
  console.log(`exported ONNX model: ${exp.path} (${exp.bytes} bytes)`)
  if (KEEP) {
    step('--keep: every node keeps running; Ctrl-C stops them all')
    for (const n of swarm.all) {
      const { url } = await swarm.call<{ url: string }>(n, 'dashboard_login')
      console.log(`  ${n.name.padEnd(8)} ${url}`)
    }
    console.log(
      `  (a login URL works once; another: npx shoal --home <data dir> dashboard; data dirs in ${root})`
    )
    // Until Ctrl-C: the SIGINT handler stops every node and exits.
    await new Promise<never>(() => setInterval(() => {}, 60_000))
  }
  await swarm.stop()
  console.log(`\nall nodes stopped cleanly; data dirs kept in ${root}`)
  console.log(`(restart one with: npx shoal --home ${swarm.trainers[0]!.home} daemon)`)
  console.log(`done in ${elapsed().trim()}`)
} catch (err) {
  console.error(`\nnpm start failed: ${(err as Error).stack ?? String(err)}`)
  console.error(swarm.output())
  await swarm.stop()
  process.exitCode = 1
}
