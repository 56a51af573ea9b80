/**
 * `npm run bench:wan` (root: it builds a network lab — iproute2 and iptables): Shoal across
 * NATs. A founder on a public address serves as a member relay; N volunteers sit behind NAT
 * routers of their own (port-preserving; every fourth one symmetric), every volunteer's link
 * limited to 20 Mbit/s (tc tbf), at each RTT (`--rtt 0,50,150`: half of it added to everything each
 * daemon sends to another lab host, in user space — scripts/lab/delay.js says what that emulates
 * and what not; this kernel has no netem). For each N (`--nodes 4,8`, default; `--rounds 10`) and
 * RTT it measures, through the same RPC a user has:
 * - join: from `swarm_join` to the volunteer having verified every other member (found by the
 *   invite's bootstrap and peer exchange);
 * - first round: from `job_create` to the volunteer's first trained round (status polled every
 *   second);
 * - seconds per round (the trainer's own time for local steps, network and aggregation); how
 *   many volunteer pairs ended direct (not relayed);
 * - model bytes the volunteers received (the founder trains nothing, so all of it went
 *   volunteer to volunteer: over the relay for every pair that is not direct);
 * - final accuracy on every volunteer against a centralized run on the same data (founder);
 * - RSS per volunteer.
 * `--loss p`: each write also held back by one retransmission timeout with probability p
 * (scripts/lab/delay.js; default 0). `--log info --logs DIR`: the daemons' log level (default warn)
 * and a folder that receives every daemon's log. `--fetch-timeout S`: the volunteers'
 * `training.fetchTimeoutSeconds`; `--k K`: peer models per round; `--schedule warmup-cosine` and
 * `--outer lr,momentum`: the job's schedule and DiLoCo outer step (bench:mixing chose them for
 * N = 16). Appends a section to benchmarks/wan.md.
 */
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { NetworkLab, type LabHost } from './lab/index.js'
import { LocalSwarm, until, type JobStatus, type SwarmNode } from './lib/swarm.js'
import { arg } from './lib/env.js'

const NODES = arg('nodes', '4,8').split(',').map(Number)
const ROUNDS = Number(arg('rounds', '10'))
const RTTS = arg('rtt', '0,50,150').split(',').map(Number)
const LOSS = Number(arg('loss', '0'))
/** `--log info --logs DIR`: the daemons' log level, and where each daemon's log is written at the end. */
const LOG = arg('log', '')
const LOGS = arg('logs', '')
/** `--fetch-timeout S`: the volunteers' `training.fetchTimeoutSeconds` (default: the config's, 10). */
const FETCH_TIMEOUT = arg('fetch-timeout', '')
/** `--k K`: peer models aggregated per round, at most N − 1 (default 3). */
const K = Number(arg('k', '3'))
/** `--schedule warmup-cosine`: the job's learning-rate schedule (default constant, the job's default). */
const SCHEDULE = arg('schedule', '')
/** `--outer lr,momentum`: DiLoCo's outer step (default plain averaging). */
const OUTER = arg('outer', '')
const [OUTER_LR, OUTER_MOMENTUM] = OUTER.split(',').map(Number)
const MBIT = 20
const H = 20
const BATCH = 32
const LR = 0.05

interface Peer {
  did: string | null
  member: boolean | null
  relayed: boolean
  upgraded: boolean
}

interface Row {
  n: number
  rtt: number
  joinS: number[]
  firstRoundS: number[]
  sPerRound: number[]
  pairs: number
  direct: number
  bytesReceived: number
  accuracy: number[]
  reference: number
  epochs: number
  rssMiB: number[]
  wallS: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!
}
const range = (xs: number[], digits = 1): string =>
  `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`

