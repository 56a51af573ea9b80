/**
 * The GPU check bundle (scripts/gpu-check.ts), built and run here on the CPU: it fits the
 * device tool's 64 MiB, carries its own Node 22 and onnxruntime (nothing from this checkout or
 * the system Node is used), and its benchmark reports each provider — working or not, and why.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

interface Report {
  machine: { node: string }
  providers: Array<{ provider: string; available: boolean; detail: string }>
  results: Array<{
    model: string
    oneThreadSamplesPerSecond: number
    devices: Array<{
      device: string
      available: boolean
      ep?: string
      detail?: string
      samplesPerSecond?: number
      divergence?: Array<{ H: number; relDistance: number; withinBound: boolean | null }>
    }>
  }>
}

describe('gpu-check: a self-contained bundle for a GPU machine', function () {
  this.timeout(300_000)
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-gpu-check-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('builds within 64 MiB and runs with its own Node on the CPU, naming why GPU providers are unavailable', async () => {
    const bundle = join(dir, 'bundle')
    // A fast preset keeps the test short; the real bundle uses xz -6 (about 42 MiB).
    const built = await run(process.execPath, ['--import', 'tsx', 'scripts/gpu-check.ts'], {
      env: { ...process.env, GPU_BUNDLE_DIR: bundle, GPU_CHECK_XZ: '0', GPU_CHECK_VULKAN: '0' },
      maxBuffer: 8 * 1024 * 1024
    })
    const size = /bundle .*: ([\d.]+) MiB \(limit 64 MiB\)/.exec(built.stdout)
    assert.ok(size !== null, built.stdout)
    assert.ok(Number(size[1]) <= 64, `${size[1]} MiB`)
    assert.match(built.stdout, /run\(command="bash .*run\.sh", carry=\[/)

    const out = join(dir, 'out')
    const ran = await run('bash', [join(bundle, 'run.sh')], {
      // No Node on the PATH but the system's: the bundle must bring its own.
      env: {
        PATH: '/usr/bin:/bin',
        HOME: dir,
        OUT: out,
        GPU_CHECK_DEVICES: 'cpu-parallel,webgpu,cuda',
        GPU_CHECK_MODELS: 'mlp',
        GPU_CHECK_STEPS: '10',
        GPU_CHECK_H: '10'
      },
      maxBuffer: 8 * 1024 * 1024
    })
    assert.match(ran.stdout, /written to/)
    const report = JSON.parse(await readFile(join(out, 'gpu-check.json'), 'utf8')) as Report
    assert.match(report.machine.node, /^v22\./, 'the carried Node 22 ran it')
    assert.deepEqual(
      report.providers.map((p) => p.provider),
      ['cpu', 'cuda', 'webgpu']
    )
    const mlp = report.results[0]!
    assert.equal(mlp.model, 'mlp')
    assert.ok(mlp.oneThreadSamplesPerSecond > 0)
    const parallel = mlp.devices.find((d) => d.device === 'cpu-parallel')!
    assert.equal(parallel.available, true)
    assert.equal(parallel.ep, 'cpu-parallel')
    assert.ok(parallel.samplesPerSecond! > 0)
    assert.equal(parallel.divergence![0]!.withinBound, true, JSON.stringify(parallel.divergence))
    for (const gpu of ['webgpu', 'cuda']) {
      const d = mlp.devices.find((x) => x.device === gpu)!
      const probe = report.providers.find((p) => p.provider === gpu)!
      assert.equal(d.available, probe.available, gpu)
      if (!d.available) assert.ok(d.detail !== undefined && d.detail.length > 0, gpu)
    }
  })
})
