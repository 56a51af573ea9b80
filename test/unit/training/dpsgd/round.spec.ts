import assert from 'node:assert/strict'
import { Rng } from '../../../../src/common/rng.js'
import {
  DPSGD_DEFAULTS,
  DpsgdRounds,
  LEGACY_NOISE_SAMPLER,
  NOISE_SAMPLER,
  NOISE_SAMPLERS,
  checkDpsgdParameters,
  compileDpsgdModel,
  noiseCommitment,
  noiseSamplerOf,
  noiseSeedOf,
  planDpsgd,
  trainDpsgdRound,
  type DpsgdRoundOptions,
  type NoiseSampler
} from '../../../../src/training/dpsgd/index.js'
import { initParams, initState, type ModelSpec } from '../../../../src/training/graph/index.js'
import { RdpAccountant, dpsgdSteps, solveNoiseMultiplier } from '../../../../src/training/privacy/index.js'
import { Trainer } from '../../../../src/training/runtime/index.js'
import { parseJobSpec } from '../../../../src/training/swarm/index.js'

const SPEC: ModelSpec = {
  name: 'tiny',
  input: [8],
  layers: [{ type: 'dense', units: 6 }, { type: 'relu' }, { type: 'dense', units: 3 }],
  classes: 3
}
const OPT = { type: 'sgd', momentum: 0.9 } as const

const code = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    return `${(err as { code?: string }).code}:${String((err as { fields?: { parameter?: string } }).fields?.parameter ?? '')}`
  }
  return 'none'
}

describe('training/dpsgd plan and parameters', () => {
  const base = { records: 200, batchSize: 20, H: 10, rounds: 5 }
  it('refuses C or σ zero, negative or non-finite and q outside (0, 1] with INVALID_PRIVACY_PARAMETER', () => {
    for (const clipNorm of [0, -1, NaN, Infinity]) {
      assert.equal(
        code(() => checkDpsgdParameters({ clipNorm, noiseMultiplier: 1, sampleRate: 0.1 })),
        'INVALID_PRIVACY_PARAMETER:clipNorm'
      )
    }
    for (const noiseMultiplier of [0, -1, NaN, Infinity]) {
      assert.equal(
        code(() => planDpsgd({ mode: 'dp-sgd', clipNorm: 1, noiseMultiplier, delta: 1e-5 }, base)),
        'INVALID_PRIVACY_PARAMETER:noiseMultiplier'
      )
    }
    for (const sampleRate of [0, -0.1, 1.5, NaN]) {
      assert.equal(
        code(() => checkDpsgdParameters({ clipNorm: 1, noiseMultiplier: 1, sampleRate })),
        'INVALID_PRIVACY_PARAMETER:sampleRate'
      )
    }
    assert.equal(
      code(() =>
        planDpsgd({ mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, targetEpsilon: 3, delta: 1e-5 }, base)
      ),
      'INVALID_PRIVACY_PARAMETER:noiseMultiplier'
    )
    assert.equal(
      code(() => planDpsgd({ mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, delta: 0 }, base)),
      'INVALID_PRIVACY_PARAMETER:delta'
    )
  })

  it('the recommended defaults plan q = 0.256 and σ ≈ 5.44 for ε = 3 on 2,000 records (as in BENCHMARKS.md)', () => {
    const { clipNorm, batchSize, H, rounds } = DPSGD_DEFAULTS
    const plan = planDpsgd(
      { mode: 'dp-sgd', clipNorm, targetEpsilon: 3, delta: 1e-5 },
      { records: 2000, batchSize, H, rounds }
    )
    assert.equal(plan.sampleRate, 0.256)
    assert.equal(plan.plannedSteps, 192)
    assert.ok(Math.abs(plan.noiseMultiplier - 5.438) < 0.001, String(plan.noiseMultiplier))
  })

  it('refuses an unreachable target ε with TARGET_EPSILON_UNREACHABLE', () => {
    assert.equal(
      code(() =>
        planDpsgd(
          { mode: 'dp-sgd', clipNorm: 1, targetEpsilon: 1e-4, delta: 1e-5 },
          { ...base, records: 20, rounds: 100_000 }
        )
      ),
      'TARGET_EPSILON_UNREACHABLE:'
    )
  })

  it('solves σ so that the planned steps spend at most (and about) the target', () => {
    const plan = planDpsgd({ mode: 'dp-sgd', clipNorm: 1, targetEpsilon: 2, delta: 1e-5 }, base)
    assert.equal(plan.sampleRate, 0.1)
    assert.equal(plan.plannedSteps, 50)
    assert.ok(plan.epsilon <= 2 && plan.epsilon > 1.99, String(plan.epsilon))
    const sigma = solveNoiseMultiplier({ sampleRate: 0.1, steps: 50, targetEpsilon: 2, delta: 1e-5 })
    assert.equal(sigma, plan.noiseMultiplier)
    const acc = new RdpAccountant()
    acc.step(dpsgdSteps({ sampleRate: 0.1, noiseMultiplier: sigma * 0.999, steps: 50 }))
    assert.ok(acc.getEpsilon(1e-5) > 2, 'a smaller σ would overshoot')
  })

  it('the job schema takes dp-sgd with exactly one of noiseMultiplier and targetEpsilon', () => {
    const job = {
      name: 'j',
      model: SPEC,
      optimizer: OPT,
      hyper: { lr: 0.1, batchSize: 8, H: 2, k: 0, rounds: 2 },
      dataset: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
      aggregation: 'mean',
      compression: 'none',
      maxNorm: 100,
      seed: 1,
      creator: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
    }
    const ok = parseJobSpec({
      ...job,
      privacy: { mode: 'dp-sgd', clipNorm: 1, targetEpsilon: 3, delta: 1e-5 }
    })
    assert.equal(ok.privacy?.mode, 'dp-sgd')
    assert.equal(
      parseJobSpec({ ...job, privacy: { clipNorm: 1, noiseMultiplier: 0.5 } }).privacy?.noiseMultiplier,
      0.5
    )
    for (const privacy of [
      { mode: 'dp-sgd', clipNorm: 1, delta: 1e-5 },
      { mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, targetEpsilon: 3, delta: 1e-5 },
      { mode: 'dp-sgd', clipNorm: 0, noiseMultiplier: 1, delta: 1e-5 },
      { mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, delta: 2 }
    ]) {
      assert.equal(
        code(() => parseJobSpec({ ...job, privacy })),
        'JOB_INVALID:'
      )
    }
  })
})

