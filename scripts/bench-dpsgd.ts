/**
 * DP-SGD benchmark: `npx tsx scripts/bench-dpsgd.ts [--rounds 16] [--H 12] [--batch 512] [--lr 0.15] [--clip 1]
 *   [--momentum 0.9] [--wd 0] [--optimizer sgd|adam] [--eps 1,2,3,8] [--central-eps <as --eps>] [--delta 1e-5]
 *   [--splits iid,dirichlet] [--alpha 0.5] [--cnn-eps 3,8] [--cnn-steps 400] [--baselines true]
 *   [--noise-seed 9000] [--timing-steps 100] [--timing-batch 128,512] [--out benchmarks/dpsgd.md]`
 *
 * Defaults: the recommended DP-SGD settings (`DPSGD_DEFAULTS`). For a sweep, e.g.
 * `--splits iid --eps 1,3,8 --central-eps '' --cnn-eps '' --baselines false --timing-steps 0 --lr 0.05`.
 *
 * The `mnist` package's digits, the seeded 8,000 / 2,000 split of bench-privacy.ts. For each target ε at δ:
 * - a 4-node swarm (2,000 digits per node, IID or Dirichlet(α) shards): every round each node runs H DP-SGD
 *   steps (`trainDpsgdRound`: Poisson rate q = batch / N_node, per-example clipping to C, N(0, σ²C²) on the
 *   clipped sum, divided by q·N) from the public base, and the base of the next round is the mean of the four
 *   announced models, i.e. a SwarmTrainer with k = N − 1 and mean aggregation (under DP-SGD the announced model
 *   is the node's own model, so nothing escapes the accountant). σ is solved per node for its q and the planned
 *   rounds × H steps, so each record's ε ≤ the target (a record is only in its node's shard).
 * - centralized DP-SGD on all 8,000 digits with the same number of examples processed (4 × rounds × H steps).
 * - the loss-threshold membership-inference advantage of the final model: node A's shard (or 2,000 training
 *   digits, centralized) against the 2,000 held-out digits.
 * - the step time of DP-SGD (noise draw included) against the plain train step at the same fixed batch sizes,
 *   same run, interleaved; and the DP-SGD step with the polar sampler rounds used before.
 *
 * Writes Markdown to benchmarks/dpsgd.md and prints it.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as ort from 'onnxruntime-node'
import { Rng } from '../src/common/rng.js'
import { loadMnist, shardDirichlet, shardIid, subset, trainTestSplit } from '../src/storage/datasets/index.js'
import { aggregate } from '../src/training/aggregate/index.js'
import { MNIST_MEAN, MNIST_STD, fromImages, type TensorDataset } from '../src/training/data/index.js'
import {
  DPSGD_DEFAULTS,
  DP_INPUTS,
  compileDpsgdModel,
  trainDpsgdRound,
  type DpsgdModel
} from '../src/training/dpsgd/index.js'
import {
  MODELS,
  compileModel,
  initParams,
  initState,
  type ModelSpec,
  type OptimizerSpec
} from '../src/training/graph/index.js'
import {
  RdpAccountant,
  dpsgdSteps,
  lossThresholdAdvantage,
  solveNoiseMultiplier
} from '../src/training/privacy/index.js'
import { Trainer, perSampleLoss } from '../src/training/runtime/index.js'
import { roundSeed, trainRound } from '../src/training/swarm/index.js'
import { arg } from './lib/env.js'

const argv = process.argv.slice(2)
const list = (s: string): number[] => (s === '' ? [] : s.split(',').map(Number))
const ROUNDS = Number(arg('rounds', String(DPSGD_DEFAULTS.rounds)))
const H = Number(arg('H', String(DPSGD_DEFAULTS.H)))
const BATCH = Number(arg('batch', String(DPSGD_DEFAULTS.batchSize)))
const LR = Number(arg('lr', String(DPSGD_DEFAULTS.lr)))
const CLIP = Number(arg('clip', String(DPSGD_DEFAULTS.clipNorm)))
const MOMENTUM = Number(arg('momentum', String(DPSGD_DEFAULTS.momentum)))
const WEIGHT_DECAY = Number(arg('wd', '0'))
const OPTIMIZER = arg('optimizer', 'sgd')
const EPS = list(arg('eps', '1,2,3,8'))
const CENTRAL_EPS = list(arg('central-eps', EPS.join(',')))
const BASELINES = arg('baselines', 'true') !== 'false'
const DELTA = Number(arg('delta', '1e-5'))
const SPLITS = arg('splits', 'iid,dirichlet')
  .split(',')
  .filter((s) => s !== '')
const ALPHA = Number(arg('alpha', '0.5'))
const CNN_EPS = list(arg('cnn-eps', '3,8'))
const CNN_STEPS = Number(arg('cnn-steps', '400'))
const TIMING_STEPS = Number(arg('timing-steps', '100'))
const TIMING_BATCHES = list(arg('timing-batch', '128,512'))
/** Base of the noise seeds (each node's round r draws from Rng(NOISE_SEED + 31·node + r)). */
const NOISE_SEED = Number(arg('noise-seed', '9000'))
const OUT = arg('out', join(import.meta.dirname, '..', 'benchmarks', 'dpsgd.md'))
const NODES = 4
const KEEP_MARKER = '<!-- kept by scripts/bench-dpsgd.ts: hand-written below -->'
const SEED = 42
const JOB_SEED = 7
const OPT: OptimizerSpec =
  OPTIMIZER === 'adam'
    ? { type: 'adam' }
    : { type: 'sgd', momentum: MOMENTUM, ...(WEIGHT_DECAY > 0 ? { weightDecay: WEIGHT_DECAY } : {}) }
