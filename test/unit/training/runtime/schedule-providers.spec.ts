import assert from 'node:assert/strict'
import {
  describeSchedule,
  lrAt,
  planProvider,
  sessionOptions,
  validateSchedule,
  type LrSchedule
} from '../../../../src/training/runtime/index.js'

const at = (epoch: number, step = 0, stepsPerEpoch = 10, epochs = 10): Parameters<typeof lrAt>[1] => ({
  epoch,
  step,
  stepsPerEpoch,
  epochs
})

describe('training/runtime: learning-rate schedules', () => {
  it('constant, step and piecewise', () => {
    assert.equal(lrAt(0.1, at(5)), 0.1)
    assert.equal(lrAt({ kind: 'constant', lr: 0.2 }, at(3)), 0.2)
    const step: LrSchedule = { kind: 'step', lr: 0.1, gamma: 0.5, every: 2 }
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((e) => lrAt(step, at(e))),
      [0.1, 0.1, 0.05, 0.05, 0.025]
    )
    const pw: LrSchedule = { kind: 'piecewise', boundaries: [2, 5], values: [0.1, 0.01, 0.001] }
    assert.deepEqual(
      [0, 1, 2, 4, 5, 9].map((e) => lrAt(pw, at(e))),
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )
  })

  it('cosine warms up linearly, then decays to minLr at the last step', () => {
    const s: LrSchedule = { kind: 'cosine', lr: 1, minLr: 0.1, warmupEpochs: 1 }
    assert.equal(lrAt(s, at(0, 0)), 0.1)
    assert.equal(lrAt(s, at(0, 9)), 1)
    assert.equal(lrAt(s, at(1, 0)), 1)
    assert.ok(Math.abs(lrAt(s, at(9, 9)) - 0.1) < 1e-12)
    const mid = lrAt(s, at(5, 5))
    assert.ok(mid > 0.1 && mid < 1)
    // monotone after warm-up
    let prev = Infinity
    for (let e = 1; e < 10; e++) {
      for (let k = 0; k < 10; k++) {
        const v = lrAt(s, at(e, k))
        assert.ok(v <= prev + 1e-12)
        prev = v
      }
    }
  })

  it('validates and describes schedules', () => {
    assert.throws(() => validateSchedule(-1), { code: 'INVALID_TRAINER_OPTIONS' })
    assert.throws(() => validateSchedule({ kind: 'step', lr: 0.1, gamma: 0.5, every: 0 }), {
      code: 'INVALID_TRAINER_OPTIONS'
    })
    assert.throws(() => validateSchedule({ kind: 'piecewise', boundaries: [3, 2], values: [1, 2, 3] }), {
      code: 'INVALID_TRAINER_OPTIONS'
    })
    assert.throws(() => validateSchedule({ kind: 'nope' } as unknown as LrSchedule), {
      code: 'INVALID_TRAINER_OPTIONS'
    })
    assert.equal(
      describeSchedule({ kind: 'step', lr: 0.1, gamma: 0.5, every: 2 }),
      '0.1 × 0.5 every 2 epoch(s)'
    )
  })
})

describe('training/runtime: provider plans', () => {
  it('auto uses CUDA only when installed, falling back to CPU; explicit devices do not fall back', () => {
    assert.deepEqual(planProvider({ device: 'auto' }, false).provider, 'cpu')
    const auto = planProvider({}, true)
    assert.equal(auto.provider, 'cuda')
    assert.equal(auto.fallbackToCpu, true)
    const cuda = planProvider({ device: 'cuda' }, true)
    assert.equal(cuda.fallbackToCpu, false)
    assert.equal(planProvider({ device: 'webgpu' }, false).provider, 'webgpu')
    assert.equal(planProvider({ device: 'auto', deterministic: true }, true).provider, 'cpu')
    assert.throws(() => planProvider({ device: 'webgpu', deterministic: true }, true), {
      code: 'INVALID_TRAINER_OPTIONS'
    })
  })

  it('deterministic sessions: CPU, one thread each, sequential, deterministic compute', () => {
    const o = sessionOptions('cpu', { deterministic: true, intraOpNumThreads: 8 })
    assert.deepEqual(o.executionProviders, ['cpu'])
    assert.equal(o.intraOpNumThreads, 1)
    assert.equal(o.interOpNumThreads, 1)
    assert.equal(o.executionMode, 'sequential')
    assert.deepEqual(o.extra, { session: { use_deterministic_compute: '1' } })
    const n = sessionOptions('cuda', { intraOpNumThreads: 3 })
    assert.deepEqual(n.executionProviders, ['cuda'])
    assert.equal(n.intraOpNumThreads, 3)
    assert.equal(sessionOptions('cpu', {}).intraOpNumThreads, undefined)
  })
})
