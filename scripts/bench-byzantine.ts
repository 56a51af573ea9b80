/**
 * `npm run bench:byzantine`: what Byzantine trainers inside a swarm cost the honest ones, per
 * attack and aggregation rule, in real swarms of node processes (scripts/lib/swarm.ts). For each
 * configuration "f of N": one owner + N trainers on Dirichlet(0.5) MNIST shards; the last f
 * trainers are restarted with `SHOAL_LAB_BYZANTINE=<attack>` (a lab-only switch,
 * src/node/jobs/lab.ts) for each attack in turn, and one job per aggregation rule runs on the same
 * swarm, one after another. Reported: the honest trainers' final held-out accuracy against the
 * same rule's no-attack run (all N honest), models refused by validation, and fetches that failed.
 * Receipt re-execution is off (`receipts.reexecFraction = 0`) so that only aggregation defends: an
 * auditor that can read an attacker's shard would convict it (docs/receipts.md). Restarting the
 * owner with its audit on, to measure that too, was dropped: on 2 shared cores the restarted
 * owner (a new port) did not re-mesh with the trainers within 3 minutes.
 *
 * Flags: --configs 1/5 (e.g. 1/5,2/6)  --attacks all | none,sign-flip,…  --rules mean,median,clipped-gossip
 *        (all: the six rules, ~45 min for 1/5 on 2 shared cores)  --rounds 6  --H 20
 *        --k n (default N − 1: every honest node may draw every attacker)
 * Writes its section of benchmarks/byzantine.md (between `<!-- bench-byzantine <configs> <rules> -->`
 * markers, replaced by a run with the same configs and rules; the rest of the file is kept).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { startDaemon } from './lib/processes.js'
import { LocalSwarm, until, type SwarmNode } from './lib/swarm.js'
import { arg } from './lib/env.js'

const ALL_ATTACKS = [
  'none',
  'sign-flip',
  'scale',
  'noise',
  'alie',
  'ipm',
  'label-flip',
  'free-ride',
  'withhold'
]
const ALL_RULES = ['mean', 'trimmed-mean', 'median', 'krum', 'clipped-gossip', 'bucketing']
const CONFIGS = arg('configs', '1/5')
  .split(',')
  .map((c) => {
    const [f, n] = c.split('/').map(Number)
    return { f: f!, n: n! }
  })
const list = (name: string, all: string[], def: string): string[] => {
  const v = arg(name, def)
  return v === 'all' ? all : v.split(',')
}
const ATTACKS = list('attacks', ALL_ATTACKS, 'all')
// The default fits in ~20 min on 2 shared cores: the mean, the median and the default rule.
const RULES = list('rules', ALL_RULES, 'mean,median,clipped-gossip')
const ROUNDS = Number(arg('rounds', '6'))
const H = Number(arg('H', '20'))
const K = process.argv.includes('--k') ? Number(arg('k', '4')) : undefined
const BATCH = 32
const LR = 0.05
const BASE_ENV = { SHOAL_LOG: 'error', SHOAL_RECEIPTS_REEXEC_FRACTION: '0' }

interface Cell {
  attack: string
  rule: string
  /** Final accuracy of each honest trainer. */
  honest: number[]
  /** Peer models refused by validation, and fetches that failed, summed over honest trainers. */
  rejected: number
  unavailable: number
  states: string[]
  wallS: number
}

interface ConfigResult {
  f: number
  n: number
  k: number
  cells: Cell[]
  wallS: number
}

