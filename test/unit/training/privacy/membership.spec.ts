import assert from 'node:assert/strict'
import { hasCode } from '../../../../src/common/errors.js'
import { Rng } from '../../../../src/common/rng.js'
import { fromTensors, type TensorDataset } from '../../../../src/training/data/index.js'
import { compileModel, initParams, type ModelSpec } from '../../../../src/training/graph/index.js'
import { MembershipInputError, lossThresholdAdvantage } from '../../../../src/training/privacy/index.js'
import { Trainer, perSampleLoss, perSampleLossOf } from '../../../../src/training/runtime/index.js'

describe('lossThresholdAdvantage', () => {
  it('is 0 for identical loss samples (ties are classified together)', () => {
    const losses = [0.3, 0.1, 0.7, 0.1, 2.5]
    assert.deepEqual(lossThresholdAdvantage(losses, [...losses].reverse()), {
      advantage: 0,
      threshold: -Infinity,
      tpr: 0,
      fpr: 0
    })
    assert.equal(lossThresholdAdvantage([1], [1]).advantage, 0)
    assert.equal(lossThresholdAdvantage(new Float64Array([2, 2, 2]), new Float32Array([2])).advantage, 0)
  })

  it('is 1 when every member loss is below every non-member loss', () => {
    assert.deepEqual(lossThresholdAdvantage([0.05, 0.2, 0.1], [0.3, 1.2, 0.25, 4]), {
      advantage: 1,
      threshold: 0.2,
      tpr: 1,
      fpr: 0
    })
    // Reversed (members worse than non-members): the "member when loss ≤ τ" attack gains nothing.
    assert.equal(lossThresholdAdvantage([3, 4], [1, 2]).advantage, 0)
  })

  it('finds the best threshold of a mixed case', () => {
    // merged: 0.1 m, 0.2 n, 0.35 m, 0.4 m, 0.5 n, 0.6 n, 0.8 m, 0.9 n
    // TPR − FPR after each: .25, 0, .25, .5, .25, 0, .25, 0 → best .5 at τ = 0.4 (TPR .75, FPR .25)
    assert.deepEqual(lossThresholdAdvantage([0.1, 0.4, 0.35, 0.8], [0.2, 0.5, 0.9, 0.6]), {
      advantage: 0.5,
      threshold: 0.4,
      tpr: 0.75,
      fpr: 0.25
    })
  })

  it('handles ties across the sets and unequal sizes', () => {
    // τ = 1: 2/3 − 1/2 = 1/6; τ = 2: 1 − 1/2 = 1/2; τ = 3: 1 − 1 = 0.
    const r = lossThresholdAdvantage([1, 2, 1], [3, 1])
    assert.equal(r.threshold, 2)
    assert.equal(r.tpr, 1)
    assert.equal(r.fpr, 0.5)
    assert.equal(r.advantage, 0.5)
    // The smallest threshold wins among equal advantages: τ = 1 and τ = 3 both give 1/2 here.
    const s = lossThresholdAdvantage([1, 3], [2, 4])
    assert.deepEqual(s, { advantage: 0.5, threshold: 1, tpr: 0.5, fpr: 0 })
  })

  it('agrees with a brute-force scan over every threshold', () => {
    const rng = new Rng(5)
    for (let trial = 0; trial < 20; trial++) {
      const m = Array.from({ length: 1 + rng.int(40) }, () => rng.int(21) / 10)
      const n = Array.from({ length: 1 + rng.int(40) }, () => rng.int(26) / 10)
      let best = 0
      for (const tau of [...m, ...n]) {
        const d = m.filter((v) => v <= tau).length / m.length - n.filter((v) => v <= tau).length / n.length
        if (d > best) best = d
      }
      const got = lossThresholdAdvantage(m, n)
      assert.ok(Math.abs(got.advantage - best) < 1e-12, `trial ${trial}: ${got.advantage} vs ${best}`)
      assert.ok(Math.abs(got.tpr - got.fpr - got.advantage) < 1e-12)
    }
  })

  it('refuses empty or non-finite inputs with INVALID_MEMBERSHIP_INPUT', () => {
    const refuses = (fn: () => unknown, set: 'members' | 'nonMembers', index?: number): void =>
      assert.throws(fn, (err: unknown) => {
        assert.ok(err instanceof MembershipInputError)
        assert.ok(hasCode(err, 'INVALID_MEMBERSHIP_INPUT'))
        assert.equal(err.fields.set, set)
        assert.equal(err.fields.index, index)
        return true
      })
    refuses(() => lossThresholdAdvantage([], [1]), 'members')
    refuses(() => lossThresholdAdvantage([1], new Float64Array(0)), 'nonMembers')
    refuses(() => lossThresholdAdvantage([1, NaN], [1]), 'members', 1)
    refuses(() => lossThresholdAdvantage([1], [0.5, 2, Infinity]), 'nonMembers', 2)
    refuses(() => lossThresholdAdvantage([-Infinity], [1]), 'members', 0)
    refuses(() => lossThresholdAdvantage(null as unknown as number[], [1]), 'members')
    refuses(() => lossThresholdAdvantage(['1'] as unknown as number[], [1]), 'members', 0)
  })
})

