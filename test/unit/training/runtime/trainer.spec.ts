import assert from 'node:assert/strict'
import { BatchLoader, fromImages, type TensorDataset } from '../../../../src/training/data/index.js'
import {
  Trainer,
  cudaProviderInstalled,
  type TrainableModel
} from '../../../../src/training/runtime/index.js'
import { syntheticImages, tinyInitParams, tinyInitState, tinyModel } from './tiny-model.js'

const model = tinyModel([784])
const data: TensorDataset = fromImages(syntheticImages(256, 5))
const B = 32

function batch(i: number): { x: Float32Array; y: Uint8Array } {
  const x = data.x.slice(i * B * 784, (i + 1) * B * 784)
  const y = Uint8Array.from(data.y.subarray(i * B, (i + 1) * B))
  return { x, y }
}

async function trainer(extra: Partial<Parameters<typeof Trainer.create>[1]> = {}): Promise<Trainer> {
  return Trainer.create(model, { weights: tinyInitParams(model, 1), deterministic: true, ...extra })
}

function equalMaps(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) {
    const w = b.get(k)
    if (
      w === undefined ||
      Buffer.compare(
        Buffer.from(v.buffer, v.byteOffset, v.byteLength),
        Buffer.from(w.buffer, w.byteOffset, w.byteLength)
      ) !== 0
    ) {
      return false
    }
  }
  return true
}

