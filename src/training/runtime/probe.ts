/**
 * Which execution providers work on this machine, and why the others do not: for `shoal id`
 * (`node_info.providers`) and for a volunteer wondering whether their GPU is used.
 *
 * Each provider is tried by creating a small session (a 784-128-10 MLP's inference graph), after
 * the cheap checks that explain the usual failures without touching native code: the CUDA
 * provider library missing (onnxruntime-node installs it only with ONNXRUNTIME_NODE_INSTALL=cuda12),
 * no Vulkan loader for WebGPU (Dawn needs libvulkan.so.1 and a Vulkan GPU driver).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { MODELS, compileModel } from '../graph/index.js'
import { CUDA_PROVIDER_LIBRARY } from './constants.js'
import {
  cudaProviderInstalled,
  ortBinaryDir,
  sessionOptions,
  type ExecutionProviderName
} from './providers.js'

/** Whether one provider works here. */
export interface ProviderProbe {
  provider: ExecutionProviderName
  available: boolean
  /** Why not (the first line of the error, or the missing piece), or what was checked. */
  detail: string
}

/** Folders the dynamic loader searches for libvulkan.so.1 on Linux (LD_LIBRARY_PATH first). */
function libraryDirs(): string[] {
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== '')
  return [
    ...fromEnv,
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/usr/lib64',
    '/usr/lib',
    '/lib64',
    '/lib'
  ]
}

/** True when a Vulkan loader is where the dynamic loader looks (Linux); true elsewhere (unknown). */
export function vulkanLoaderPresent(dirs: readonly string[] = libraryDirs()): boolean {
  if (process.platform !== 'linux') return true
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')))
}

const firstLine = (err: unknown): string => {
  const text = err instanceof Error ? err.message : String(err)
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text
  // onnxruntime prefixes source locations; keep what a person can act on.
  const at = line.lastIndexOf(' was false. ')
  return (at >= 0 ? line.slice(at + ' was false. '.length) : line).trim().slice(0, 300)
}

async function trySession(provider: ExecutionProviderName, model: Uint8Array): Promise<ProviderProbe> {
  try {
    const session = await ort.InferenceSession.create(model, sessionOptions(provider, { device: provider }))
    await session.release()
    return { provider, available: true, detail: 'a session started' }
  } catch (err) {
    return { provider, available: false, detail: firstLine(err) }
  }
}

let cached: Promise<ProviderProbe[]> | undefined

/**
 * Probe CPU, CUDA and WebGPU once per process (the result is cached: a failed GPU start is not
 * retried). Never throws.
 */
export async function probeProviders(): Promise<ProviderProbe[]> {
  cached ??= (async () => {
    const model = compileModel(MODELS.mlp, { type: 'sgd' }).inference
    const out: ProviderProbe[] = [await trySession('cpu', model)]
    if (!cudaProviderInstalled()) {
      const lib = CUDA_PROVIDER_LIBRARY[process.platform] ?? 'the CUDA provider library'
      out.push({
        provider: 'cuda',
        available: false,
        detail: `${lib} is not in ${ortBinaryDir()}: reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 (README, GPU support)`
      })
    } else {
      out.push(await trySession('cuda', model))
    }
    if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu')) {
      out.push({
        provider: 'webgpu',
        available: false,
        detail: 'this onnxruntime-node build has no WebGPU provider'
      })
    } else if (!vulkanLoaderPresent()) {
      out.push({
        provider: 'webgpu',
        available: false,
        detail: 'no Vulkan loader (libvulkan.so.1): install libvulkan1 and a Vulkan driver for the GPU'
      })
    } else {
      out.push(await trySession('webgpu', model))
    }
    return out
  })()
  return cached
}