const command = ['npx tsx scripts/bench-dpsgd.ts', ...argv].join(' ')
const progress = (msg: string): void => void process.stderr.write(`${msg}\n`)

const all = await loadMnist()
const split = trainTestSplit(all, { seed: SEED })
const test = fromImages(split.test, { mean: MNIST_MEAN, std: MNIST_STD, shape: [784] })
const prep = (shape: number[]) => (idx: number[]) =>
  fromImages(subset(split.train, idx), { mean: MNIST_MEAN, std: MNIST_STD, shape })
const shardsOf = (kind: string, shape: number[]): TensorDataset[] =>
  (kind === 'iid'
    ? shardIid(split.train, NODES, SEED)
    : shardDirichlet(split.train, NODES, ALPHA, SEED, { minSize: 100 })
  ).map(prep(shape))

type W = Map<string, Float32Array>

interface Outcome {
  accuracy: number
  advantage: number
  sigma: number[]
  epsilon: number
  wallS: number
}

function epsilonOf(q: number, sigma: number, steps: number): number {
  const acc = new RdpAccountant()
  acc.step(dpsgdSteps({ sampleRate: q, noiseMultiplier: sigma, steps }))
  return acc.getEpsilon(DELTA)
}

async function finish(
  evaluator: Trainer,
  w: W,
  members: TensorDataset,
  testSet: TensorDataset
): Promise<{ accuracy: number; advantage: number }> {
  evaluator.setWeights(w)
  const { accuracy } = await evaluator.evaluate(testSet)
  const n = Math.min(members.count, testSet.count)
  const m = await perSampleLoss(evaluator, members)
  const nm = await perSampleLoss(evaluator, testSet)
  return { accuracy, advantage: lossThresholdAdvantage(m.subarray(0, n), nm.subarray(0, n)).advantage }
}