describe('training/runtime: Trainer', function () {
  this.timeout(20000)

  it('trains: the loss falls and accuracy rises on a learnable set', async () => {
    const t = await trainer()
    assert.equal(t.executionProvider, 'cpu')
    const loader = new BatchLoader(data, { batchSize: B, seed: 2 })
    const losses: number[] = []
    for (let epoch = 0; epoch < 4; epoch++) {
      for (const b of loader.epochSync(epoch)) losses.push((await t.step(b.x, b.y, 0.05)).loss)
    }
    assert.equal(t.steps, 32)
    const first = losses.slice(0, 4).reduce((a, b) => a + b) / 4
    const last = losses.slice(-4).reduce((a, b) => a + b) / 4
    assert.ok(last < first * 0.5, `loss ${first} → ${last}`)
    const ev = await t.evaluate(data, 100)
    assert.equal(ev.count, 256)
    assert.ok(ev.accuracy > 0.9, `accuracy ${ev.accuracy}`)
    assert.ok(Number.isFinite(ev.loss) && ev.loss < first)
    // evaluate's accuracy matches predict's argmax
    const logits = await t.predict(data.x, data.count)
    let hits = 0
    for (let i = 0; i < data.count; i++) {
      const row = Array.from(logits.subarray(i * 10, (i + 1) * 10))
      if (row.indexOf(Math.max(...row)) === data.y[i]) hits++
    }
    assert.equal(hits, ev.correct)
    await t.close()
  })

  it('reports loss and correct count of the batch before the update', async () => {
    const t = await trainer()
    const { x, y } = batch(0)
    const logits = await t.predict(x, B)
    let ce = 0
    let hits = 0
    for (let i = 0; i < B; i++) {
      const row = Array.from(logits.subarray(i * 10, (i + 1) * 10))
      const m = Math.max(...row)
      ce += Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) + m - row[y[i]!]!
      if (row.indexOf(m) === y[i]) hits++
    }
    const r = await t.step(x, y, 0.1)
    assert.ok(Math.abs(r.loss - ce / B) < 1e-4, `${r.loss} vs ${ce / B}`)
    assert.equal(r.correct, hits)
    assert.equal(r.size, B)
    assert.equal(r.step, 1)
    await t.close()
  })

  it('accepts int64 and small-integer labels alike, and gives identical results for identical runs', async () => {
    const a = await trainer()
    const b = await trainer()
    for (let i = 0; i < 4; i++) {
      const { x, y } = batch(i)
      await a.step(x, y, 0.05)
      await b.step(
        x,
        BigInt64Array.from(y, (v) => BigInt(v)),
        0.05
      )
    }
    assert.ok(equalMaps(a.getWeights(), b.getWeights()))
    assert.ok(equalMaps(a.getState(), b.getState()))
    await a.close()
    await b.close()
  })

  it('rejects input of the wrong shape with ShapeError before running, leaving the weights alone', async () => {
    const t = await trainer()
    const before = t.getWeights()
    const { x, y } = batch(0)
    await assert.rejects(
      t.step(x.subarray(0, 31 * 784), y, 0.1),
      (err: { code: string; fields: { expected: number[] }; message: string }) => {
        assert.equal(err.code, 'SHAPE_MISMATCH')
        assert.deepEqual(err.fields.expected, [32, 784])
        assert.match(err.message, /\[32, 784\]/)
        return true
      }
    )
    await assert.rejects(t.step(new Float64Array(32 * 784) as unknown as Float32Array, y, 0.1), {
      code: 'SHAPE_MISMATCH'
    })
    await assert.rejects(t.step(new Float32Array(0), new Uint8Array(0), 0.1), { code: 'SHAPE_MISMATCH' })
    await assert.rejects(
      t.step(
        x,
        Uint8Array.from(y, () => 10),
        0.1
      ),
      { code: 'LABEL_OUT_OF_RANGE' }
    )
    await assert.rejects(t.step(x, y, NaN), { code: 'INVALID_TRAINER_OPTIONS' })
    const wrong = { x: new Float32Array(4 * 700), y: new Uint8Array(4), count: 4, sampleShape: [700] }
    await assert.rejects(t.evaluate(wrong), {
      code: 'SHAPE_MISMATCH',
      fields: { expected: [784], got: [700] }
    })
    assert.equal(t.steps, 0)
    assert.ok(equalMaps(before, t.getWeights()))
    await t.close()
  })

  it('stops on a non-finite loss and rolls the step back', async () => {
    const t = await trainer()
    await t.step(batch(0).x, batch(0).y, 0.05)
    const good = t.getWeights()
    const goodState = t.getState()
    const { x, y } = batch(1)
    x[5] = NaN
    await assert.rejects(t.step(x, y, 0.05), (err: { code: string; fields: Record<string, unknown> }) => {
      assert.equal(err.code, 'NON_FINITE_LOSS')
      assert.equal(err.fields.step, 2)
      assert.equal(err.fields.rolledBackTo, 1)
      return true
    })
    assert.equal(t.steps, 1)
    assert.ok(equalMaps(good, t.getWeights()))
    assert.ok(equalMaps(goodState, t.getState()))
    // training goes on from there
    const r = await t.step(batch(2).x, batch(2).y, 0.05)
    assert.ok(Number.isFinite(r.loss))
    assert.equal(r.step, 2)
    await t.close()
  })

  it('on clean data, discards the weights that gave the non-finite loss too', async () => {
    const t = await trainer()
    await t.step(batch(0).x, batch(0).y, 0.05)
    const good = t.getWeights()
    // A huge learning rate: this step's loss is finite (computed before the update) but the new weights are wild.
    const blow = await t.step(batch(1).x, batch(1).y, 3e38)
    assert.ok(Number.isFinite(blow.loss))
    await assert.rejects(t.step(batch(2).x, batch(2).y, 0.05), {
      code: 'NON_FINITE_LOSS',
      fields: { step: 3, loss: 'NaN', rolledBackTo: 1 }
    })
    assert.equal(t.steps, 1)
    assert.ok(equalMaps(good, t.getWeights()))
    await t.close()
  })

  it('get/set weights and state copy, and check names and sizes', async () => {
    const t = await trainer()
    await t.step(batch(0).x, batch(0).y, 0.05)
    const w = t.getWeights()
    assert.deepEqual([...w.keys()], ['W', 'b'])
    w.get('W')!.fill(7)
    assert.notEqual(t.getWeights().get('W')![0], 7, 'getWeights returns a copy')
    const mine = tinyInitParams(model, 9)
    t.setWeights(mine)
    mine.get('W')!.fill(3)
    assert.ok(equalMaps(t.getWeights(), tinyInitParams(model, 9)), 'setWeights copies')
    assert.throws(() => t.setWeights(new Map([['W', new Float32Array(7850)]])), { code: 'SHAPE_MISMATCH' })
    assert.throws(() => t.setWeights(new Map([...mine, ['extra', new Float32Array(1)]])), {
      code: 'SHAPE_MISMATCH'
    })
    assert.throws(() => t.setWeights(new Map([...mine, ['b', new Float32Array(11)]])), {
      code: 'SHAPE_MISMATCH',
      fields: { name: 'b', expected: [10], got: 11 }
    })
    const state = t.getState()
    assert.ok(
      state.get('v:W')!.some((v) => v !== 0),
      'momentum accumulated'
    )
    t.setState(tinyInitState(model))
    assert.ok(
      t
        .getState()
        .get('v:W')!
        .every((v) => v === 0)
    )
    await t.close()
  })

  it('refuses concurrent calls, calls after close, and aborted signals', async () => {
    const t = await trainer()
    const { x, y } = batch(0)
    const first = t.step(x, y, 0.05)
    await assert.rejects(t.step(x, y, 0.05), { code: 'TRAINER_BUSY' })
    await first
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(t.step(x, y, 0.05, { signal: ac.signal }), { name: 'AbortError' })
    await assert.rejects(t.evaluate(data, 64, { signal: ac.signal }), { name: 'AbortError' })
    await t.close()
    await t.close()
    await assert.rejects(t.step(x, y, 0.05), { code: 'TRAINER_CLOSED' })
    await assert.rejects(Trainer.create(model, { weights: tinyInitParams(model, 1), signal: ac.signal }), {
      name: 'AbortError'
    })
  })

  it('checks the graph contract and the initial weights', async () => {
    const broken: TrainableModel = { ...model, trainStep: model.inference }
    await assert.rejects(Trainer.create(broken, { weights: tinyInitParams(model, 1) }), {
      code: 'MODEL_CONTRACT_VIOLATED'
    })
    await assert.rejects(Trainer.create(model, { weights: new Map([['W', new Float32Array(3)]]) }), {
      code: 'SHAPE_MISMATCH'
    })
  })

  it('takes a CHW input shape', async () => {
    const chw = tinyModel([1, 28, 28])
    const t = await Trainer.create(chw, { weights: tinyInitParams(chw, 1), intraOpNumThreads: 1 })
    await assert.rejects(t.step(new Float32Array(2 * 784), new Uint8Array(3), 0.1), {
      code: 'SHAPE_MISMATCH',
      fields: { expected: [3, 1, 28, 28], got: 1568 }
    })
    const r = await t.step(batch(0).x, batch(0).y, 0.1)
    assert.ok(Number.isFinite(r.loss))
    await t.close()
  })
})