async function runOne(n: number, rtt: number): Promise<Row> {
  const t0 = Date.now()
  const lab = await NetworkLab.create()
  const hosts = new Map<string, LabHost>()
  const swarm = new LocalSwarm({
    root: await mkdtemp(join(tmpdir(), `shoal-bench-wan-${n}-`)),
    trainers: n,
    launch: async (node) =>
      lab.startDaemon(
        hosts.get(node.name)!,
        node.home,
        node.name === 'owner'
          ? ['--set', 'p2p.relay.serve=true']
          : FETCH_TIMEOUT !== ''
            ? ['--set', `training.fetchTimeoutSeconds=${FETCH_TIMEOUT}`]
            : [],
        {
          ...(rtt > 0 ? { SHOAL_LAB_DELAY_MS: String(rtt / 2) } : {}),
          ...(LOSS > 0 ? { SHOAL_LAB_LOSS: String(LOSS) } : {}),
          ...(LOG !== '' ? { SHOAL_LOG: LOG } : {})
        }
      )
  })
  try {
    hosts.set('owner', await lab.addPublicHost('founder'))
    for (const [i, t] of swarm.trainers.entries()) {
      const h = await lab.addNatHost(`v${i + 1}`, { symmetric: i % 4 === 3 })
      await lab.limit(h, MBIT)
      hosts.set(t.name, h)
    }
    await swarm.start()

    // Join: every volunteer at once, each timed until it has verified every other member.
    await swarm.call(swarm.owner, 'swarm_create', { name: `wan-${n}`, private: true })
    const invites = new Map<SwarmNode, string>()
    for (const t of swarm.trainers)
      invites.set(
        t,
        (await swarm.call<{ invite: string }>(swarm.owner, 'swarm_invite', { did: t.did })).invite
      )
    const dids = new Set(swarm.all.map((x) => x.did))
    const joinS = await Promise.all(
      swarm.trainers.map(async (t) => {
        const start = Date.now()
        await swarm.call(t, 'swarm_join', { invite: invites.get(t) })
        await until(
          `${t.name} to verify every member`,
          async () => {
            const peers = await swarm.call<Peer[]>(t, 'peers_list')
            const verified = new Set(
              peers.filter((p) => p.member === true && dids.has(p.did!)).map((p) => p.did)
            )
            return verified.size >= dids.size - 1 ? true : undefined
          },
          600_000
        )
        return (Date.now() - start) / 1000
      })
    )

    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    const created = Date.now()
    const job = await swarm.createJob(
      {
        name: `wan-${n}`,
        dataset: ds.manifestCid,
        model: 'mlp',
        rounds: ROUNDS,
        H,
        k: Math.min(K, n - 1),
        lr: LR,
        batchSize: BATCH,
        seed: 1,
        ...(SCHEDULE !== '' ? { schedule: SCHEDULE } : {}),
        ...(OUTER !== '' ? { outer: { lr: OUTER_LR, momentum: OUTER_MOMENTUM } } : {})
      },
      // 17 daemons on 2 cores: joining (grant checks, data preparation) takes minutes, not seconds.
      600_000
    )
    const first = new Map<string, number>()
    const statuses = await swarm.waitDone(
      job,
      (s) => {
        for (const [name, st] of s) if (st.history.length > 0 && !first.has(name)) first.set(name, Date.now())
      },
      1_800_000
    )
    const firstRoundS = swarm.trainers.map((t) => ((first.get(t.name) ?? NaN) - created) / 1000)
    // The trainer's own clock per round: local steps + network (store, announce, wait, fetch)
    // + aggregation, averaged over the rounds (the 1 s status polls are too coarse for this).
    const sPerRound = swarm.trainers.map((t) => {
      const h = statuses.get(t.name)!.history
      return h.reduce((a, r) => a + r.trainMs + r.netMs + r.aggMs, 0) / 1000 / Math.max(1, h.length)
    })
    for (const t of swarm.trainers) {
      const s = statuses.get(t.name)!
      if (s.state !== 'done') throw new Error(`${t.name}: ${s.state} ${JSON.stringify(s.error)}`)
    }
    // What each volunteer's rounds took in: peer models aggregated, refused, not fetched in time.
    const intake = swarm.trainers.map((t) => {
      const h = statuses.get(t.name)!.history
      return {
        name: t.name,
        used: h.reduce((a, r) => a + r.peers.length, 0),
        rejected: h.reduce((a, r) => a + r.rejected, 0),
        unavailable: h.reduce((a, r) => a + r.unavailable, 0),
        rounds: h.length,
        alone: h.filter((r) => r.peers.length === 0).map((r) => r.round),
        accuracy: (statuses.get(t.name)!.accuracy ?? NaN) * 100
      }
    })
    console.log(
      'peer models per volunteer (aggregated / refused / not fetched in time): ' +
        intake.map((x) => `${x.name} ${x.used}/${x.rejected}/${x.unavailable}`).join(', ')
    )
    // Each volunteer's accuracy, rounds trained, and the rounds in which it aggregated no peer model.
    console.log(
      'per volunteer: ' +
        intake
          .map(
            (x) =>
              `${x.name} ${x.accuracy.toFixed(2)} % (${x.rounds} rounds` +
              `${x.alone.length > 0 ? `, alone in ${x.alone.join(' ')}` : ''})`
          )
          .join('; ')
    )
    const alone = swarm.trainers.filter((_, i) => intake[i]!.used === 0)
    if (alone.length > 0) {
      // Trained alone: the warnings its daemon logged say why (SHOAL_LOG=warn in the lab).
      const t = alone[0]!
      const lines = (t.daemon?.output() ?? '').trim().split('\n').slice(-40)
      console.log(`${alone.length} volunteer(s) aggregated no peer model; the last lines of ${t.name}'s log:`)
      console.log(lines.join('\n'))
    }

    // Connections between volunteers: direct or through the founder's relay.
    let pairs = 0
    let direct = 0
    for (const [i, a] of swarm.trainers.entries()) {
      const peers = await swarm.call<Peer[]>(a, 'peers_list')
      for (const b of swarm.trainers.slice(i + 1)) {
        const conns = peers.filter((p) => p.did === b.did)
        if (conns.length === 0) continue
        pairs++
        if (conns.some((c) => !c.relayed)) direct++
      }
    }
    const bytesReceived = [...statuses.values()].reduce((a, s) => a + s.bytesReceived, 0)
    const accuracy = [...statuses.values()].map((s: JobStatus) => (s.accuracy ?? NaN) * 100)
    const rssMiB = await Promise.all(
      swarm.trainers.map(
        async (t) => (await swarm.call<{ rssBytes: number }>(t, 'node_info')).rssBytes / 2 ** 20
      )
    )
    const total = ds.shards.reduce((a, s) => a + s.count, 0)
    const epochs = Math.max(1, Math.round((ROUNDS * H * BATCH * n) / total))
    const reference = (await swarm.reference({ epochs, batchSize: BATCH, lr: LR })) * 100
    return {
      n,
      rtt,
      joinS,
      firstRoundS,
      sPerRound,
      pairs,
      direct,
      bytesReceived,
      accuracy,
      reference,
      epochs,
      rssMiB,
      wallS: (Date.now() - t0) / 1000
    }
  } finally {
    if (LOGS !== '') {
      const dir = join(LOGS, `n${n}-rtt${rtt}`)
      await mkdir(dir, { recursive: true })
      for (const x of swarm.all) await writeFile(join(dir, `${x.name}.log`), x.daemon?.output() ?? '')
      console.log(`daemon logs in ${dir}`)
    }
    await swarm.stop()
    await lab.destroy()
    await rm(swarm.root, { recursive: true, force: true })
  }
}

