/**
 * Which execution providers work here, and a volunteer's failed GPU start: CPU with a reason,
 * never a crash (what a node asks for with `fallbackToCpu`).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MODELS, compileModel } from '../../../../src/training/graph/index.js'
import {
  createSession,
  cudaProviderInstalled,
  planProvider,
  probeProviders,
  vulkanLoaderPresent
} from '../../../../src/training/runtime/index.js'

describe('training/runtime: execution providers on this machine', () => {
  const model = compileModel(MODELS.mlp, { type: 'sgd' }).inference

  it('probes CPU, CUDA and WebGPU once, with a reason for each one that does not work', async () => {
    const probes = await probeProviders()
    assert.deepEqual(
      probes.map((p) => p.provider),
      ['cpu', 'cuda', 'webgpu']
    )
    assert.deepEqual(probes[0], { provider: 'cpu', available: true, detail: 'a session started' })
    for (const p of probes) {
      assert.equal(typeof p.available, 'boolean')
      assert.ok(p.detail.length > 0 && p.detail.length <= 400, p.detail)
    }
    if (!cudaProviderInstalled()) {
      assert.equal(probes[1]!.available, false)
      assert.match(probes[1]!.detail, /ONNXRUNTIME_NODE_INSTALL=cuda12/)
    }
    assert.equal(await probeProviders(), await probeProviders(), 'cached')
  })

  it('finds a Vulkan loader only where one is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-vk-'))
    try {
      if (process.platform === 'linux') assert.equal(vulkanLoaderPresent([dir]), false)
      await writeFile(join(dir, 'libvulkan.so.1'), '')
      assert.equal(vulkanLoaderPresent([dir]), true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('an explicit GPU device falls back to the CPU when asked to, and fails clearly when not', async () => {
    assert.equal(planProvider({ device: 'webgpu', fallbackToCpu: true }).fallbackToCpu, true)
    assert.equal(planProvider({ device: 'cuda' }).fallbackToCpu, false)
    const probes = await probeProviders()
    for (const device of ['cuda', 'webgpu'] as const) {
      if (probes.find((p) => p.provider === device)!.available) continue // a GPU machine: nothing to fall back from
      const s = await createSession(model, { device, fallbackToCpu: true })
      assert.equal(s.provider, 'cpu', device)
      await s.session.release()
      await assert.rejects(createSession(model, { device }), { code: 'EP_UNAVAILABLE' })
    }
  })
})