describe('training/runtime: execution providers', function () {
  this.timeout(20000)

  it('auto picks CUDA only when its provider library is installed, else CPU', async () => {
    const t = await Trainer.create(model, {
      weights: tinyInitParams(model, 1),
      device: 'auto',
      intraOpNumThreads: 1
    })
    if (!cudaProviderInstalled()) assert.equal(t.executionProvider, 'cpu')
    else assert.ok(['cuda', 'cpu'].includes(t.executionProvider))
    await t.close()
  })

  it('an explicit cuda or webgpu that cannot start fails with EP_UNAVAILABLE', async () => {
    for (const device of ['cuda', 'webgpu'] as const) {
      try {
        const t = await Trainer.create(model, { weights: tinyInitParams(model, 1), device })
        // A machine with that GPU stack: it must really run there.
        assert.equal(t.executionProvider, device)
        await t.close()
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'EP_UNAVAILABLE', String(err))
        assert.equal((err as { fields: { device: string } }).fields.device, device)
        if (device === 'cuda' && !cudaProviderInstalled())
          assert.match((err as Error).message, /libonnxruntime_providers_cuda|onnxruntime_providers_cuda/)
      }
    }
    // A CPU trainer still works after failed attempts.
    const t = await trainer()
    assert.ok(Number.isFinite((await t.step(batch(0).x, batch(0).y, 0.05)).loss))
    await t.close()
  })

  it('deterministic mode refuses a GPU device; unknown devices are refused', async () => {
    await assert.rejects(trainer({ device: 'cuda' }), { code: 'INVALID_TRAINER_OPTIONS' })
    await assert.rejects(trainer({ deterministic: false, device: 'tpu' as 'cpu' }), {
      code: 'INVALID_TRAINER_OPTIONS'
    })
    await assert.rejects(trainer({ deterministic: false, intraOpNumThreads: -1 }), {
      code: 'INVALID_TRAINER_OPTIONS'
    })
  })
})
