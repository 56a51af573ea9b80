/**
 * `shoal train --local` and `shoal model export|import` through the CLI and RPC of a daemon:
 * per-epoch held-out accuracy, checkpoints in storage, an ONNX export that onnxruntime loads,
 * and an imported model as the starting point of further training.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { shoal, startDaemon, type Daemon } from '../helpers/cli.js'
import { loadMnist, trainTestSplit } from '../../src/storage/datasets/index.js'

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
    // The exported model is standard ONNX: plain onnxruntime runs it, and it is as accurate
    // as the task reported on the same held-out digits.
    const session = await ort.InferenceSession.create(new Uint8Array(await readFile(onnxPath)))
    const { test } = trainTestSplit(await loadMnist(), { train: 2000, test: 2000, seed: 42 })
    const x = new Float32Array(test.count * 784)
    for (let i = 0; i < x.length; i++) x[i] = (test.images[i]! / 255 - 0.1307) / 0.3081
    const out = await session.run({ x: new ort.Tensor('float32', x, [test.count, 784]) })
    const logits = out.logits!.data as Float32Array
    let correct = 0
    for (let i = 0; i < test.count; i++) {
      let best = 0
      for (let k = 1; k < 10; k++) if (logits[i * 10 + k]! > logits[i * 10 + best]!) best = k
      if (best === test.labels[i]) correct++
    }
    assert.ok(Math.abs(correct / test.count - task.history[1]!.accuracy) < 1e-9)

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

    const bad = await shoal(home, [
      'model',
      'export',
      'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
      '-o',
      join(root, 'x.onnx')
    ])
    assert.equal(bad.code, 4)
  })
})
