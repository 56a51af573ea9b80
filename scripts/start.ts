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
 * Options (environment): SHOAL_NODES (4), SHOAL_ROUNDS (20), SHOAL_H (40), SHOAL_K (3),
 * SHOAL_DEMO_DIR (where the data dirs go; default a new temp dir).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { RpcClient } from '../src/node/rpc/index.js'
import { exited, shoal, startDaemon, type Daemon } from './lib/processes.js'

const N = Number(process.env.SHOAL_NODES ?? 4)
const ROUNDS = Number(process.env.SHOAL_ROUNDS ?? 20)
const H = Number(process.env.SHOAL_H ?? 40)
const K = Number(process.env.SHOAL_K ?? Math.min(3, N - 1))
const BATCH = 32
const LR = 0.05
const tty = process.stdout.isTTY === true

interface Node {
  name: string
  home: string
  daemon?: Daemon
  rpc?: RpcClient
  did?: string
}

const root =
  process.env.SHOAL_DEMO_DIR !== undefined
    ? resolve(process.env.SHOAL_DEMO_DIR)
    : await mkdtemp(join(tmpdir(), 'shoal-swarm-'))
await mkdir(root, { recursive: true })
const owner: Node = { name: 'owner', home: join(root, 'owner') }
const trainers: Node[] = Array.from({ length: N }, (_, i) => ({
  name: `node-${i + 1}`,
  home: join(root, `node-${i + 1}`)
}))
const all = [owner, ...trainers]
const t0 = Date.now()
const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s`
const step = (s: string): void => console.log(`\n[${elapsed()}] ▶ ${s}`)

let stopping = false
async function stopAll(): Promise<void> {
  await Promise.all(
    all.map(async (n) => {
      if (n.daemon !== undefined && n.daemon.child.exitCode === null) {
        n.daemon.child.kill('SIGTERM')
        await exited(n.daemon.child)
      }
    })
  )
}
process.on('SIGINT', () => {
  if (stopping) process.exit(130)
  stopping = true
  console.log('\nCtrl-C: stopping every node cleanly…')
  void stopAll().then(() => process.exit(130))
})

async function call<T>(n: Node, method: string, params: Record<string, unknown> = {}): Promise<T> {
  return n.rpc!.call<T>(method, params)
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(300)
  }
}

interface Status {
  state: string
  round: number | null
  accuracy: number | null
  loss: number | null
  peersUsed: number
  bytesSent: number
  bytesReceived: number
  receipts: number
  rejected: unknown[]
  history: Array<{ round: number; accuracy?: number; trainMs: number; netMs: number; aggMs: number }>
}

const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`
const pct = (a: number | null | undefined): string =>
  a === null || a === undefined ? '   -  ' : `${(a * 100).toFixed(2)}%`

function table(rows: Array<[string, Status | undefined]>): string {
  const head = 'node      state      round   loss     held-out acc  peers  sent       received   receipts'
  const lines = rows.map(([name, s]) =>
    s === undefined
      ? `${name.padEnd(9)} starting`
      : `${name.padEnd(9)} ${s.state.padEnd(10)} ${String(s.round === null ? '-' : s.round + 1).padStart(3)}/${String(ROUNDS).padEnd(3)} ${(s.loss ?? NaN).toFixed(4).padStart(7)}  ${pct(s.accuracy).padStart(11)}  ${String(s.peersUsed).padStart(5)}  ${mib(s.bytesSent).padStart(9)}  ${mib(s.bytesReceived).padStart(9)}  ${String(s.receipts).padStart(8)}`
  )
  return [head, ...lines].join('\n')
}

