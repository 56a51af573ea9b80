/**
 * DP-SGD benchmark: `npx tsx scripts/bench-dpsgd.ts [--rounds 16] [--H 25] [--batch 128] [--lr 0.1] [--clip 1]
 *   [--eps 1,2,3,8] [--delta 1e-5] [--splits iid,dirichlet] [--alpha 0.5] [--cnn-eps 3,8] [--cnn-steps 400]
 *   [--timing-steps 100] [--out benchmarks/dpsgd.md]`
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
 * - the step time of DP-SGD against the plain train step at the same (fixed) batch size, same run, interleaved.
 *
 * Writes Markdown to benchmarks/dpsgd.md and prints it.
 */
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as ort from 'onnxruntime-node'
import { Rng } from '../src/common/rng.js'
import { loadMnist, shardDirichlet, shardIid, subset, trainTestSplit } from '../src/storage/datasets/index.js'
import { aggregate } from '../src/training/aggregate/index.js'
import { MNIST_MEAN, MNIST_STD, fromImages, type TensorDataset } from '../src/training/data/index.js'
import {
  DP_INPUTS,
  compileDpsgdModel,
  trainDpsgdRound,
  type DpsgdModel
} from '../src/training/dpsgd/index.js'
import { MODELS, compileModel, initParams, initState, type ModelSpec } from '../src/training/graph/index.js'
import {
  RdpAccountant,
  dpsgdSteps,
  lossThresholdAdvantage,
  solveNoiseMultiplier
} from '../src/training/privacy/index.js'
import { Trainer, perSampleLoss } from '../src/training/runtime/index.js'
import { roundSeed, trainRound } from '../src/training/swarm/index.js'

const argv = process.argv.slice(2)
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def
}
const list = (s: string): number[] => (s === '' ? [] : s.split(',').map(Number))
const ROUNDS = Number(arg('rounds', '16'))
const H = Number(arg('H', '25'))
const BATCH = Number(arg('batch', '128'))
const LR = Number(arg('lr', '0.1'))
const CLIP = Number(arg('clip', '1'))
const EPS = list(arg('eps', '1,2,3,8'))
const DELTA = Number(arg('delta', '1e-5'))
const SPLITS = arg('splits', 'iid,dirichlet')
  .split(',')
  .filter((s) => s !== '')
const ALPHA = Number(arg('alpha', '0.5'))
const CNN_EPS = list(arg('cnn-eps', '3,8'))
const CNN_STEPS = Number(arg('cnn-steps', '400'))
const TIMING_STEPS = Number(arg('timing-steps', '100'))
const OUT = arg('out', join(import.meta.dirname, '..', 'benchmarks', 'dpsgd.md'))
const NODES = 4
const SEED = 42
const JOB_SEED = 7
const OPT = { type: 'sgd', momentum: 0.9 } as const
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
            noiseSeed: new Rng(9000 + 31 * i + r).nextUint32(),
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

/** Mean step time (ms) of plain and DP-SGD steps at the same fixed batch, interleaved in blocks of 10. */
async function stepTimes(
  spec: ModelSpec,
  data: TensorDataset
): Promise<{ plain: number; dp: number; graphOnly: number; draw: number }> {
  const plainModel = compileModel(spec, OPT)
  const dpModel = compileDpsgdModel(spec, OPT)
  const w = initParams(plainModel, JOB_SEED)
  const a = await Trainer.create(plainModel, { weights: w, deterministic: true })
  const b = await Trainer.create(dpModel, { weights: w, deterministic: true })
  const S = data.x.length / data.count
  const x = data.x.slice(0, BATCH * S)
  const y = BigInt64Array.from(data.y.subarray(0, BATCH), (v) => BigInt(v))
  const rng = new Rng(1)
  const noise = new Float32Array(dpModel.noiseSize)
  const inputs = {
    [DP_INPUTS.mask]: new ort.Tensor('float32', new Float32Array(BATCH).fill(1), [BATCH]),
    [DP_INPUTS.clip]: new ort.Tensor('float32', Float32Array.of(CLIP), []),
    [DP_INPUTS.std]: new ort.Tensor('float32', Float32Array.of(CLIP), []),
    [DP_INPUTS.denom]: new ort.Tensor('float32', Float32Array.of(BATCH), []),
    [DP_INPUTS.noise]: new ort.Tensor('float32', noise, [dpModel.noiseSize])
  }
  let tp = 0
  let td = 0
  let tg = 0
  let tn = 0
  for (let k = -1; k < TIMING_STEPS / 10; k++) {
    let t = performance.now()
    for (let i = 0; i < 10; i++) await a.step(x, y, 0.01)
    if (k >= 0) tp += performance.now() - t
    t = performance.now()
    // As trainDpsgdRound does: the next step's noise is drawn while this one runs.
    for (let i = 0; i < 10; i++) {
      const run = b.step(x, y, 0.01, { inputs })
      rng.fillGaussian(noise)
      await run
    }
    if (k >= 0) td += performance.now() - t
    t = performance.now()
    for (let i = 0; i < 10; i++) await b.step(x, y, 0.01, { inputs })
    if (k >= 0) tg += performance.now() - t
    t = performance.now()
    for (let i = 0; i < 10; i++) rng.fillGaussian(noise)
    if (k >= 0) tn += performance.now() - t
  }
  await a.close()
  await b.close()
  const n = TIMING_STEPS
  return { plain: tp / n, dp: td / n, graphOnly: tg / n, draw: tn / n }
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
  `Setup: MLP 784-128-10, SGD momentum 0.9, lr ${LR}, C = ${CLIP}, expected batch ${BATCH} (Poisson), ` +
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
  row(
    `${label}, no DP`,
    undefined,
    await swarm(MODELS.mlp, mlpDp, shards, undefined, mlpEval, test, ROUNDS, H)
  )
  for (const eps of EPS)
    row(label, eps, await swarm(MODELS.mlp, mlpDp, shards, eps, mlpEval, test, ROUNDS, H))
}
row(
  'centralized, no DP',
  undefined,
  await swarm(MODELS.mlp, mlpDp, [all8000], undefined, mlpEval, test, 1, NODES * ROUNDS * H)
)
for (const eps of EPS)
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

out(
  `Step time at a fixed batch of ${BATCH} (mean of ${TIMING_STEPS} steps each, interleaved, one onnxruntime thread):`
)
out()
out(`| model | plain step | DP-SGD step | ratio | DP-SGD graph alone | noise draw alone |`)
out(`| --- | ---: | ---: | ---: | ---: | ---: |`)
for (const [name, spec, data] of [
  ['MLP', MODELS.mlp, all8000],
  ...(CNN_EPS.length > 0
    ? [['CNN', MODELS.cnn, prep([1, 28, 28])(Array.from({ length: 512 }, (_, i) => i))] as const]
    : [])
] as const) {
  const t = await stepTimes(spec, data)
  out(
    `| ${name} | ${t.plain.toFixed(2)} ms | ${t.dp.toFixed(2)} ms | ${(t.dp / t.plain).toFixed(2)}× | ` +
      `${t.graphOnly.toFixed(2)} ms | ${t.draw.toFixed(2)} ms |`
  )
  progress(md.at(-1)!)
}
out()
out(
  `Total wall time ${((performance.now() - started) / 1000).toFixed(0)} s; load average at end ${loadavg()
    .map((v) => v.toFixed(1))
    .join(', ')}.`
)
await mlpEval.close()
await writeFile(OUT, `${md.join('\n')}\n`)
process.stdout.write(`${md.join('\n')}\n`)
