/**
 * Execution-provider selection and onnxruntime session creation.
 *
 * `auto` uses CUDA only when onnxruntime-node's CUDA provider library is installed (it is
 * downloaded by onnxruntime-node's installer with ONNXRUNTIME_NODE_INSTALL=cuda12) and falls
 * back to CPU if it fails to start; `cuda`/`webgpu` given explicitly fail loudly instead.
 * Deterministic mode pins CPU, one intra-op and one inter-op thread and sequential execution.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { logger } from '../../common/index.js'
import {
  CUDA_PROVIDER_LIBRARY,
  DEFAULT_INTER_OP_THREADS,
  DEFAULT_INTRA_OP_THREADS,
  ORT_LOG_SEVERITY
} from './constants.js'
import { ExecutionProviderError, TrainerOptionsError } from './errors.js'

const log = logger('shoal:training:runtime')

/** What a caller asks for. */
export type Device = 'auto' | 'cuda' | 'webgpu' | 'cpu'

/** What a session actually runs on. */
export type ExecutionProviderName = 'cuda' | 'webgpu' | 'cpu'

export interface SessionConfig {
  device?: Device
  /** Intra-op threads (0 = onnxruntime's default). Ignored (1) in deterministic mode. */
  intraOpNumThreads?: number
  /** Inter-op threads (0 = onnxruntime's default). Ignored (1) in deterministic mode. */
  interOpNumThreads?: number
  /** CPU, one thread, sequential execution, deterministic kernels: bit-reproducible runs. */
  deterministic?: boolean
  /**
   * Fall back to the CPU (with a warning that says why) when an explicitly requested `cuda` or
   * `webgpu` provider is missing or fails to start, instead of failing (what a node does: a
   * volunteer's failed GPU start must not stop it from training). `auto` always falls back.
   */
  fallbackToCpu?: boolean
}

/** A resolved plan: which provider to try, and whether to fall back to CPU on failure. */
export interface ProviderPlan {
  provider: ExecutionProviderName
  fallbackToCpu: boolean
  reason: string
}

const DEVICES: readonly Device[] = ['auto', 'cuda', 'webgpu', 'cpu']

/** The folder holding onnxruntime-node's native libraries for this platform. */
export function ortBinaryDir(): string {
  const require = createRequire(import.meta.url)
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'))
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch)
}

/** True when onnxruntime-node's CUDA provider library is present beside its binding. */
export function cudaProviderInstalled(dir: string = ortBinaryDir()): boolean {
  const lib = CUDA_PROVIDER_LIBRARY[process.platform]
  return lib !== undefined && existsSync(join(dir, lib))
}

/**
 * Decide which provider to use for a device request (no session is created).
 *
 * @throws {TrainerOptionsError} for an unknown device, or `deterministic` with a GPU device.
 */
export function planProvider(
  config: SessionConfig,
  cudaInstalled: boolean = cudaProviderInstalled()
): ProviderPlan {
  const device = config.device ?? 'auto'
  if (!DEVICES.includes(device)) {
    throw new TrainerOptionsError(`unknown device '${String(device)}' (expected ${DEVICES.join(', ')})`, {
      device
    })
  }
  if (config.deterministic === true) {
    if (device === 'cuda' || device === 'webgpu') {
      throw new TrainerOptionsError(`deterministic mode runs on CPU only; device '${device}' was requested`, {
        device
      })
    }
    return { provider: 'cpu', fallbackToCpu: false, reason: 'deterministic mode' }
  }
  if (device === 'cpu') return { provider: 'cpu', fallbackToCpu: false, reason: 'requested' }
  if (device === 'cuda' || device === 'webgpu')
    return { provider: device, fallbackToCpu: config.fallbackToCpu === true, reason: 'requested' }
  return cudaInstalled
    ? { provider: 'cuda', fallbackToCpu: true, reason: 'auto: CUDA provider library installed' }
    : { provider: 'cpu', fallbackToCpu: false, reason: 'auto: CUDA provider library not installed' }
}

function threads(value: number | undefined, fallback: number, what: string): number {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n < 0) {
    throw new TrainerOptionsError(`${what} must be a non-negative integer, got ${n}`, { [what]: n })
  }
  return n
}

/** The onnxruntime session options for a provider and config. */
export function sessionOptions(
  provider: ExecutionProviderName,
  config: SessionConfig
): ort.InferenceSession.SessionOptions {
  if (config.deterministic === true) {
    return {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: ORT_LOG_SEVERITY,
      extra: { session: { use_deterministic_compute: '1' } }
    }
  }
  const intra = threads(config.intraOpNumThreads, DEFAULT_INTRA_OP_THREADS, 'intraOpNumThreads')
  const inter = threads(config.interOpNumThreads, DEFAULT_INTER_OP_THREADS, 'interOpNumThreads')
  return {
    executionProviders: [provider],
    ...(intra > 0 ? { intraOpNumThreads: intra } : {}),
    ...(inter > 0 ? { interOpNumThreads: inter } : {}),
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: ORT_LOG_SEVERITY
  }
}

/**
 * Create an onnxruntime session for `model` on the provider the config asks for.
 *
 * @throws {ExecutionProviderError} `EP_UNAVAILABLE` when an explicitly requested `cuda` or
 *   `webgpu` provider is missing or fails to start.
 */
export async function createSession(
  model: Uint8Array,
  config: SessionConfig,
  plan: ProviderPlan = planProvider(config)
): Promise<{ session: ort.InferenceSession; provider: ExecutionProviderName }> {
  if (plan.provider === 'cuda' && !cudaProviderInstalled()) {
    const lib = CUDA_PROVIDER_LIBRARY[process.platform] ?? 'the CUDA provider library'
    if (plan.fallbackToCpu) {
      log.warn(
        { provider: 'cuda', reason: `${lib} not installed (ONNXRUNTIME_NODE_INSTALL=cuda12)` },
        'CUDA requested but its provider library is not installed; training on the CPU'
      )
      const session = await ort.InferenceSession.create(model, sessionOptions('cpu', config))
      return { session, provider: 'cpu' }
    }
    throw new ExecutionProviderError(
      `CUDA execution provider unavailable: ${lib} not found in ${ortBinaryDir()} ` +
        '(reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12, or use device "cpu" or "auto")',
      { device: 'cuda', reason: 'provider library not installed' }
    )
  }
  try {
    const session = await ort.InferenceSession.create(model, sessionOptions(plan.provider, config))
    return { session, provider: plan.provider }
  } catch (err) {
    if (plan.provider === 'cpu') throw err
    const reason = err instanceof Error ? err.message.split('\n')[0]! : String(err)
    if (plan.fallbackToCpu) {
      log.warn({ provider: plan.provider, reason }, 'execution provider failed to start; falling back to CPU')
      const session = await ort.InferenceSession.create(model, sessionOptions('cpu', config))
      return { session, provider: 'cpu' }
    }
    throw new ExecutionProviderError(
      `${plan.provider} execution provider unavailable: ${reason}`,
      { device: plan.provider, reason },
      { cause: err }
    )
  }
}
