/**
 * Deterministic mode is bit-reproducible across processes: two separate Node processes
 * train the MLP (Adam) and the CNN (SGD with momentum) from the same seed and print a
 * sha256 of the encoded weights; the hashes must be byte-identical (and equal to this
 * process's own), and a different seed must give different weights.
 *
 * The same file is the child program: run with SHOAL_DETERMINISM_CHILD=1 it trains and prints.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Rng } from '../../src/common/rng.js'
import { loadMnist, subset } from '../../src/storage/datasets/mnist.js'
import { encodeWeights } from '../../src/training/export/index.js'
import { MODELS, type ModelSpec, type OptimizerSpec } from '../../src/training/graph/index.js'
import { trainLocal } from '../../src/training/runtime/index.js'

type Hashes = Record<string, string>

async function trainAndHash(seed: number): Promise<Hashes> {
  const all = await loadMnist()
  const order = new Rng(1234).shuffle(Array.from({ length: all.count }, (_, i) => i))
  const train = subset(all, order.slice(0, 320))
  const runs: Array<[string, ModelSpec, OptimizerSpec]> = [
    ['mlp', MODELS.mlp, { type: 'adam' }],
    ['cnn', MODELS.cnn, { type: 'sgd', momentum: 0.9 }]
  ]
  const out: Hashes = {}
  for (const [name, spec, optimizer] of runs) {
    const r = await trainLocal({
      spec,
      optimizer,
      lr: name === 'mlp' ? 0.002 : { kind: 'cosine', lr: 0.02 },
      epochs: 2,
      batchSize: 32,
      seed,
      train,
      deterministic: true
    })
    const h = createHash('sha256')
    h.update(encodeWeights(r.weights))
    h.update(encodeWeights(r.state))
    out[name] = h.digest('hex')
  }
  return out
}

function child(seed: number): Promise<Hashes> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: {
        ...process.env,
        SHOAL_DETERMINISM_CHILD: '1',
        SHOAL_DETERMINISM_SEED: String(seed),
        SHOAL_LOG: 'silent'
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${stderr}`))
      const line = stdout.split('\n').find((l) => l.startsWith('HASHES '))
      if (line === undefined) return reject(new Error(`no hashes in child output: ${stdout} ${stderr}`))
      resolve(JSON.parse(line.slice('HASHES '.length)) as Hashes)
    })
  })
}

if (process.env.SHOAL_DETERMINISM_CHILD === '1') {
  const hashes = await trainAndHash(Number(process.env.SHOAL_DETERMINISM_SEED))
  console.log(`HASHES ${JSON.stringify(hashes)}`)
} else {
  describe('training: deterministic mode across processes', function () {
    this.timeout(120000)

    it('two processes training from the same seed produce byte-identical weights', async () => {
      const [a, b] = await Promise.all([child(21), child(21)])
      assert.match(a.mlp!, /^[0-9a-f]{64}$/)
      assert.deepEqual(a, b)
      const here = await trainAndHash(21)
      assert.deepEqual(here, a)
      const other = await trainAndHash(22)
      assert.notEqual(other.mlp, a.mlp)
      assert.notEqual(other.cnn, a.cnn)
    })
  })
}
