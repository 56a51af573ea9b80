/**
 * Decentralized training across OS processes (loopback only): 4 trainers on Dirichlet(0.5)
 * non-IID shards of MNIST gossip-average an MLP with no coordinator. One trainer is killed with
 * SIGKILL mid-run and restarted later. The job completes; every node ends within 2 points of a
 * centralized baseline trained on the same data for the same number of epochs; the restarted
 * node catches up to within 2 points of the others.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { LocalSwarm, until } from '../../scripts/lib/swarm.js'
import { loadMnist, trainTestSplit } from '../../src/storage/datasets/index.js'
import { rawDigitAccuracy } from '../helpers/ort-web.js'

const ROUNDS = 24
const H = 40
const BATCH = 32
const LR = 0.05

describe('gossip-averaged training across processes', function () {
  this.timeout(600_000)
  let swarm: LocalSwarm

  before(async () => {
    swarm = new LocalSwarm({ root: await mkdtemp(join(tmpdir(), 'shoal-e2e-train-')), trainers: 4 })
    await swarm.start()
    await swarm.form()
  })
  after(async () => {
    await swarm.stop()
    await rm(swarm.root, { recursive: true, force: true })
  })

  it('converges on non-IID shards and survives a SIGKILLed, restarted node', async () => {
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
    const job = await swarm.createJob({
      name: 'e2e',
      dataset: ds.manifestCid,
      model: 'mlp',
      rounds: ROUNDS,
      H,
      k: 3,
      lr: LR,
      batchSize: BATCH,
      seed: 1
    })
    const victim = swarm.trainers[1]!
    // Let the victim train a few rounds, then kill it without a clean shutdown.
    await until(
      'round 3 on the victim',
      async () => ((await swarm.status(victim, job)).round ?? -1) >= 3 || undefined,
      300_000
    )
    const roundAtKill = (await swarm.status(victim, job)).round!
    // A volunteer pauses its node: it stops training until it resumes.
    const volunteer = swarm.trainers[2]!
    assert.deepEqual(await swarm.call(volunteer, 'node_pause'), { paused: true })
    // `held`: the step in progress has finished and the trainer waits for resume.
    await until(
      'the pause to take effect',
      async () => {
        const s = await swarm.status(volunteer, job)
        return s.state === 'paused' && s.held === true ? true : undefined
      },
      300_000
    )
    const r1 = (await swarm.status(volunteer, job)).round
    await sleep(2000) // observe: no round may complete while held
    const stillPaused = await swarm.status(volunteer, job)
    assert.equal(stillPaused.state, 'paused')
    assert.equal(stillPaused.round, r1, 'no round trained while paused')
    assert.deepEqual(await swarm.call(volunteer, 'node_resume'), { paused: false })
    await swarm.kill(victim)
    await sleep(2000)
    await swarm.startNode(victim) // resumes the job from its last checkpoint
    await swarm.meshTrainers()
    const resumed = await until('the victim to resume', async () => {
      const s = await swarm.status(victim, job)
      return s.state === 'running' || s.state === 'done' ? s : undefined
    })
    assert.ok(
      resumed.history.length === 0 || resumed.history[0]!.round >= roundAtKill,
      'resumed, not restarted from round 0'
    )

    const statuses = await swarm.waitDone(job)
    for (const t of swarm.trainers) {
      const s = statuses.get(t.name)!
      assert.equal(s.state, 'done', `${t.name}: ${JSON.stringify(s.error)}`)
      assert.equal(s.rejected.length, 0, `${t.name} rejected honest updates: ${JSON.stringify(s.rejected)}`)
    }
    const acc = swarm.trainers.map((t) => statuses.get(t.name)!.accuracy!)
    const total = ds.shards.reduce((a, s) => a + s.count, 0)
    const epochs = Math.max(1, Math.round((ROUNDS * H * BATCH * 4) / total))
    const reference = await swarm.reference({ epochs, batchSize: BATCH, lr: LR })
    console.log(
      `    accuracies ${acc.map((a) => (a * 100).toFixed(2)).join(', ')}; centralized ${(reference * 100).toFixed(2)} (${epochs} epochs)`
    )
    // Developers query what the swarm learned: model_predict on held-out digits as they come.
    const { test } = trainTestSplit(await loadMnist(), { seed: 42 })
    const inputs = Array.from({ length: 50 }, (_, i) =>
      Array.from(test.images.subarray(i * 784, (i + 1) * 784), (p) => p / 255)
    )
    const { predictions } = await swarm.call<{ predictions: Array<{ label: number; probs: number[] }> }>(
      swarm.trainers[0]!,
      'model_predict',
      { job, inputs }
    )
    assert.equal(predictions.length, 50)
    const right = predictions.filter((p, i) => p.label === test.labels[i]).length
    assert.ok(right >= 40, `model_predict: ${right}/50 held-out digits right`)
    assert.ok(predictions.every((p) => Math.abs(p.probs.reduce((a, b) => a + b, 0) - 1) < 1e-4))
    // The swarm's model, exported, scores in another runtime on raw digits what the node reported.
    const exported = join(swarm.root, 'swarm-model.onnx')
    const cps = (
      await swarm.call<{ checkpoints: Array<{ cid: string; accuracy?: number }> }>(
        swarm.trainers[0]!,
        'job_status',
        { job }
      )
    ).checkpoints
    const last = cps.filter((c) => c.accuracy !== undefined).at(-1)!
    await swarm.call(swarm.trainers[0]!, 'model_export', { checkpoint: last.cid, path: exported })
    const portable = await rawDigitAccuracy(new Uint8Array(await readFile(exported)), test, [784])
    assert.ok(Math.abs(portable - last.accuracy!) <= 0.01, `exported ${portable} vs node-1 ${last.accuracy}`)
    const others = acc.filter((_, i) => i !== 1)
    const v = statuses.get(victim.name)!
    const trace = v.history
      .map((h) => `r${h.round}:${h.accuracy === undefined ? '-' : (h.accuracy * 100).toFixed(1)}`)
      .join(' ')
    for (const [i, a] of acc.entries()) {
      assert.ok(
        a >= reference - 0.02,
        `node-${i + 1}: ${a} vs centralized ${reference}; victim after restart: ${trace}`
      )
    }
    assert.ok(
      acc[1]! >= Math.min(...others) - 0.02,
      `restarted node ${acc[1]} vs others ${others.join(', ')}; killed at round ${roundAtKill}; after restart: ${trace}`
    )
  })
})