const t0 = Date.now()
const say = (s: string): void => console.error(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${s}`)

/** Restart a trainer with (or without) an attack. */
async function relaunch(
  swarm: LocalSwarm,
  node: SwarmNode,
  env: Record<string, string>,
  attackEnv: Map<string, Record<string, string>>
): Promise<void> {
  await swarm.kill(node)
  attackEnv.set(node.name, env)
  await swarm.startNode(node)
}

/**
 * `LocalSwarm.createJob` with a longer deadline: under load a trainer can take over a minute to
 * see a new job on the jobs topic.
 */
async function createJob(swarm: LocalSwarm, params: Record<string, unknown>): Promise<string> {
  const job = await swarm.call<{ id: string }>(swarm.owner, 'job_create', params)
  await Promise.all(
    swarm.trainers.map(async (t) =>
      until(
        `${t.name} to join ${String(params.name)}`,
        async () => {
          const mine = (await swarm.call<Array<{ id: string; state: string }>>(t, 'job_list')).find(
            (j) => j.id === job.id
          )
          if (mine === undefined) {
            await swarm.call(swarm.owner, 'job_announce', { job: job.id })
            return undefined
          }
          if (mine.state === 'known') await swarm.call(t, 'job_join', { job: job.id }).catch(() => {})
          return mine.state !== 'known' ? true : undefined
        },
        300_000
      )
    )
  )
  return job.id
}

/** One job per rule, one after the other (all at once on 2 cores was no faster, and less robust). */
async function runJobs(
  swarm: LocalSwarm,
  manifest: string,
  attack: string,
  rules: string[],
  k: number,
  honest: SwarmNode[]
): Promise<Cell[]> {
  const cells: Cell[] = []
  for (const rule of rules) {
    const start = Date.now()
    const job = await createJob(swarm, {
      name: `byz-${attack}-${rule}`,
      dataset: manifest,
      model: 'mlp',
      rounds: ROUNDS,
      H,
      k,
      lr: LR,
      batchSize: BATCH,
      aggregation: rule,
      seed: 1
    })
    const statuses = await swarm.waitDone(job, undefined, 1_800_000)
    const st = honest.map((t) => statuses.get(t.name)!)
    cells.push({
      attack,
      rule,
      honest: st.map((s) => s.accuracy ?? NaN),
      rejected: st.reduce((a, s) => a + s.history.reduce((b, h) => b + h.rejected, 0), 0),
      unavailable: st.reduce((a, s) => a + s.history.reduce((b, h) => b + h.unavailable, 0), 0),
      states: st.map((s) => s.state),
      wallS: (Date.now() - start) / 1000
    })
    say(
      `${attack} / ${rule}: ${(mean(cells.at(-1)!.honest) * 100).toFixed(1)}% in ${cells.at(-1)!.wallS.toFixed(0)} s`
    )
  }
  return cells
}

async function runConfig(f: number, n: number, before: ConfigResult[]): Promise<ConfigResult> {
  const k = K ?? n - 1
  const attackEnv = new Map<string, Record<string, string>>()
  const swarm = new LocalSwarm({
    root: await mkdtemp(join(tmpdir(), `shoal-byz-${f}of${n}-`)),
    trainers: n,
    env: BASE_ENV,
    launch: async (node) => startDaemon(node.home, [], { ...BASE_ENV, ...(attackEnv.get(node.name) ?? {}) })
  })
  const started = Date.now()
  const attackers = swarm.trainers.slice(n - f)
  const honest = swarm.trainers.slice(0, n - f)
  const cells: Cell[] = []
  try {
    await swarm.start()
    await swarm.form()
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    say(`${f} of ${n}: swarm formed, dataset granted`)
    let current = 'none'
    for (const attack of ATTACKS) {
      if (attack !== current) {
        const env: Record<string, string> = attack === 'none' ? {} : { SHOAL_LAB_BYZANTINE: attack }
        for (const a of attackers) await relaunch(swarm, a, env, attackEnv)
        await swarm.meshTrainers(180_000)
        current = attack
      }
      // With no attack every trainer is honest: the reference is over the same honest nodes.
      const row = await runJobs(swarm, ds.manifestCid, attack, RULES, k, honest)
      cells.push(...row)
      await report([...before, { f, n, k, cells, wallS: (Date.now() - started) / 1000 }])
    }
  } finally {
    await swarm.stop()
    await rm(swarm.root, { recursive: true, force: true })
  }
  return { f, n, k, cells, wallS: (Date.now() - started) / 1000 }
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length
}
const pct = (x: number): string => (Number.isFinite(x) ? (x * 100).toFixed(1) : '-')
const pts = (x: number): string =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}` : '-'

/** Writes benchmarks/byzantine.md from what was measured so far (after every row). */
async function report(results: ConfigResult[]): Promise<string> {
  const lines: string[] = []
  lines.push(
    `## Byzantine trainers: ${CONFIGS.map((c) => `${c.f} of ${c.n}`).join(', ')} (scripts/bench-byzantine.ts)`,
    ''
  )
  lines.push(
    `Command: \`npm run bench:byzantine -- --configs ${CONFIGS.map((c) => `${c.f}/${c.n}`).join(',')} --rounds ${ROUNDS} --H ${H}${K !== undefined ? ` --k ${K}` : ''}${ATTACKS.join(',') !== ALL_ATTACKS.join(',') ? ` --attacks ${ATTACKS.join(',')}` : ''} --rules ${RULES.join(',') === ALL_RULES.join(',') ? 'all' : RULES.join(',')}\`  `
  )
  lines.push(
    `Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, shared with other sessions; load average at the end ${loadavg()
      .map((x) => x.toFixed(1))
      .join(', ')}  `
  )
  lines.push(
    `Date: ${new Date().toISOString()}; total wall time ${((Date.now() - t0) / 60000).toFixed(1)} min  `
  )
  lines.push(
    `Setup: one owner + N trainer processes on 127.0.0.1; MNIST 8,000 digits in N Dirichlet(0.5) shards (one per trainer); MLP 784-128-10, SGD momentum 0.9, lr ${LR}, batch ${BATCH}, H = ${H}, ${ROUNDS} rounds, k = ${K ?? 'N − 1'} peers (every honest node can draw every attacker's model each round). The last f trainers attack; one job per rule, one after another, on the same swarm. Receipt re-execution is off (only aggregation defends). Cells: mean final held-out accuracy of the N − f honest trainers (%), and in brackets the change in points against the same rule with no attack (all N honest).`,
    ''
  )
  for (const r of results) {
    const none = new Map(r.cells.filter((c) => c.attack === 'none').map((c) => [c.rule, mean(c.honest)]))
    lines.push(`### ${r.f} of ${r.n} trainers Byzantine (k = ${r.k}; ${(r.wallS / 60).toFixed(1)} min)`, '')
    lines.push(`| attack | ${RULES.join(' | ')} |`)
    lines.push(`|---|${RULES.map(() => '---').join('|')}|`)
    for (const attack of ATTACKS) {
      const cells = RULES.map((rule) => {
        const c = r.cells.find((x) => x.attack === attack && x.rule === rule)
        if (c === undefined) return '-'
        const m = mean(c.honest)
        const notDone = c.states.filter((s) => s !== 'done').length
        return `${pct(m)}${attack === 'none' ? '' : ` (${pts(m - (none.get(rule) ?? NaN))})`}${notDone > 0 ? ` ⚠${notDone} not done` : ''}`
      })
      lines.push(`| ${attack} | ${cells.join(' | ')} |`)
    }
    // The figure a default rule is chosen by: its worst change under any attack measured.
    const worst = RULES.map((rule) => {
      const deltas = r.cells
        .filter((c) => c.rule === rule && c.attack !== 'none')
        .map((c) => mean(c.honest) - (none.get(rule) ?? NaN))
      return deltas.length === 0 ? '-' : `**${pts(Math.min(...deltas))}**`
    })
    lines.push(`| worst change | ${worst.join(' | ')} |`)
    lines.push(
      '',
      'Worst honest trainer (%) / peer models refused by validation / fetches failed, per cell:',
      ''
    )
    lines.push(`| attack | ${RULES.join(' | ')} |`)
    lines.push(`|---|${RULES.map(() => '---').join('|')}|`)
    for (const attack of ATTACKS) {
      const cells = RULES.map((rule) => {
        const c = r.cells.find((x) => x.attack === attack && x.rule === rule)
        return c === undefined ? '-' : `${pct(Math.min(...c.honest))} / ${c.rejected} / ${c.unavailable}`
      })
      lines.push(`| ${attack} | ${cells.join(' | ')} |`)
    }
    lines.push('')
  }
  const md = lines.join('\n') + '\n'
  await writeSection(md)
  return md
}

/** Replaces this run's section of benchmarks/byzantine.md (same configs and rules), or appends it. */
async function writeSection(md: string): Promise<void> {
  const file = join(import.meta.dirname, '..', 'benchmarks', 'byzantine.md')
  const key = `${CONFIGS.map((c) => `${c.f}/${c.n}`).join(',')} ${RULES.join(',')}`
  const begin = `<!-- bench-byzantine ${key} -->`
  const end = `<!-- /bench-byzantine ${key} -->`
  const block = `${begin}\n${md}${end}\n`
  const old = await readFile(file, 'utf8').catch(() => '')
  const at = old.indexOf(begin)
  const stop = old.indexOf(end, at)
  const next =
    at >= 0 && stop >= 0
      ? old.slice(0, at) + block + old.slice(stop + end.length + 1)
      : `${old}${old === '' || old.endsWith('\n\n') ? '' : old.endsWith('\n') ? '\n' : '\n\n'}${block}`
  await writeFile(file, next)
}

const done: ConfigResult[] = []
for (const c of CONFIGS) done.push(await runConfig(c.f, c.n, done))
console.log(await report(done))
