/**
 * `npm run bench:mixing`: the swarm's training *algorithm* at N = 16 without the network, to
 * choose a job's defaults by measurement. One process simulates N volunteers exactly as their
 * trainers compute (the same `trainRound` on the onnxruntime `Trainer`, zeroed optimizer state
 * per round, the job's rule — `--rule`, default clipped-gossip as job_create's — over the own
 * model and k peers drawn at random, the outer Nesterov step when
 * the configuration has one) on the mnist package's digits, Dirichlet(α) shards of the 8,000
 * training digits, evaluated on the 2,000 held-out ones; against the centralized run of the same
 * model for the same number of samples (bench:wan's reference, `train_local`: cosine from lr to 0).
 *
 * What it leaves out, on purpose: the network (every chosen peer model arrives; `--miss p` drops
 * each with probability p), asynchrony (every node is in the same round), receipts.
 *
 * Flags: --nodes 16  --rounds 10  --H 20  --k 3  --alpha 0.5  --seeds 1,2,3 (job seeds: data
 * order, peer draws; the shards stay seed 42 as bench:wan's)  --configs plain,outer-0.7-0.9,…
 * (`plain`, `outer-<lr>-<μ>`, `lr-<inner lr>` prefixes combine: `lr-0.1+outer-0.7-0.9`;
 * `lastall` adds a last round that takes every peer) --miss 0 --out benchmarks/mixing.md
 */
import { appendFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Rng } from '../src/common/index.js'
import { loadMnist, subset, trainTestSplit } from '../src/storage/datasets/mnist.js'
import { shardDirichlet } from '../src/storage/datasets/split.js'
import { aggregate, outerNesterovStep, type AggregationRule } from '../src/training/aggregate/index.js'
import { IMAGE_NORMALIZATION, fromImages, type TensorDataset } from '../src/training/data/index.js'
import { MODELS, compileModel, initParams, initState } from '../src/training/graph/index.js'
import { Trainer } from '../src/training/runtime/index.js'
import { jobRoundSchedule } from '../src/training/swarm/local/schedule.js'
import { roundSeed, trainRound } from '../src/training/swarm/round.js'
import { arg } from './lib/env.js'

type Weights = Map<string, Float32Array>

const N = Number(arg('nodes', '16'))
const ROUNDS = Number(arg('rounds', '10'))
const H = Number(arg('H', '20'))
const K = Math.min(Number(arg('k', '3')), N - 1)
const ALPHA = Number(arg('alpha', '0.5'))
const SEEDS = arg('seeds', '1,2,3').split(',').map(Number)
const CONFIGS = arg('configs', 'plain,cos,outer-0.7-0.9,cos+outer-0.7-0.9').split(',')
const MISS = Number(arg('miss', '0'))
const OUT = arg('out', 'benchmarks/mixing.md')
/** The aggregation rule (job_create's default, as bench:wan's jobs). */
const RULE = arg('rule', 'clipped-gossip') as AggregationRule
const BATCH = 32
const LR = 0.05

interface Config {
  name: string
  lr: number
  outer?: { lr: number; momentum: number }
  lastAll: boolean
  /** Peer models per round (`k-<n>`; default --k). */
  k: number
  /** The job's warm-up + cosine schedule over rounds × H steps (`cos`), as an LM job's. */
  cosine: boolean
}

function parseConfig(name: string): Config {
  const c: Config = { name, lr: LR, lastAll: false, cosine: false, k: K }
  for (const part of name.split('+')) {
    const p = part.split('-')
    if (part === 'plain') continue
    else if (part === 'lastall') c.lastAll = true
    else if (part === 'cos') c.cosine = true
    else if (p[0] === 'outer' && p.length === 3) c.outer = { lr: Number(p[1]), momentum: Number(p[2]) }
    else if (p[0] === 'lr' && p.length === 2) c.lr = Number(p[1])
    else if (p[0] === 'k' && p.length === 2) c.k = Math.min(Number(p[1]), N - 1)
    else
      throw new Error(
        `unknown configuration part ${part} (plain, outer-<lr>-<μ>, lr-<lr>, k-<n>, lastall, cos)`
      )
  }
  return c
}

const model = compileModel(MODELS.mlp, { type: 'sgd', momentum: 0.9 })
const zeroState = initState(model)
const tensors = (set: Parameters<typeof fromImages>[0]): TensorDataset =>
  fromImages(set, { ...IMAGE_NORMALIZATION, shape: MODELS.mlp.input })

const all = await loadMnist()
const { train, test } = trainTestSplit(all, { seed: 42 })
const shards = shardDirichlet(train, N, ALPHA, 42).map((idx) => tensors(subset(train, idx)))
const testSet = tensors(test)
const union = tensors(train)
const trainer = await Trainer.create(model, { weights: initParams(model, 1) })

async function accuracy(w: Weights): Promise<number> {
  trainer.setWeights(w)
  return (await trainer.evaluate(testSet)).accuracy * 100
}

