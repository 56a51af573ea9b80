/**
 * The GPU check's benchmark (bundled by scripts/gpu-check.ts; runs with plain `tsx` here too):
 * for the MLP and the CNN, training speed on each execution provider (samples/s at batch 64)
 * against the deterministic one-thread CPU and all CPU threads, and the divergence of a round
 * trained on each provider from the same round on the deterministic CPU (relative distance and
 * cosine of the update, H = 10, 40, 100) — the honest divergence that calibrates
 * src/training/receipts/tolerance.ts — and whether it stays inside the provider's bound.
 *
 * Data are synthetic (seeded Gaussian inputs labelled by a random linear teacher), so that the
 * bundle carries no dataset. Writes JSON to `--out FILE` (default gpu-check.json) and a summary
 * to stdout. Environment: GPU_CHECK_DEVICES (cpu-parallel,webgpu,cuda), GPU_CHECK_STEPS (200),
 * GPU_CHECK_H (10,40,100), GPU_CHECK_MODELS (mlp,cnn).
 */
import { writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Rng } from '../src/common/index.js'
import { fromTensors, type TensorDataset } from '../src/training/data/index.js'
import {
  MODELS,
  compileModel,
  initParams,
  initState,
  type CompiledModel
} from '../src/training/graph/index.js'
import { compareUpdates, toleranceFor, withinTolerance } from '../src/training/receipts/index.js'
import { Trainer, probeProviders, type Device } from '../src/training/runtime/index.js'
import { trainRound } from '../src/training/swarm/round.js'

type Weights = Map<string, Float32Array>
const env = process.env
const list = (v: string | undefined, d: string): string[] =>
  (v ?? d)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
const DEVICES = list(env.GPU_CHECK_DEVICES, 'cpu-parallel,webgpu,cuda')
const MODEL_NAMES = list(env.GPU_CHECK_MODELS, 'mlp,cnn') as Array<'mlp' | 'cnn'>
const HS = list(env.GPU_CHECK_H, '10,40,100').map(Number)
const STEPS = Number(env.GPU_CHECK_STEPS ?? 200)
const BATCH = 64
const LR = 0.05
const outAt = process.argv.indexOf('--out')
const OUT = outAt >= 0 ? process.argv[outAt + 1]! : 'gpu-check.json'

/** Seeded inputs labelled by a random linear teacher (learnable, so the updates are real). */
function synthetic(count: number, shape: readonly number[], seed: number): TensorDataset {
  const rng = new Rng(seed)
  const size = shape.reduce((a, b) => a * b, 1)
  const teacher = new Float32Array(size * 10).map(() => rng.gaussian())
  const x = new Float32Array(count * size).map(() => rng.gaussian())
  const y = new Uint8Array(count)
  for (let n = 0; n < count; n++) {
    let best = 0
    let bestScore = -Infinity
    for (let c = 0; c < 10; c++) {
      let s = 0
      for (let i = 0; i < size; i++) s += x[n * size + i]! * teacher[i * 10 + c]!
      if (s > bestScore) {
        bestScore = s
        best = c
      }
    }
    y[n] = best
  }
  return fromTensors(x, y, [...shape])
}

async function round(
  t: Trainer,
  m: CompiledModel,
  base: Weights,
  data: TensorDataset,
  H: number
): Promise<Weights> {
  t.setWeights(base)
  await trainRound(t, data, { H, batchSize: BATCH, lr: LR, seed: 12345, zeroState: initState(m) })
  return t.getWeights()
}

async function speed(t: Trainer, m: CompiledModel, base: Weights, data: TensorDataset): Promise<number> {
  await round(t, m, base, data, 5) // warm-up: kernels compiled, buffers allocated
  t.setWeights(base)
  const t0 = performance.now()
  const r = await trainRound(t, data, {
    H: STEPS,
    batchSize: BATCH,
    lr: LR,
    seed: 7,
    zeroState: initState(m)
  })
  return r.samples / ((performance.now() - t0) / 1000)
}

interface DeviceResult {
  device: string
  ep?: string
  available: boolean
  detail?: string
  samplesPerSecond?: number
  speedupVsOneThread?: number
  divergence?: Array<{ H: number; relDistance: number; cosine: number; withinBound: boolean | null }>
}

async function main(): Promise<void> {
  const started = new Date().toISOString()
  const probes = await probeProviders()
  const results: Array<{ model: string; oneThreadSamplesPerSecond: number; devices: DeviceResult[] }> = []
  for (const name of MODEL_NAMES) {
    const spec = MODELS[name]
    const model = compileModel(spec, { type: 'sgd', momentum: 0.9 })
    const data = synthetic(2048, spec.input, 3)
    const base = initParams(model, 1)
    const det = await Trainer.create(model, { weights: base, deterministic: true })
    const refs = new Map<number, Weights>()
    for (const H of HS) refs.set(H, await round(det, model, base, data, H))
    const oneThread = await speed(det, model, base, data)
    await det.close()
    console.log(`${name}: deterministic CPU (1 thread) ${oneThread.toFixed(0)} samples/s`)
    const devices: DeviceResult[] = []
    for (const device of DEVICES) {
      const parallel = device === 'cpu-parallel'
      let t: Trainer
      try {
        t = await Trainer.create(model, {
          weights: base,
          device: (parallel ? 'cpu' : device) as Device,
          ...(parallel ? { intraOpNumThreads: availableParallelism() } : {})
        })
      } catch (err) {
        const detail = (err as Error).message.split('\n')[0]!
        devices.push({ device, available: false, detail })
        console.log(`${name} on ${device}: unavailable: ${detail}`)
        continue
      }
      const ep = parallel ? 'cpu-parallel' : t.executionProvider
      const sps = await speed(t, model, base, data)
      const bound = toleranceFor(ep)
      const divergence = []
      for (const H of HS) {
        const c = compareUpdates(base, await round(t, model, base, data, H), refs.get(H)!)
        if (typeof c === 'string') throw new Error(c)
        divergence.push({
          H,
          relDistance: c.relDistance,
          cosine: c.cosine,
          withinBound: bound === undefined ? null : withinTolerance(c, bound)
        })
      }
      await t.close()
      devices.push({
        device,
        ep,
        available: true,
        samplesPerSecond: sps,
        speedupVsOneThread: sps / oneThread,
        divergence
      })
      console.log(
        `${name} on ${device} (${ep}): ${sps.toFixed(0)} samples/s (${(sps / oneThread).toFixed(2)}× one CPU thread); ` +
          divergence
            .map((d) => `H=${d.H} rel ${d.relDistance.toExponential(1)} cos ${d.cosine.toFixed(6)}`)
            .join(', ')
      )
    }
    results.push({ model: name, oneThreadSamplesPerSecond: oneThread, devices })
  }
  const report = {
    started,
    finished: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model.trim(), threads: availableParallelism(), node: process.version },
    config: { steps: STEPS, batch: BATCH, lr: LR, H: HS },
    providers: probes,
    results
  }
  writeFileSync(OUT, JSON.stringify(report, null, 2) + '\n')
  console.log(`written to ${OUT}`)
}

await main()