/** Rounds of a k = N − 1, mean-aggregating swarm from a public base; eps = undefined trains without DP. */
async function swarm(
  spec: ModelSpec,
  model: DpsgdModel,
  shards: TensorDataset[],
  eps: number | undefined,
  evaluator: Trainer,
  testSet: TensorDataset,
  rounds: number,
  steps: number
): Promise<Outcome> {
  const t0 = performance.now()
  const plain = eps === undefined ? compileModel(spec, OPT) : undefined
  const trainer = await Trainer.create(plain ?? model, {
    weights: initParams(model, JOB_SEED),
    deterministic: true
  })
  const zeroState = initState(model)
  const qs = shards.map((s) => Math.min(1, BATCH / s.count))
  const sigma =
    eps === undefined
      ? []
      : qs.map((q) =>
          solveNoiseMultiplier({ sampleRate: q, steps: rounds * steps, targetEpsilon: eps, delta: DELTA })
        )
  let base: W = initParams(model, JOB_SEED)
  try {
    for (let r = 0; r < rounds; r++) {
      const announced: W[] = []
      for (let i = 0; i < shards.length; i++) {
        trainer.setWeights(base)
        const seed = roundSeed(JOB_SEED + i, r)
        if (eps === undefined) {
          await trainRound(trainer, shards[i]!, { H: steps, batchSize: BATCH, lr: LR, seed, zeroState })
        } else {
          await trainDpsgdRound(trainer, shards[i]!, {
            H: steps,
            sampleRate: qs[i]!,
            lr: LR,
            clipNorm: CLIP,
            noiseMultiplier: sigma[i]!,
            seed,
            noiseSeed: new Rng(NOISE_SEED + 31 * i + r).nextUint32(),
            noiseSize: model.noiseSize,
            zeroState
          })
        }
        announced.push(trainer.getWeights())
      }
      base = announced.length === 1 ? announced[0]! : aggregate('mean', announced)
    }
  } finally {
    await trainer.close()
  }
  const wallS = (performance.now() - t0) / 1000
  const epsilon =
    eps === undefined ? Infinity : Math.max(...qs.map((q, i) => epsilonOf(q, sigma[i]!, rounds * steps)))
  return { ...(await finish(evaluator, base, shards[0]!, testSet)), sigma, epsilon, wallS }
}

