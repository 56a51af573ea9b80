/**
 * Training benchmark: `npm run bench:train [-- --quick] [-- --out FILE] [-- --only a,b,c]`.
 *
 * (a) Engine overhead: `Trainer.step` against a minimal hand-written onnxruntime loop running
 *     the same train-step graph with the same session options, alternated over several
 *     rounds on the same pre-built batches; reports medians and their ratio (goal ≥ 0.95×).
 * (b) Throughput against batch size (8…512) for the MLP and the CNN through the real data
 *     pipeline (BatchLoader → Trainer), with the process's resident and peak memory.
 * (c) Accuracy of the centralised baseline on the mnist package's digits, 8,000 train /
 *     2,000 held out (seed 42), deterministic CPU mode: goals MLP ≥ 93.5 %, CNN ≥ 97 %.
 * (d) @tensorflow/tfjs-node is not installed, so there is no TensorFlow.js comparison.
 *
 * Results go to benchmarks/train.md (a Markdown section) and the console.
 */
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import * as ort from 'onnxruntime-node'
import { loadMnist, trainTestSplit } from '../src/storage/datasets/mnist.js'
import {
  BatchLoader,
  MNIST_MEAN,
  MNIST_STD,
  fromImages,
  type TensorDataset
} from '../src/training/data/index.js'
import {
  MODELS,
  compileModel,
  initParams,
  initState,
  type CompiledModel
} from '../src/training/graph/index.js'
import type { ModelSpec, OptimizerSpec } from '../src/training/graph/index.js'
import { Trainer, describeSchedule, trainLocal, type LrSchedule } from '../src/training/runtime/index.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const outIdx = args.indexOf('--out')
const outFile = outIdx >= 0 ? args[outIdx + 1]! : 'benchmarks/train.md'
const onlyIdx = args.indexOf('--only')
const only = new Set((onlyIdx >= 0 ? args[onlyIdx + 1]! : 'a,b,c').split(','))