/** The swarm's final accuracy on every node for one configuration and job seed. */
async function swarm(c: Config, seed: number): Promise<number[]> {
  const rng = new Rng(seed * 7919 + 13)
  let bases: Weights[] = Array.from({ length: N }, () => initParams(model, seed))
  let momenta: Array<Weights | undefined> = bases.map(() => undefined)
  for (let r = 0; r < ROUNDS; r++) {
    const models: Weights[] = []
    for (let i = 0; i < N; i++) {
      trainer.setWeights(bases[i]!)
      await trainRound(trainer, shards[i]!, {
        H,
        batchSize: BATCH,
        lr: c.lr,
        seed: roundSeed(seed + i, r),
        zeroState,
        ...(c.cosine
          ? { schedule: jobRoundSchedule({ type: 'warmup-cosine' }, { lr: c.lr, H, rounds: ROUNDS }, r)! }
          : {})
      })
      models.push(trainer.getWeights())
    }
    const k = c.lastAll && r === ROUNDS - 1 ? N - 1 : c.k
    const next: Weights[] = []
    const nextMomenta: Array<Weights | undefined> = []
    for (let i = 0; i < N; i++) {
      const others = Array.from({ length: N }, (_, j) => j).filter((j) => j !== i)
      rng.shuffle(others)
      const peers = others.slice(0, k).filter(() => !(MISS > 0 && rng.next() < MISS))
      const combined = aggregate(RULE, [models[i]!, ...peers.map((j) => models[j]!)])
      if (c.outer === undefined) {
        next.push(combined)
        nextMomenta.push(undefined)
      } else {
        const step = outerNesterovStep(bases[i]!, combined, momenta[i], c.outer)
        next.push(step.weights)
        nextMomenta.push(step.momentum)
      }
    }
    bases = next
    momenta = nextMomenta
  }
  const acc: number[] = []
  for (const b of bases) acc.push(await accuracy(b))
  return acc
}

/**
 * The centralized run: the same model on the union of the shards, for the swarm's samples, with
 * `train_local`'s schedule (bench:wan's reference): cosine from lr to 0, no warm-up.
 */
async function centralized(seed: number): Promise<number> {
  trainer.setWeights(initParams(model, seed))
  const steps = ROUNDS * H * N
  const schedule = { step: 0, warmupSteps: 0, totalSteps: steps, minLr: 0 }
  await trainRound(trainer, union, { H: steps, batchSize: BATCH, lr: LR, seed, zeroState, schedule })
  return await accuracy(trainer.getWeights())
}

const fmt = (v: number): string => v.toFixed(2)
const rows: string[] = []
const t0 = performance.now()
const central: number[] = []
for (const s of SEEDS) central.push(await centralized(s))
const centralMean = central.reduce((a, b) => a + b, 0) / central.length
console.log(`centralized ${central.map(fmt).join(', ')}`)
for (const name of CONFIGS) {
  const c = parseConfig(name)
  const per: number[][] = []
  for (const s of SEEDS) per.push(await swarm(c, s))
  const flat = per.flat()
  const mean = flat.reduce((a, b) => a + b, 0) / flat.length
  const gaps = per.map((acc, i) => central[i]! - Math.min(...acc))
  const row =
    `| ${name} | ${fmt(mean)} | ${fmt(Math.min(...flat))}–${fmt(Math.max(...flat))} | ` +
    `${fmt(centralMean - mean)} | ${fmt(Math.max(...gaps))} |`
  console.log(row)
  rows.push(row)
}
await trainer.close()
const minutes = ((performance.now() - t0) / 60_000).toFixed(1)
appendFileSync(
  OUT,
  [
    '',
    `## bench:mixing — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `\`npm run bench:mixing -- --nodes ${N} --rounds ${ROUNDS} --H ${H} --k ${K} --alpha ${ALPHA} ` +
      `--seeds ${SEEDS.join(',')} --configs ${CONFIGS.join(',')}${MISS > 0 ? ` --miss ${MISS}` : ''}` +
      `${RULE !== 'clipped-gossip' ? ` --rule ${RULE}` : ''}\`, ` +
      `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, load ` +
      `${loadavg()
        .map((v) => v.toFixed(1))
        .join(' / ')}, ${minutes} min. MLP, SGD (momentum 0.9, zeroed each round), batch ${BATCH}, ` +
      `inner lr ${LR} unless named, rule ${RULE}; configurations: plain = constant rate, the aggregate is the ` +
      `next base; cos = the job's warm-up + cosine schedule; outer-<lr>-<μ> = DiLoCo's outer step; ` +
      `k-<n> = n peers per round; lastall = every peer in the last round. Centralized (same samples, cosine from lr ${LR} to 0): ${central.map(fmt).join(', ')} % ` +
      `(seeds ${SEEDS.join(', ')}).`,
    '',
    '| configuration | mean accuracy (all nodes, all seeds) | range | mean gap to centralized (points) | worst node’s gap (points) |',
    '| --- | ---: | --- | ---: | ---: |',
    ...rows,
    ''
  ].join('\n')
)