type Kind = 'plain' | 'dp' | 'dpPolar' | 'graphOnly' | 'draw' | 'drawPolar'
/** Per step, each the median over blocks of 10: CPU time (this process: onnxruntime runs on its thread), wall. */
interface StepTimes {
  cpu: Record<Kind, number>
  wall: Record<Kind, number>
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * Step times at the same fixed batch, interleaved in blocks of 10: the plain step; the DP-SGD step with its
 * noise draw (as trainDpsgdRound runs it) by the ziggurat and by the polar sampler (before); the DP-SGD graph
 * alone; each draw alone. Medians over blocks, of CPU time and of wall time: on a shared machine the CPU time
 * and the medians keep other processes' bursts out of the comparison.
 */
async function stepTimes(spec: ModelSpec, data: TensorDataset, B: number): Promise<StepTimes> {
  const plainModel = compileModel(spec, OPT)
  const dpModel = compileDpsgdModel(spec, OPT)
  const w = initParams(plainModel, JOB_SEED)
  const a = await Trainer.create(plainModel, { weights: w, deterministic: true })
  const b = await Trainer.create(dpModel, { weights: w, deterministic: true })
  const S = data.x.length / data.count
  const x = data.x.slice(0, B * S)
  const y = BigInt64Array.from(data.y.subarray(0, B), (v) => BigInt(v))
  const rng = new Rng(1)
  const noise = new Float32Array(dpModel.noiseSize)
  const inputs = {
    [DP_INPUTS.mask]: new ort.Tensor('float32', new Float32Array(B).fill(1), [B]),
    [DP_INPUTS.clip]: new ort.Tensor('float32', Float32Array.of(CLIP), []),
    [DP_INPUTS.std]: new ort.Tensor('float32', Float32Array.of(CLIP), []),
    [DP_INPUTS.denom]: new ort.Tensor('float32', Float32Array.of(B), []),
    [DP_INPUTS.noise]: new ort.Tensor('float32', noise, [dpModel.noiseSize])
  }
  const zig = (): void => rng.fillGaussianZiggurat(noise)
  const polar = (): void => rng.fillGaussian(noise)
  const blocks: Array<[Kind, () => Promise<unknown>]> = [
    ['plain', () => a.step(x, y, 0.01)],
    // As trainDpsgdRound does: the step is started, then the next step's noise drawn, then the step awaited.
    [
      'dp',
      async () => {
        const run = b.step(x, y, 0.01, { inputs })
        zig()
        await run
      }
    ],
    [
      'dpPolar',
      async () => {
        const run = b.step(x, y, 0.01, { inputs })
        polar()
        await run
      }
    ],
    ['graphOnly', () => b.step(x, y, 0.01, { inputs })],
    ['draw', async () => zig()],
    ['drawPolar', async () => polar()]
  ]
  const cpu = new Map<Kind, number[]>(blocks.map(([name]) => [name, []]))
  const wall = new Map<Kind, number[]>(blocks.map(([name]) => [name, []]))
  for (let k = -1; k < TIMING_STEPS / 10; k++) {
    for (const [name, fn] of blocks) {
      const c = process.cpuUsage()
      const t = performance.now()
      for (let i = 0; i < 10; i++) await fn()
      const used = process.cpuUsage(c)
      if (k >= 0) {
        wall.get(name)!.push((performance.now() - t) / 10)
        cpu.get(name)!.push((used.user + used.system) / 1000 / 10)
      }
    }
  }
  await a.close()
  await b.close()
  const med = (m: Map<Kind, number[]>): Record<Kind, number> =>
    Object.fromEntries([...m].map(([name, xs]) => [name, median(xs)])) as Record<Kind, number>
  return { cpu: med(cpu), wall: med(wall) }
}

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`
const md: string[] = []
const out = (line = ''): void => void md.push(line)
const started = performance.now()
const load0 = loadavg()
out(`## DP-SGD: accuracy against ε (scripts/bench-dpsgd.ts)`)
out()
out(`Command: \`${command}\`  `)
out(
  `Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} logical CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
    `Node ${process.version}; load average at start ${load0.map((v) => v.toFixed(1)).join(', ')}  `
)
out(`Date: ${new Date().toISOString()}  `)
out(
  `Setup: MLP 784-128-10, optimizer ${JSON.stringify(OPT)}, lr ${LR}, C = ${CLIP}, expected batch ${BATCH} (Poisson), ` +
    `${ROUNDS} rounds × H ${H} per node, δ = ${DELTA}; centralized: ${NODES * ROUNDS * H} steps on 8,000 digits ` +
    `(the same examples processed). MIA = loss-threshold membership advantage (2,000 members vs 2,000 held out; ` +
    `noise floor ≈ 0.04).`
)
out()

const mlpEval = await Trainer.create(compileModel(MODELS.mlp, OPT), {
  weights: initParams(compileModel(MODELS.mlp, OPT), 1),
  deterministic: true
})
const mlpDp = compileDpsgdModel(MODELS.mlp, OPT)
const all8000 = prep([784])(Array.from({ length: split.train.count }, (_, i) => i))

out(`| setting | ε target | σ | ε (record, δ = ${DELTA}) | held-out accuracy | MIA advantage | wall |`)
out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`)
const row = (name: string, eps: number | undefined, o: Outcome): void => {
  const sig = o.sigma.length === 0 ? '–' : [...new Set(o.sigma.map((s) => s.toFixed(3)))].join(' / ')
  out(
    `| ${name} | ${eps ?? '∞'} | ${sig} | ${Number.isFinite(o.epsilon) ? o.epsilon.toFixed(2) : '∞'} | ` +
      `${pct(o.accuracy)} | ${o.advantage.toFixed(3)} | ${o.wallS.toFixed(1)} s |`
  )
  progress(md.at(-1)!)
}
for (const kind of SPLITS) {
  const shards = shardsOf(kind, [784])
  const label = kind === 'iid' ? '4-node swarm, IID' : `4-node swarm, Dirichlet(${ALPHA})`
  if (BASELINES)
    row(
      `${label}, no DP`,
      undefined,
      await swarm(MODELS.mlp, mlpDp, shards, undefined, mlpEval, test, ROUNDS, H)
    )
  for (const eps of EPS)
    row(label, eps, await swarm(MODELS.mlp, mlpDp, shards, eps, mlpEval, test, ROUNDS, H))
}
if (BASELINES)
  row(
    'centralized, no DP',
    undefined,
    await swarm(MODELS.mlp, mlpDp, [all8000], undefined, mlpEval, test, 1, NODES * ROUNDS * H)
  )
for (const eps of CENTRAL_EPS)
  row(
    'centralized',
    eps,
    await swarm(MODELS.mlp, mlpDp, [all8000], eps, mlpEval, test, 1, NODES * ROUNDS * H)
  )

if (CNN_EPS.length > 0) {
  const cnnTrain = prep([1, 28, 28])(Array.from({ length: split.train.count }, (_, i) => i))
  const cnnTest = fromImages(split.test, { mean: MNIST_MEAN, std: MNIST_STD, shape: [1, 28, 28] })
  const cnnPlain = compileModel(MODELS.cnn, OPT)
  const cnnEval = await Trainer.create(cnnPlain, { weights: initParams(cnnPlain, 1), deterministic: true })
  const cnnDp = compileDpsgdModel(MODELS.cnn, OPT)
  row(
    `CNN centralized, no DP (${CNN_STEPS} steps)`,
    undefined,
    await swarm(MODELS.cnn, cnnDp, [cnnTrain], undefined, cnnEval, cnnTest, 1, CNN_STEPS)
  )
  for (const eps of CNN_EPS)
    row(
      `CNN centralized (${CNN_STEPS} steps)`,
      eps,
      await swarm(MODELS.cnn, cnnDp, [cnnTrain], eps, cnnEval, cnnTest, 1, CNN_STEPS)
    )
  await cnnEval.close()
}
out()

if (TIMING_STEPS > 0 && TIMING_BATCHES.length > 0) {
  out(
    `Step time at fixed batches: CPU time per step of this process (onnxruntime runs on its thread), median of ` +
      `${Math.floor(TIMING_STEPS / 10)} interleaved blocks of 10 steps each, one onnxruntime thread; the DP-SGD ` +
      `step includes its noise draw, by the ziggurat as rounds draw now and by the polar method as before; the ` +
      `last column is the ratio of median wall times:`
  )
  out()
  out(
    `| model | batch | plain step | DP-SGD step | ratio | DP-SGD step, polar draw | ratio | DP-SGD graph alone | ` +
      `ziggurat draw alone | polar draw alone | wall ratio |`
  )
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`)
  for (const [name, spec, data] of [
    ['MLP', MODELS.mlp, all8000],
    ...(CNN_EPS.length > 0
      ? [['CNN', MODELS.cnn, prep([1, 28, 28])(Array.from({ length: 1024 }, (_, i) => i))] as const]
      : [])
  ] as const) {
    for (const B of TIMING_BATCHES) {
      const { cpu: t, wall } = await stepTimes(spec, data, B)
      const ms = (v: number): string => `${v.toFixed(2)} ms`
      out(
        `| ${name} | ${B} | ${ms(t.plain)} | ${ms(t.dp)} | ${(t.dp / t.plain).toFixed(2)}× | ${ms(t.dpPolar)} | ` +
          `${(t.dpPolar / t.plain).toFixed(2)}× | ${ms(t.graphOnly)} | ${ms(t.draw)} | ${ms(t.drawPolar)} | ` +
          `${(wall.dp / wall.plain).toFixed(2)}× |`
      )
      progress(md.at(-1)!)
    }
  }
}
out()
out(
  `Total wall time ${((performance.now() - started) / 1000).toFixed(0)} s; load average at end ${loadavg()
    .map((v) => v.toFixed(1))
    .join(', ')}.`
)
await mlpEval.close()
// A hand-written part of the report (the sweep behind DPSGD_DEFAULTS) below KEEP_MARKER survives a rerun.
const kept = await readFile(OUT, 'utf8').then(
  (text) => (text.includes(KEEP_MARKER) ? text.slice(text.indexOf(KEEP_MARKER)) : ''),
  () => ''
)
await writeFile(OUT, `${md.join('\n')}\n${kept === '' ? '' : `\n${kept}`}`)
process.stdout.write(`${md.join('\n')}\n`)