describe('training/dpsgd round', () => {
  const rng = new Rng(4)
  const N = 64
  const data = {
    x: Float32Array.from({ length: N * 8 }, () => rng.gaussian()),
    y: Uint8Array.from({ length: N }, () => rng.int(3)),
    count: N,
    sampleShape: [8]
  }
  const model = compileDpsgdModel(SPEC, OPT)
  const run = async (noiseSeed: number) => {
    const trainer = await Trainer.create(model, { weights: initParams(model, 1), deterministic: true })
    try {
      const r = await trainDpsgdRound(trainer, data, {
        H: 12,
        sampleRate: 0.25,
        lr: 0.1,
        clipNorm: 1,
        noiseMultiplier: 1,
        seed: 9,
        noiseSeed,
        noiseSize: model.noiseSize,
        zeroState: initState(model)
      })
      return { r, w: trainer.getWeights() }
    } finally {
      await trainer.close()
    }
  }

  it('is bit-reproducible from its seeds, and the noise seed changes the result', async () => {
    const a = await run(5)
    const b = await run(5)
    const c = await run(6)
    for (const [name, w] of a.w) assert.deepEqual(b.w.get(name), w)
    assert.notDeepEqual(c.w.get('dense0.weight'), a.w.get('dense0.weight'))
    assert.deepEqual(a.r.batchSizes, c.r.batchSizes, 'the sampling does not depend on the noise seed')
    assert.equal(a.r.steps, 12)
    assert.equal(a.r.samples, 12 * 16, 'samples are the expected count, not the realised one')
    const mean = a.r.batchSizes.reduce((x, y) => x + y, 0) / 12
    assert.ok(mean > 8 && mean < 24, `Poisson(16) batches, mean ${mean}`)
    assert.ok(new Set(a.r.batchSizes).size > 1, 'batch sizes vary')
  })
})