try {
  console.log(
    `Shoal main job: a private swarm of ${N} trainers and a data owner on 127.0.0.1 (data dirs in ${root})`
  )
  step('shoal init + shoal daemon for every node (each its own process, data dir, DID and RPC)')
  await Promise.all(
    all.map(async (n) => {
      const r = await shoal(n.home, ['init'])
      if (r.code !== 0 && !/already initialised/.test(r.stderr)) throw new Error(`${n.name}: ${r.stderr}`)
    })
  )
  await Promise.all(
    all.map(async (n) => {
      n.daemon = await startDaemon(n.home, [], { SHOAL_LOG: 'warn' })
      const { readFile } = await import('node:fs/promises')
      n.rpc = new RpcClient(n.daemon.api, (await readFile(join(n.home, 'rpc.cookie'), 'utf8')).trim())
      n.did = (await call<{ did: string }>(n, 'node_info')).did
      console.log(`  ${n.name.padEnd(8)} ${n.did}`)
    })
  )

  step('owner: swarm create (private) and an invite per trainer; trainers join')
  const swarm = await call<{ id: string }>(owner, 'swarm_create', { name: 'mnist-demo', private: true })
  console.log(`  swarm ${swarm.id}`)
  for (const t of trainers) {
    const { invite } = await call<{ invite: string }>(owner, 'swarm_invite', { did: t.did })
    await call(t, 'swarm_join', { invite })
  }
  // Trainers also dial each other, so the gossip mesh does not hang on the owner alone.
  const addrs = await Promise.all(
    trainers.map(async (t) => (await call<{ listenAddresses: string[] }>(t, 'node_info')).listenAddresses[0]!)
  )
  for (const [i, t] of trainers.entries()) {
    for (const a of addrs.slice(i + 1)) await call(t, 'peers_connect', { addr: a }).catch(() => {})
  }
  await until('every trainer to verify its peers', async () => {
    for (const t of trainers) {
      const peers = await call<Array<{ member: boolean | null }>>(t, 'peers_list')
      if (peers.filter((p) => p.member === true).length < Math.min(N, 2)) return undefined
    }
    return true
  })

  step(`owner: dataset import (the mnist package, ${N} non-IID shards by Dirichlet(0.5), each encrypted)`)
  const ds = await call<{
    manifestCid: string
    shards: Array<{ cid: string; count: number; labelCounts: number[] }>
  }>(owner, 'dataset_import', {
    source: 'mnist',
    name: 'mnist',
    shards: N,
    split: 'dirichlet',
    alpha: 0.5,
    seed: 42
  })
  console.log(`  manifest ${ds.manifestCid}`)
  for (const [i, s] of ds.shards.entries()) {
    console.log(
      `  shard ${i + 1}: ${String(s.count).padStart(4)} digits, per label [${s.labelCounts.join(' ')}]`
    )
  }

  step('owner: grant trainer i the key of shard i (signed grants, JWE to each DID, on the consent topic)')
  for (const [i, t] of trainers.entries()) {
    const g = await call<{ grant: string; document: string }>(owner, 'dataset_grant', {
      dataset: ds.manifestCid,
      did: t.did,
      shards: [ds.shards[i]!.cid]
    })
    // The grant also travels by gossip; handing it over directly too makes the demo robust
    // to a trainer whose mesh formed after the message went out.
    await call(t, 'dataset_grant_add', { document: g.document, dataset: ds.manifestCid }).catch(() => {})
    console.log(`  ${t.name} ← grant ${g.grant}`)
  }

  step(
    `owner: job create (MLP 784-128-10, ${ROUNDS} rounds × ${H} local steps, k=${K} peers, mean aggregation)`
  )
  const job = await call<{ id: string }>(owner, 'job_create', {
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
  console.log(`  job ${job.id}`)
  await Promise.all(
    trainers.map(async (t) =>
      until(`${t.name} to join`, async () => {
        const list = await call<Array<{ id: string; state: string }>>(t, 'job_list')
        const mine = list.find((j) => j.id === job.id)
        if (mine === undefined) {
          await call(owner, 'job_announce', { job: job.id })
          return undefined
        }
        if (mine.state === 'known') await call(t, 'job_join', { job: job.id }).catch(() => {})
        return mine.state !== 'known' ? true : undefined
      })
    )
  )

  step('training: no coordinator; each trainer gossip-averages with its peers')
  const statuses = new Map<string, Status>()
  let lastPrinted = ''
  for (;;) {
    await Promise.all(
      trainers.map(async (t) => {
        statuses.set(t.name, await call<Status>(t, 'job_status', { job: job.id }))
      })
    )
    const view = table(trainers.map((t) => [t.name, statuses.get(t.name)]))
    if (tty) {
      if (lastPrinted !== '') process.stdout.write(`\x1b[${lastPrinted.split('\n').length}A`)
      process.stdout.write(
        view
          .split('\n')
          .map((l) => `\x1b[2K${l}`)
          .join('\n') + '\n'
      )
      lastPrinted = view
    } else if (view !== lastPrinted) {
      const rounds = trainers.map((t) => statuses.get(t.name)?.round ?? -1)
      if (Math.min(...rounds) % 5 === 4 || trainers.every((t) => statuses.get(t.name)?.state !== 'running')) {
        console.log(`[${elapsed()}]\n${view}`)
        lastPrinted = view
      }
    }
    if (trainers.every((t) => ['done', 'failed', 'left'].includes(statuses.get(t.name)?.state ?? ''))) break
    await sleep(1000)
  }
  if (!tty) console.log(table(trainers.map((t) => [t.name, statuses.get(t.name)])))
  const failed = trainers.filter((t) => statuses.get(t.name)?.state !== 'done')
  if (failed.length > 0) {
    const errors = await Promise.all(
      failed.map(
        async (t) =>
          `${t.name}: ${JSON.stringify((await call<{ error: unknown }>(t, 'job_status', { job: job.id })).error)}`
      )
    )
    throw new Error(`training did not complete on ${failed.length} node(s):\n${errors.join('\n')}`)
  }

  const samplesPerNode = ROUNDS * H * BATCH
  const epochs = Math.max(1, Math.round((samplesPerNode * N) / ds.shards.reduce((a, s) => a + s.count, 0)))
  step(
    `centralized reference: the same MLP on the union of the shards for ${epochs} epochs (owner node, train --local)`
  )
  const { task } = await call<{ task: string }>(owner, 'train_local', {
    model: 'mlp',
    epochs,
    batchSize: BATCH,
    lr: LR,
    seed: 42
  })
  const ref = await until(
    'the reference run',
    async () => {
      const s = await call<{ state: string; history: Array<{ accuracy?: number }> }>(owner, 'train_status', {
        task
      })
      return s.state === 'running' ? undefined : s
    },
    600_000
  )
  const refAcc = ref.history.at(-1)?.accuracy ?? NaN

  step('summary')
  console.log(
    `centralized reference (${epochs} epochs on all ${ds.shards.reduce((a, s) => a + s.count, 0)} digits): ${pct(refAcc)}`
  )
  let totalSent = 0
  let totalReceipts = 0
  for (const t of trainers) {
    const s = statuses.get(t.name)!
    totalSent += s.bytesSent
    totalReceipts += s.receipts
    const gap = s.accuracy === null ? NaN : (s.accuracy - refAcc) * 100
    console.log(
      `${t.name}: ${pct(s.accuracy)} (${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points vs reference), sent ${mib(s.bytesSent)}, received ${mib(s.bytesReceived)}, ${s.receipts} receipts, ${s.rejected.length} rejected updates`
    )
  }
  console.log(`bytes exchanged by the swarm: ${mib(totalSent)} announced, receipts signed: ${totalReceipts}`)
  const onnx = join(root, 'mnist-mlp.onnx')
  const exp = await call<{ path: string; bytes: number }>(trainers[0]!, 'model_export', {
    job: job.id,
    path: onnx
  })
  console.log(`exported ONNX model: ${exp.path} (${exp.bytes} bytes)`)
  console.log(
    `\nnodes stop now; their data dirs stay in ${root} (try: npx shoal --home ${trainers[0]!.home} daemon)`
  )
  await stopAll()
  console.log(`done in ${elapsed().trim()}`)
} catch (err) {
  console.error(`\nnpm start failed: ${(err as Error).stack ?? String(err)}`)
  for (const n of all)
    if (n.daemon !== undefined) console.error(`--- ${n.name} output ---\n${n.daemon.output().slice(-2000)}`)
  await stopAll()
  process.exitCode = 1
} finally {
  if (process.env.SHOAL_DEMO_DIR === undefined && process.exitCode === 1)
    await rm(root, { recursive: true, force: true })
}
