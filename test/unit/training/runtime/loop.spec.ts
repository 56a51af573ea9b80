import assert from 'node:assert/strict'
import { loadMnist, subset } from '../../../../src/storage/datasets/mnist.js'
import { BatchLoader, fromImages } from '../../../../src/training/data/index.js'
import { MODELS } from '../../../../src/training/graph/index.js'
import {
  Trainer,
  trainEpoch,
  trainLocal,
  type ProgressEvent
} from '../../../../src/training/runtime/index.js'
import { Rng } from '../../../../src/common/rng.js'
import type { LabeledImages } from '../../../../src/storage/datasets/mnist.js'
import { syntheticImages, tinyInitParams, tinyModel } from './tiny-model.js'

describe('training/runtime: loops', function () {
  this.timeout(30000)
  let train: LabeledImages
  let test: LabeledImages

  before(async () => {
    const all = await loadMnist()
    const order = new Rng(5).shuffle(Array.from({ length: all.count }, (_, i) => i))
    train = subset(all, order.slice(0, 400))
    test = subset(all, order.slice(400, 600))
  })

  it('trainLocal trains the MLP, evaluates each epoch, checkpoints and reports progress', async () => {
    const progress: ProgressEvent[] = []
    const checkpoints: Array<{ epoch: number; size: number }> = []
    const epochs: number[] = []
    const r = await trainLocal({
      spec: MODELS.mlp,
      optimizer: { type: 'sgd', momentum: 0.9 },
      lr: { kind: 'step', lr: 0.05, gamma: 0.5, every: 1 },
      epochs: 3,
      batchSize: 32,
      seed: 7,
      train,
      test,
      deterministic: true,
      progressEvery: 5,
      onProgress: (e) => progress.push(e),
      onEpoch: (e) => {
        epochs.push(e.epoch)
      },
      onCheckpoint: async (epoch, weights) => {
        checkpoints.push({ epoch, size: weights.size })
      }
    })
    assert.equal(r.executionProvider, 'cpu')
    assert.equal(r.epochs.length, 3)
    assert.deepEqual(epochs, [0, 1, 2])
    assert.deepEqual(checkpoints, [
      { epoch: 0, size: 4 },
      { epoch: 1, size: 4 },
      { epoch: 2, size: 4 }
    ])
    // 400 samples / 32 = 12 full batches + one of 16 (kept).
    assert.equal(r.steps, 39)
    assert.equal(r.epochs[0]!.samples, 400)
    assert.equal(r.epochs[2]!.lr, 0.0125)
    assert.ok(r.epochs[2]!.loss < r.epochs[0]!.loss)
    assert.ok(r.epochs[2]!.testAccuracy! > 0.7, `held-out accuracy ${r.epochs[2]!.testAccuracy}`)
    assert.deepEqual(
      progress.filter((p) => p.epoch === 0).map((p) => p.step),
      [5, 10, 13]
    )
    assert.ok(progress.every((p) => p.steps === 13 && Number.isFinite(p.loss)))
    assert.deepEqual([...r.weights.keys()], ['dense0.weight', 'dense0.bias', 'dense2.weight', 'dense2.bias'])
    assert.equal(r.state.size, 4)
  })

  it('trainLocal is reproducible for a seed, takes tensor data and initial weights, and can be aborted', async () => {
    const base = {
      spec: MODELS.mlp,
      optimizer: { type: 'adam' as const },
      lr: 0.002,
      epochs: 1,
      batchSize: 50,
      seed: 3,
      train: fromImages(train),
      deterministic: true,
      dropLast: true
    }
    const a = await trainLocal(base)
    const b = await trainLocal(base)
    assert.equal(a.steps, 8)
    for (const [k, v] of a.weights) assert.deepEqual(v, b.weights.get(k))
    const c = await trainLocal({ ...base, seed: 4 })
    assert.notDeepEqual(c.weights.get('dense0.weight'), a.weights.get('dense0.weight'))
    const d = await trainLocal({ ...base, epochs: 0, initialWeights: a.weights })
    assert.deepEqual(d.weights, a.weights)
    const ac = new AbortController()
    await assert.rejects(
      trainLocal({ ...base, epochs: 5, signal: ac.signal, onProgress: () => ac.abort(), progressEvery: 2 }),
      { name: 'AbortError' }
    )
    await assert.rejects(trainLocal({ ...base, epochs: -1 }), { code: 'INVALID_TRAINER_OPTIONS' })
    await assert.rejects(trainLocal({ ...base, lr: -0.1 }), { code: 'INVALID_TRAINER_OPTIONS' })
  })

  it('trainEpoch surfaces a non-finite loss', async () => {
    const model = tinyModel([784])
    const set = syntheticImages(64, 1)
    const data = fromImages(set)
    data.x[100] = Infinity
    const trainer = await Trainer.create(model, { weights: tinyInitParams(model, 1), deterministic: true })
    const loader = new BatchLoader(data, { batchSize: 16, shuffle: false })
    await assert.rejects(trainEpoch(trainer, loader, 0, { lr: 0.1 }), {
      code: 'NON_FINITE_LOSS',
      fields: { step: 1, loss: 'NaN', rolledBackTo: 0 }
    })
    await trainer.close()
  })
})