type ModelName = 'mlp' | 'cnn'
const NORM = { mean: MNIST_MEAN, std: MNIST_STD }
const SPLIT_SEED = 42
const md: string[] = []

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (n: number, d = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
const mib = (bytes: number): string => `${fmt(bytes / 2 ** 20)} MiB`
const peakRss = (): number => process.resourceUsage().maxRSS * 1024

function log(line: string): void {
  console.log(line)
}

/** Distinct pre-built batches (x float32, y int64) of the first `samples` samples. */
function prebuilt(
  data: TensorDataset,
  batchSize: number,
  samples: number
): Array<{ x: Float32Array; y: BigInt64Array }> {
  const loader = new BatchLoader(data, { batchSize, seed: 1, dropLast: true })
  const out: Array<{ x: Float32Array; y: BigInt64Array }> = []
  for (const b of loader.epochSync(0)) {
    if (out.length * batchSize >= samples) break
    out.push({ x: b.x.slice(), y: b.y.slice() })
  }
  return out
}

// ------------------------------------------------------------------------------------------
// (a) engine overhead
// ------------------------------------------------------------------------------------------

/** The minimal loop: one session, tensors made each step, outputs fed back as the next inputs. */
class MinimalLoop {
  private feeds: Record<string, ort.Tensor> = {}
  private constructor(
    private readonly c: CompiledModel,
    private readonly session: ort.InferenceSession
  ) {}

  static async create(c: CompiledModel, threads: number): Promise<MinimalLoop> {
    // The same options the Trainer's non-deterministic CPU sessions use.
    const session = await ort.InferenceSession.create(c.trainStep, {
      executionProviders: ['cpu'],
      ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3
    })
    const m = new MinimalLoop(c, session)
    const p = initParams(c, 1)
    const s = initState(c)
    for (const t of c.params) m.feeds[t.name] = new ort.Tensor('float32', p.get(t.name)!, t.shape)
    for (const t of c.state) m.feeds[t.name] = new ort.Tensor('float32', s.get(t.name)!, t.shape)
    return m
  }

  async step(x: Float32Array, y: BigInt64Array, lr: number): Promise<number> {
    const B = y.length
    this.feeds.x = new ort.Tensor('float32', x, [B, ...this.c.spec.input])
    this.feeds.y = new ort.Tensor('int64', y, [B])
    this.feeds.lr = new ort.Tensor('float32', Float32Array.of(lr), [])
    const out = await this.session.run(this.feeds)
    for (const t of this.c.params) this.feeds[t.name] = out[`new:${t.name}`]!
    for (const t of this.c.state) this.feeds[t.name] = out[`new:${t.name}`]!
    return (out.loss!.data as Float32Array)[0]!
  }

  async close(): Promise<void> {
    await this.session.release()
  }
}

async function engine(name: ModelName, train: TensorDataset, threads: number): Promise<string> {
  const B = 64
  const samples = quick ? (name === 'mlp' ? 2048 : 512) : name === 'mlp' ? 8000 : 2048
  const rounds = quick ? 3 : 12
  const c = compileModel(MODELS[name], { type: 'sgd', momentum: 0.9 })
  const batches = prebuilt(train, B, samples)
  const n = batches.length * B
  const trainer = await Trainer.create(c, { weights: initParams(c, 1), intraOpNumThreads: threads })
  const minimal = await MinimalLoop.create(c, threads)
  const lr = 0.01
  for (const b of batches.slice(0, 5)) {
    await trainer.step(b.x, b.y, lr)
    await minimal.step(b.x, b.y, lr)
  }
  // Interleave at a fine grain (chunks of a few steps, order flipped each chunk) so that
  // both loops see the same machine load; sum the time each spends on the same samples.
  const CHUNK = 8
  const time = async (
    run: (x: Float32Array, y: BigInt64Array) => Promise<unknown>,
    from: number
  ): Promise<[number, number]> => {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    for (const b of batches.slice(from, from + CHUNK)) await run(b.x, b.y)
    const cpu = process.cpuUsage(c0)
    return [performance.now() - t0, (cpu.user + cpu.system) / 1000]
  }
  const stepTrainer = (x: Float32Array, y: BigInt64Array): Promise<unknown> => trainer.step(x, y, lr)
  const stepMinimal = (x: Float32Array, y: BigInt64Array): Promise<unknown> => minimal.step(x, y, lr)
  let totalT = 0
  let totalM = 0
  let cpuT = 0
  let cpuM = 0
  /** Minimal time / Trainer time of each adjacent pair of chunks (same samples, moments apart). */
  const pairs: number[] = []
  for (let r = 0; r < rounds; r++) {
    for (let from = 0, k = r; from < batches.length; from += CHUNK, k++) {
      const order = k % 2 === 0 ? [stepTrainer, stepMinimal] : [stepMinimal, stepTrainer]
      let chunkT = 0
      let chunkM = 0
      for (const run of order) {
        const [wall, cpu] = await time(run, from)
        if (run === stepTrainer) {
          chunkT = wall
          cpuT += cpu
        } else {
          chunkM = wall
          cpuM += cpu
        }
      }
      totalT += chunkT
      totalM += chunkM
      pairs.push(chunkM / chunkT)
    }
  }
  const ts = (n * rounds) / (totalT / 1000)
  const ms = (n * rounds) / (totalM / 1000)
  await trainer.close()
  await minimal.close()
  const ratio = ts / ms
  const cpuRatio = cpuM / cpuT
  const paired = median(pairs)
  const sorted = [...pairs].sort((a, b) => a - b)
  const q = (f: number): string => sorted[Math.floor(f * (sorted.length - 1))]!.toFixed(2)
  log(
    `(a) ${name} threads=${threads || 'auto'}: trainer ${fmt(ts)} /s, minimal ${fmt(ms)} /s, ratio ${ratio.toFixed(3)}, CPU-time ratio ${cpuRatio.toFixed(3)}, median paired ratio ${paired.toFixed(3)}`
  )
  return `| ${name} | ${threads || 'ort default'} | ${B} | ${n} × ${rounds} | ${fmt(ts)} | ${fmt(ms)} | ${ratio.toFixed(3)}× | ${cpuRatio.toFixed(3)}× | **${paired.toFixed(3)}×** (${q(0.25)}–${q(0.75)}) |`
}

// ------------------------------------------------------------------------------------------
// (b) throughput against batch size
// ------------------------------------------------------------------------------------------

async function sweep(name: ModelName, train: TensorDataset): Promise<string[]> {
  const rows: string[] = []
  const c = compileModel(MODELS[name], { type: 'sgd', momentum: 0.9 })
  const budget = quick ? (name === 'mlp' ? 2048 : 512) : name === 'mlp' ? 8000 : 2048
  const measure = async (B: number, threads: number): Promise<{ n: number; sps: number; cpuSps: number }> => {
    const trainer = await Trainer.create(c, { weights: initParams(c, 1), intraOpNumThreads: threads })
    const loader = new BatchLoader(train, { batchSize: B, seed: 3, dropLast: true })
    const steps = Math.max(2, Math.floor(budget / B))
    const gen = loader.epochs(100)
    const w1 = await gen.next()
    if (!w1.done) await trainer.step(w1.value.x, w1.value.y, 0.01) // warm-up
    let n = 0
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    for (let s = 0; s < steps; s++) {
      const b = await gen.next()
      if (b.done) break
      n += (await trainer.step(b.value.x, b.value.y, 0.01)).size
    }
    const wall = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(c0)
    await trainer.close()
    return { n, sps: n / wall, cpuSps: n / ((cpu.user + cpu.system) / 1e6) }
  }
  for (const B of [8, 16, 32, 64, 128, 256, 512]) {
    const one = await measure(B, 1)
    const auto = await measure(B, 0)
    const rss = process.memoryUsage().rss
    log(
      `(b) ${name} B=${B}: 1 thread ${fmt(one.sps)} samples/s (${fmt(one.cpuSps)} per CPU-s), default threads ${fmt(auto.sps)} samples/s (rss ${mib(rss)})`
    )
    rows.push(
      `| ${name} | ${B} | ${one.n} | ${fmt(one.sps)} | ${fmt(one.cpuSps)} | ${fmt(auto.sps)} | ${mib(rss)} |`
    )
  }
  return rows
}

// ------------------------------------------------------------------------------------------
// (c) accuracy of the centralised baseline
// ------------------------------------------------------------------------------------------

interface Recipe {
  name: ModelName
  spec: ModelSpec
  optimizer: OptimizerSpec
  lr: LrSchedule
  epochs: number
  batchSize: number
  goal: number
}

const RECIPES: Recipe[] = [
  {
    name: 'mlp',
    spec: MODELS.mlp,
    optimizer: { type: 'sgd', momentum: 0.9 },
    lr: { kind: 'cosine', lr: 0.05 },
    epochs: 10,
    batchSize: 64,
    goal: 0.935
  },
  {
    name: 'cnn',
    spec: MODELS.cnn,
    optimizer: { type: 'sgd', momentum: 0.9, weightDecay: 0.0005 },
    lr: { kind: 'cosine', lr: 0.05, warmupEpochs: 1 },
    epochs: 15,
    batchSize: 64,
    goal: 0.97
  }
]

async function accuracy(r: Recipe, train: TensorDataset, test: TensorDataset): Promise<string[]> {
  const epochs = quick ? (r.name === 'mlp' ? 3 : 1) : r.epochs
  const t0 = performance.now()
  const res = await trainLocal({
    spec: r.spec,
    optimizer: r.optimizer,
    lr: r.lr,
    epochs,
    batchSize: r.batchSize,
    seed: 1,
    train,
    test,
    deterministic: true,
    onEpoch: (e) =>
      log(
        `(c) ${r.name} epoch ${e.epoch + 1}/${epochs}: loss ${e.loss.toFixed(4)}, held-out ${(100 * e.testAccuracy!).toFixed(2)} %`
      )
  })
  const seconds = (performance.now() - t0) / 1000
  const accs = res.epochs.map((e) => e.testAccuracy!)
  const final = accs[accs.length - 1]!
  const reached = accs.findIndex((a) => a >= r.goal)
  const verdict = quick ? 'not assessed (--quick)' : final >= r.goal ? 'met' : 'MISSED'
  const opt =
    r.optimizer.type === 'sgd'
      ? `SGD, momentum ${r.optimizer.momentum ?? 0}${r.optimizer.weightDecay ? `, weight decay ${r.optimizer.weightDecay}` : ''}`
      : 'Adam'
  return [
    `| ${r.name} | ${fmt(100 * final, 2)} % | ≥ ${fmt(100 * r.goal, 1)} % ${verdict} | ${epochs} | ${reached >= 0 ? reached + 1 : '—'} | ${opt}, batch ${r.batchSize}, lr ${describeSchedule(r.lr)} (per step) | ${fmt(seconds, 1)} s |`,
    `<!-- ${r.name} held-out accuracy per epoch: ${accs.map((a) => (100 * a).toFixed(2)).join(', ')} -->`
  ]
}

// ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const require = createRequire(import.meta.url)
  const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version
  const cpus = os.cpus()
  const started = new Date()
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')
  const all = await loadMnist()
  const split = trainTestSplit(all, { seed: SPLIT_SEED })
  const data = {
    mlp: {
      train: fromImages(split.train, { ...NORM, shape: MODELS.mlp.input }),
      test: fromImages(split.test, { ...NORM, shape: MODELS.mlp.input })
    },
    cnn: {
      train: fromImages(split.train, { ...NORM, shape: MODELS.cnn.input }),
      test: fromImages(split.test, { ...NORM, shape: MODELS.cnn.input })
    }
  }

  md.push('## Training (onnxruntime-node train-step graphs)', '')
  md.push(`Command: \`npm run bench:train${quick ? ' -- --quick' : ''}\`  `)
  md.push(
    `Machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${mib(os.totalmem())} RAM, ${os.platform()} ${os.release()}  `
  )
  md.push(
    `Date: ${started.toISOString()}; Node ${process.version}; onnxruntime-node ${ortVersion}; load average at start ${load}  `
  )
  md.push('Execution provider: CPU (no CUDA provider library installed).', '')

  if (only.has('a')) {
    md.push('### (a) Engine overhead: `Trainer` vs a minimal onnxruntime loop', '')
    md.push(
      "Same train-step graph (SGD with momentum), same session options, same pre-built batches. The two loops alternate in chunks of 8 steps (order flipped every chunk) so that both see the same machine load. Samples/s is total samples over each loop's total wall time; the CPU-time ratio uses process user + system time; the paired ratio compares each chunk of the minimal loop with the Trainer's chunk on the same batches moments apart, and its median is the estimate least disturbed by bursts of other load on the machine. " +
        "The minimal loop makes new input tensors each step and feeds the output tensors back; the `Trainer` does the same plus its checks (input shape, label range, finite loss, output sizes) and keeps the previous step's tensors for rollback. Goal: ratio ≥ 0.95×.",
      ''
    )
    md.push(
      '| model | intra-op threads | batch | samples × rounds | Trainer samples/s | minimal samples/s | ratio (total wall time) | ratio (total CPU time) | median paired-chunk ratio (interquartile range) |'
    )
    md.push('|---|---|---|---|---|---|---|---|---|')
    md.push(await engine('mlp', data.mlp.train, 1))
    md.push(await engine('mlp', data.mlp.train, 0))
    md.push(await engine('cnn', data.cnn.train, 1))
    md.push('')
  }

  if (only.has('b')) {
    md.push('### (b) Throughput against batch size', '')
    md.push(
      '`BatchLoader` → `Trainer.step` (the real pipeline: gather into reused batch buffers, then the step), SGD with momentum, after one warm-up step; ' +
        "once with one intra-op thread (also as samples per CPU-second of the process, which other load on the machine disturbs less) and once with onnxruntime's default threads. " +
        "RSS is the process's resident memory after each batch size.",
      ''
    )
    md.push(
      '| model | batch | samples timed | 1 thread: samples/s | 1 thread: samples per CPU-s | default threads: samples/s | RSS |'
    )
    md.push('|---|---|---|---|---|---|---|')
    md.push(...(await sweep('mlp', data.mlp.train)))
    md.push(...(await sweep('cnn', data.cnn.train)))
    md.push('', `Peak RSS of the benchmark process so far: ${mib(peakRss())}.`, '')
  }

  if (only.has('c')) {
    md.push('### (c) Accuracy of the centralised baseline', '')
    md.push(
      `The mnist package's 10,000 digits split 8,000 / 2,000 (seed ${SPLIT_SEED}); pixels / 255 then standardised with mean ${MNIST_MEAN}, std ${MNIST_STD}; ` +
        'init seed 1; deterministic CPU mode (one thread), so these figures reproduce bit for bit on the same CPU. ' +
        'The cosine schedule decays per step to 0 at the last step of the last epoch. Model architectures are the fixed `MODELS.mlp` (784-128-10) and `MODELS.cnn`.',
      ''
    )
    md.push(
      '| model | held-out accuracy | goal | epochs | first epoch at goal | optimizer and schedule | wall time |'
    )
    md.push('|---|---|---|---|---|---|---|')
    const notes: string[] = []
    for (const r of RECIPES) {
      const [row, note] = await accuracy(r, data[r.name].train, data[r.name].test)
      md.push(row!)
      notes.push(note!)
    }
    md.push('', ...notes, '')
  }

  md.push('### (d) TensorFlow.js', '')
  md.push(
    '`@tensorflow/tfjs-node` is not installed in this project, so no TensorFlow.js comparison was run.',
    ''
  )
  md.push(`Peak RSS of the whole benchmark: ${mib(peakRss())}.`, '')

  writeFileSync(outFile, md.join('\n'))
  log(`wrote ${outFile}`)
}

await main()