describe('training/dpsgd noise sampler', () => {
  const rng = new Rng(11)
  const N = 48
  const data = {
    x: Float32Array.from({ length: N * 8 }, () => rng.gaussian()),
    y: Uint8Array.from({ length: N }, () => rng.int(3)),
    count: N,
    sampleShape: [8]
  }
  const model = compileDpsgdModel(SPEC, OPT)
  const base = {
    H: 6,
    sampleRate: 0.25,
    lr: 0.1,
    clipNorm: 1,
    noiseMultiplier: 2,
    seed: 3,
    noiseSeed: 17,
    noiseSize: model.noiseSize,
    zeroState: initState(model)
  }
  const run = async (opts: Partial<DpsgdRoundOptions>) => {
    const trainer = await Trainer.create(model, { weights: initParams(model, 1), deterministic: true })
    try {
      await trainDpsgdRound(trainer, data, { ...base, ...opts })
      return trainer.getWeights()
    } finally {
      await trainer.close()
    }
  }

  it('draws with the ziggurat by default; the polar sampler (older rounds) gives other, reproducible weights', async () => {
    assert.equal(NOISE_SAMPLER, 'ziggurat-sfc32')
    const byDefault = await run({})
    const zig = await run({ noiseSampler: 'ziggurat-sfc32' })
    const polar = await run({ noiseSampler: 'polar-sfc32' })
    const polar2 = await run({ noiseSampler: 'polar-sfc32' })
    for (const [name, w] of byDefault) {
      assert.deepEqual(zig.get(name), w)
      assert.deepEqual(polar2.get(name), polar.get(name))
    }
    assert.notDeepEqual(polar.get('dense0.weight'), byDefault.get('dense0.weight'))
  })

  it('refuses an unknown sampler before any step with INVALID_PRIVACY_PARAMETER', async () => {
    const trainer = await Trainer.create(model, { weights: initParams(model, 1), deterministic: true })
    try {
      const before = trainer.getWeights()
      await assert.rejects(
        trainDpsgdRound(trainer, data, { ...base, noiseSampler: 'box-muller' as NoiseSampler }),
        (err: { code?: string; fields?: { parameter?: string } }) =>
          err.code === 'INVALID_PRIVACY_PARAMETER' && err.fields?.parameter === 'noiseSampler'
      )
      for (const [name, w] of trainer.getWeights()) assert.deepEqual(w, before.get(name))
    } finally {
      await trainer.close()
    }
  })

  it('a receipt names its sampler, and a verifier given the round key re-runs the round bit for bit', async () => {
    const rounds = new DpsgdRounds({
      privacy: { mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1.5, delta: 1e-5 },
      model: SPEC,
      optimizer: OPT,
      jobId: 'job-1',
      records: N,
      batchSize: 12,
      H: 5,
      rounds: 4,
      secret: 99
    })
    const hyper = rounds.receiptHyper(2)
    assert.equal(hyper.sampler, NOISE_SAMPLER)
    assert.equal(hyper.noise, noiseCommitment(rounds.noiseKey(2)))
    const trainer = await Trainer.create(rounds.model, {
      weights: initParams(rounds.model, 1),
      deterministic: true
    })
    let trained: Map<string, Float32Array>
    try {
      await rounds.run(trainer, data, {
        round: 2,
        seed: 8,
        lr: 0.1,
        H: 5,
        zeroState: initState(rounds.model)
      })
      trained = trainer.getWeights()
    } finally {
      await trainer.close()
    }
    // The verifier: the revealed key (checked against the commitment), the receipt's q, σ, C and sampler.
    const key = rounds.noiseKey(2)
    assert.equal(noiseCommitment(key), hyper.noise)
    const sampler = noiseSamplerOf(JSON.parse(JSON.stringify(hyper)) as { sampler?: unknown })
    assert.equal(sampler, 'ziggurat-sfc32')
    const verifier = await Trainer.create(rounds.model, {
      weights: initParams(rounds.model, 1),
      deterministic: true
    })
    try {
      await trainDpsgdRound(verifier, data, {
        H: 5,
        sampleRate: hyper.sampleRate,
        lr: 0.1,
        clipNorm: hyper.clipNorm,
        noiseMultiplier: hyper.noiseMultiplier,
        seed: 8,
        noiseSeed: noiseSeedOf(key),
        noiseSize: rounds.model.noiseSize,
        noiseSampler: sampler!,
        zeroState: initState(rounds.model)
      })
      for (const [name, w] of verifier.getWeights()) assert.deepEqual(w, trained.get(name), name)
    } finally {
      await verifier.close()
    }
  })

  it('reads the sampler of older receipts (none named) as polar, and an unknown name as none', () => {
    assert.equal(noiseSamplerOf({}), LEGACY_NOISE_SAMPLER)
    assert.equal(LEGACY_NOISE_SAMPLER, 'polar-sfc32')
    assert.equal(noiseSamplerOf({ sampler: 'polar-sfc32' }), 'polar-sfc32')
    assert.equal(noiseSamplerOf({ sampler: 'ziggurat-v9' }), undefined)
    assert.deepEqual([...NOISE_SAMPLERS].sort(), ['polar-sfc32', 'ziggurat-sfc32'])
  })
})
