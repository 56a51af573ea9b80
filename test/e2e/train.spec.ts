/**
 * `shoal train --local` and `shoal model export|import` through the CLI and RPC of a daemon:
 * per-epoch held-out accuracy, checkpoints in storage, an ONNX export that onnxruntime loads,
 * and an imported model as the starting point of further training.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { shoal, startDaemon, type Daemon } from '../helpers/cli.js'
import { loadMnist, trainTestSplit } from '../../src/storage/datasets/index.js'
import { readInputContract, readOnnxMetadata } from '../../src/training/index.js'
import { rawDigitAccuracy } from '../helpers/ort-web.js'

describe('local training and model export (processes)', function () {
  this.timeout(300_000)
  let root: string
  let home: string
  let daemon: Daemon

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-train-'))
    home = join(root, 'node')
    assert.equal((await shoal(home, ['init'])).code, 0)
    daemon = await startDaemon(home)
  })
  after(async () => {
    daemon.child.kill('SIGKILL')
    await rm(root, { recursive: true, force: true })
  })

  it('trains, checkpoints every epoch, exports ONNX, and resumes from an imported model', async () => {
    const r = await shoal(home, [
      'train',
      '--local',
      '--epochs',
      '2',
      '--samples',
      '2000',
      '--deterministic',
      '--json'
    ])
    assert.equal(r.code, 0, r.stderr)
    const task = JSON.parse(r.stdout) as {
      state: string
      history: Array<{ epoch: number; loss: number; accuracy: number; checkpoint: string }>
    }
    assert.equal(task.state, 'done')
    assert.equal(task.history.length, 2)
    assert.ok(task.history[1]!.accuracy > 0.8, `held-out accuracy ${task.history[1]!.accuracy}`)
    const cid = task.history[1]!.checkpoint
    assert.match(cid, /^baf/)

    const onnxPath = join(root, 'model.onnx')
    const exp = await shoal(home, ['model', 'export', cid, '-o', onnxPath, '--json'])
    assert.equal(exp.code, 0, exp.stderr)
    // The exported model is standard ONNX and portable: another runtime (onnxruntime-web) fed
    // the held-out digits as they come (pixels / 255) scores what the node reported, because
    // the graph standardises its input itself; the metadata says so.
    const { test } = trainTestSplit(await loadMnist(), { train: 2000, test: 2000, seed: 42 })
    const model = new Uint8Array(await readFile(onnxPath))
    const mlpAcc = await rawDigitAccuracy(model, test, [784])
    assert.ok(
      Math.abs(mlpAcc - task.history[1]!.accuracy) <= 0.01,
      `MLP export ${mlpAcc} vs node ${task.history[1]!.accuracy}`
    )
    const contract = readInputContract(readOnnxMetadata(model))
    assert.deepEqual(contract?.shape, [-1, 784])
    assert.deepEqual(contract?.range, [0, 1])
    assert.equal(contract?.normalization?.inGraph, true)
    assert.equal(contract?.labels.length, 10)

    // model_predict takes the same raw inputs as the export and agrees with it.
    const inputs = Array.from({ length: 20 }, (_, i) =>
      Array.from(test.images.subarray(i * 784, (i + 1) * 784), (p) => p / 255)
    )
    const predicted = await shoal(home, [
      'predict',
      await writeJson(join(root, 'in.json'), inputs),
      '--checkpoint',
      cid,
      '--json'
    ])
    assert.equal(predicted.code, 0, predicted.stderr)
    const labels = (
      JSON.parse(predicted.stdout) as { predictions: Array<{ label: number }> }
    ).predictions.map((p) => p.label)
    const right = labels.filter((l, i) => l === test.labels[i]).length
    assert.ok(right >= 16, `model_predict on raw digits: ${right}/20`)

    const imp = await shoal(home, ['model', 'import', onnxPath, '--json'])
    assert.equal(imp.code, 0, imp.stderr)
    const { checkpoint } = JSON.parse(imp.stdout) as { checkpoint: string }
    const again = await shoal(home, [
      'train',
      '--local',
      '--epochs',
      '1',
      '--samples',
      '2000',
      '--from',
      checkpoint,
      '--json'
    ])
    assert.equal(again.code, 0, again.stderr)
    const t2 = JSON.parse(again.stdout) as { history: Array<{ accuracy: number }> }
    assert.ok(t2.history[0]!.accuracy > 0.8, 'starts from the imported weights, not from scratch')
    // An imported model exports again with the same input contract (and so the same accuracy).
    const reexported = join(root, 'again.onnx')
    assert.equal((await shoal(home, ['model', 'export', checkpoint, '-o', reexported])).code, 0)
    const again2 = await rawDigitAccuracy(new Uint8Array(await readFile(reexported)), test, [784])
    assert.ok(Math.abs(again2 - mlpAcc) < 1e-9, `re-exported import ${again2} vs ${mlpAcc}`)

    const bad = await shoal(home, [
      'model',
      'export',
      'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
      '-o',
      join(root, 'x.onnx')
    ])
    assert.equal(bad.code, 4)
  })

  it('an exported CNN scores what the node reported on raw digits (normalisation is in the graph)', async () => {
    const r = await shoal(home, [
      'train',
      '--local',
      '--model',
      'cnn',
      '--epochs',
      '2',
      '--samples',
      '8000',
      '--deterministic',
      '--json'
    ])
    assert.equal(r.code, 0, r.stderr)
    const task = JSON.parse(r.stdout) as { history: Array<{ accuracy: number; checkpoint: string }> }
    const reported = task.history[1]!.accuracy
    assert.ok(reported > 0.8, `CNN held-out accuracy ${reported}`)
    const onnxPath = join(root, 'cnn.onnx')
    assert.equal(
      (await shoal(home, ['model', 'export', task.history[1]!.checkpoint, '-o', onnxPath])).code,
      0
    )
    const { test } = trainTestSplit(await loadMnist(), { train: 8000, test: 2000, seed: 42 })
    const acc = await rawDigitAccuracy(new Uint8Array(await readFile(onnxPath)), test, [1, 28, 28])
    assert.ok(Math.abs(acc - reported) <= 0.01, `CNN export ${acc} vs node ${reported}`)
  })
})

async function writeJson(path: string, value: unknown): Promise<string> {
  await writeFile(path, JSON.stringify(value))
  return path
}