/** One table row. */
const rowLine = (r: Row): string =>
  `| ${r.n} | ${r.rtt} ms | ${range(r.joinS)} | ${range(r.firstRoundS)} | ${median(r.sPerRound).toFixed(2)} | ` +
  `${r.direct} of ${r.pairs} | ${(r.bytesReceived / 2 ** 20).toFixed(1)} MiB | ${range(r.accuracy, 2)} % | ` +
  `${r.reference.toFixed(2)} % | ${range(r.rssMiB, 0)} MiB |`

async function main(): Promise<void> {
  const ok = await NetworkLab.available()
  if (!ok.ok) throw new Error(`bench:wan needs the network lab: ${ok.reason}`)
  // A section per run, its rows appended as they are measured (an interrupted run keeps them).
  const out = join('benchmarks', 'wan.md')
  const date = new Date().toISOString().slice(0, 10)
  await appendFile(
    out,
    [
      `## bench:wan — ${date}`,
      '',
      `\`npm run bench:wan -- --nodes ${NODES.join(',')} --rtt ${RTTS.join(',')} --rounds ${ROUNDS}${LOSS > 0 ? ` --loss ${LOSS}` : ''}${FETCH_TIMEOUT !== '' ? ` --fetch-timeout ${FETCH_TIMEOUT}` : ''}${K !== 3 ? ` --k ${K}` : ''}${SCHEDULE !== '' ? ` --schedule ${SCHEDULE}` : ''}${OUTER !== '' ? ` --outer ${OUTER}` : ''}\`, ${cpus().length} cores ` +
        `(${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load average at the start ` +
        `${loadavg()
          .map((x) => x.toFixed(1))
          .join(' / ')}. A founder (public, member relay) and N volunteers behind NATs (every fourth ` +
        `symmetric), ${MBIT} Mbit/s per volunteer; RTT = the delay added in user space (scripts/lab/delay.js: ` +
        `every message costs it, TCP's own handshake and ACKs do not; ` +
        `${LOSS > 0 ? `loss ${LOSS}: a write held back by one RTO with that probability` : 'no loss'}). MLP, ` +
        `Dirichlet(0.5) shards, H = ${H}, batch ${BATCH}, k = min(${K}, N − 1), ${ROUNDS} rounds` +
        `${SCHEDULE !== '' ? `, ${SCHEDULE} schedule` : ''}${OUTER !== '' ? `, outer step ${OUTER}` : ''}; centralized = the ` +
        `same model on the union for the same samples. Every process of every node shares the 2 cores.`,
      '',
      '| N | RTT | join → all members verified (s) | job_create → first round (s) | s / round (mean of rounds) | volunteer pairs direct | model bytes received (all volunteers) | accuracy (volunteers) | centralized | RSS / volunteer |',
      '| ---: | ---: | --- | --- | ---: | --- | ---: | --- | ---: | --- |',
      ''
    ].join('\n')
  )
  for (const n of NODES)
    for (const rtt of RTTS) {
      console.log(`N = ${n}, RTT ${rtt} ms: founder + ${n} volunteers behind NATs at ${MBIT} Mbit/s…`)
      const row = await runOne(n, rtt)
      await appendFile(out, rowLine(row) + '\n')
      console.log(`${rowLine(row)}  (${row.wallS.toFixed(0)} s)`)
    }
  await appendFile(out, '\n')
  console.log(`appended to ${out}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