describe('perSampleLoss', function () {
  this.timeout(30_000)
  const spec: ModelSpec = {
    name: 'small',
    input: [12],
    layers: [{ type: 'dense', units: 8 }, { type: 'relu' }, { type: 'dense', units: 4 }],
    classes: 4
  }
  const compiled = compileModel(spec, { type: 'sgd', momentum: 0.9 })

  function dataset(count: number, seed: number): TensorDataset {
    const rng = new Rng(seed)
    const y = new Uint8Array(count)
    const x = new Float32Array(count * 12)
    for (let i = 0; i < count; i++) {
      y[i] = rng.int(4)
      for (let j = 0; j < 12; j++) x[i * 12 + j] = rng.gaussian() + (j % 4 === y[i] ? 1.5 : 0)
    }
    return fromTensors(x, y, [12])
  }

  let trainer: Trainer
  const train = dataset(96, 1)
  const test = dataset(130, 2)

  before(async () => {
    trainer = await Trainer.create(compiled, { weights: initParams(compiled, 3), deterministic: true })
    for (let s = 0; s < 6; s++) {
      const at = (s % 3) * 32
      await trainer.step(train.x.slice(at * 12, (at + 32) * 12), train.y.slice(at, at + 32), 0.1)
    }
  })

  after(async () => {
    await trainer.close()
  })

  const mean = (a: Float64Array): number => {
    let s = 0
    for (let i = 0; i < a.length; i++) s += a[i]!
    return s / a.length
  }

  it("averages to Trainer.evaluate's loss, for any batch size", async () => {
    for (const batchSize of [500, 32, 7]) {
      const losses = await perSampleLoss(trainer, test, { batchSize })
      assert.equal(losses.length, test.count)
      const ev = await trainer.evaluate(test, batchSize)
      assert.ok(Math.abs(mean(losses) - ev.loss) <= 1e-12 * ev.loss, `batch ${batchSize}`)
      if (batchSize === 500) assert.equal(mean(losses), ev.loss) // same batches: the same sum, term by term
      for (const l of losses) assert.ok(Number.isFinite(l) && l >= 0)
      const spread = Math.max(...losses) - Math.min(...losses)
      assert.ok(spread > 0.1, 'the losses differ from sample to sample')
    }
  })

  it('gives one loss per sample: a one-sample set has the loss of its sample', async () => {
    const all = await perSampleLoss(trainer, test)
    for (const i of [0, 57, 129]) {
      const one = fromTensors(test.x.slice(i * 12, (i + 1) * 12), test.y.slice(i, i + 1), [12])
      const [l] = await perSampleLoss(trainer, one)
      assert.ok(Math.abs(l! - all[i]!) < 1e-6)
      assert.ok(Math.abs(l! - (await trainer.evaluate(one)).loss) < 1e-12)
    }
  })

  it('perSampleLossOf builds a trainer for given weights and gives the same losses', async () => {
    const losses = await perSampleLossOf(compiled, trainer.getWeights(), test)
    assert.deepEqual(losses, await perSampleLoss(trainer, test))
  })

  it('refuses data of the wrong shape, out-of-range labels and bad batch sizes', async () => {
    const wrong = fromTensors(new Float32Array(2 * 10), new Uint8Array(2), [10])
    await assert.rejects(perSampleLoss(trainer, wrong), (err: unknown) => hasCode(err, 'SHAPE_MISMATCH'))
    const badLabel = fromTensors(new Float32Array(12), new Uint8Array([7]), [12])
    await assert.rejects(perSampleLoss(trainer, badLabel), (err: unknown) =>
      hasCode(err, 'LABEL_OUT_OF_RANGE')
    )
    await assert.rejects(perSampleLoss(trainer, test, { batchSize: 0 }), (err: unknown) =>
      hasCode(err, 'INVALID_TRAINER_OPTIONS')
    )
  })
})
