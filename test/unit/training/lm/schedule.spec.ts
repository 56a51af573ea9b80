/**
 * A round's share of the warm-up + cosine schedule: its rates are those of the whole run at the
 * round's steps, and `trainLmRound` trains at them (bit for bit as a loop of steps at those rates).
 */
import assert from 'node:assert/strict'
import {
  LmOptionsError,
  LmTrainer,
  compileGpt,
  defaultWarmupSteps,
  initGptParams,
  roundLr,
  trainLmRound,
  warmupCosineLr,
  type RoundSchedule
} from '../../../../src/training/lm/index.js'
import { WindowSampler, textTokens } from '../../../../src/training/text/index.js'
import { TINY } from './tiny.js'

describe('training/lm round schedule', function () {
  this.timeout(60_000)

  it('the default warm-up is min(100, 5 % of the steps), rounded', () => {
    assert.deepEqual([5, 10, 60, 1000, 2000, 100_000].map(defaultWarmupSteps), [0, 1, 3, 50, 100, 100])
  })

  it("a round's rates are the run's rates at round × H + i; rounds together make the whole schedule", () => {
    const run = { lr: 1, minLr: 0.1, warmupSteps: 4, totalSteps: 13 }
    const H = 4
    const rates: number[] = []
    for (let round = 0; round < 4; round++) {
      const s: RoundSchedule = { step: round * H, warmupSteps: 4, totalSteps: 13, minLr: 0.1 }
      for (let i = 0; i < H; i++) rates.push(roundLr(1, s, i))
    }
    assert.deepEqual(
      rates,
      Array.from({ length: 16 }, (_, t) => warmupCosineLr(run, t))
    )
    // Warm-up 0.25 … 1, the peak at step 4, half-way at step 8, the floor from step 12 on.
    assert.deepEqual(rates.slice(0, 5), [0.25, 0.5, 0.75, 1, 1])
    assert.ok(Math.abs(rates[8]! - 0.55) < 1e-12)
    for (const r of rates.slice(12)) assert.ok(Math.abs(r - 0.1) < 1e-12)
    // Without a schedule: the rate itself.
    assert.equal(roundLr(0.3, undefined, 7), 0.3)
    assert.throws(() => roundLr(1, { step: -1, warmupSteps: 0, totalSteps: 4, minLr: 0 }, 0), {
      code: 'LM_OPTIONS_INVALID'
    })
    assert.throws(() => roundLr(1, { step: 0, warmupSteps: 0.5, totalSteps: 4, minLr: 0 }, 0), LmOptionsError)
  })

  it('trainLmRound trains at the schedule’s rates: bit for bit a loop of steps at them, not at the constant rate', async () => {
    const model = compileGpt(TINY)
    const tokens = textTokens('Call me Ishmael. Some years ago, never mind how long precisely. '.repeat(8))
    const w0 = initGptParams(model, 5)
    const schedule: RoundSchedule = { step: 6, warmupSteps: 10, totalSteps: 30, minLr: 1e-3 }
    const trainer = await LmTrainer.create(model, { weights: w0, deterministic: true })
    try {
      const opts = { H: 5, batchSize: 4, lr: 1e-2, seed: 9 }
      const scheduled = await trainLmRound(trainer, tokens, { ...opts, schedule })
      assert.equal(scheduled.steps, 5)
      const a = trainer.weights()

      trainer.setWeights(w0)
      trainer.setState()
      const sampler = new WindowSampler(tokens, { batchSize: 4, context: TINY.context, seed: 9 })
      for (let i = 0; i < 5; i++) {
        await trainer.step(
          sampler.next(),
          warmupCosineLr({ lr: 1e-2, minLr: 1e-3, warmupSteps: 10, totalSteps: 30 }, 6 + i)
        )
      }
      const b = trainer.weights()

      trainer.setWeights(w0)
      await trainLmRound(trainer, tokens, opts)
      const constant = trainer.weights()
      for (const [name, v] of a) {
        assert.deepEqual(v, b.get(name), `${name}: the scheduled round is the loop at the schedule's rates`)
      }
      assert.ok(
        [...a].some(([name, v]) => v.some((x, i) => x !== constant.get(name)![i])),
        'the constant rate gives other weights'
      )
      trainer.setWeights(w0)
      await assert.rejects(
        trainLmRound(trainer, tokens, { ...opts, schedule: { ...schedule, totalSteps: 0 } }),
        { code: 'LM_OPTIONS_INVALID' }
      )
      assert.equal(trainer.steps, 15, 'an invalid schedule fails before any step')
    } finally {
      await trainer.close()
    }
  })
})
