/**
 * What a node shares of a round (step 2): the provider its receipt names, and the exact result a
 * non-bit-exact round publishes for a tolerance check — never under differential privacy.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Rng } from '../../../../src/common/index.js'
import { decodeCompressed } from '../../../../src/training/aggregate/index.js'
import { decodeWeights, encodeWeights } from '../../../../src/training/export/index.js'
import { MODELS, compileModel, initParams } from '../../../../src/training/graph/index.js'
import { rawSha256OfCid } from '../../../../src/training/receipts/index.js'
import { MemoryWeightStore, shareRound, type ShareInput } from '../../../../src/training/swarm/index.js'

describe('swarm: what a node shares of a round', () => {
  const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
  const params = compiled.params
  const base = initParams(compiled, 1)
  const mine = initParams(compiled, 2)
  const input = (over: Partial<ShareInput>): ShareInput => ({
    mine,
    base,
    job: { privacy: null },
    params,
    compression: 'none',
    noiseRng: new Rng(3),
    store: new MemoryWeightStore(),
    executionProvider: 'cpu',
    deterministic: true,
    threads: undefined,
    signal: new AbortController().signal,
    ...over
  })

  it('a deterministic CPU round names cpu and publishes nothing more', async () => {
    const s = await shareRound(input({}))
    assert.equal(s.ep, 'cpu')
    assert.equal(s.result, undefined)
    assert.equal(s.shared, mine)
  })

  it('a multi-threaded or GPU round publishes its exact weights, whose raw CID is their resultHash', async () => {
    const store = new MemoryWeightStore()
    const s = await shareRound(input({ deterministic: false, threads: 4, compression: 'int8', store }))
    assert.equal(s.ep, 'cpu-parallel')
    assert.equal(s.result!.threads, 4)
    const cid = s.result!.resultCid!
    assert.notEqual(cid, s.weightsCid, 'the announced model is int8; the result is exact')
    const exact = decodeWeights(await store.get(cid))
    for (const [k, v] of mine) assert.deepEqual(exact.get(k), v)
    const hash = createHash('sha256').update(encodeWeights(mine, params)).digest('hex')
    assert.equal(rawSha256OfCid(cid), hash)
    const gpu = await shareRound(input({ executionProvider: 'webgpu', deterministic: false }))
    assert.equal(gpu.ep, 'webgpu')
    assert.ok(gpu.result!.resultCid !== undefined && gpu.result!.threads >= 1)
  })

  it('under differential privacy only the noised model leaves the node', async () => {
    const store = new MemoryWeightStore()
    const s = await shareRound(
      input({ deterministic: false, store, job: { privacy: { clipNorm: 1, noiseMultiplier: 1 } } })
    )
    assert.deepEqual(Object.keys(s.result!), ['threads'])
    const announced = decodeCompressed(await store.get(s.weightsCid))
    assert.notDeepEqual(announced.get(params[0]!.name), mine.get(params[0]!.name))
    assert.equal(store.size, 1, 'one object stored: the noised model')
  })
})
