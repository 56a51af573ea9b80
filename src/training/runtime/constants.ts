/** Default device: CUDA when its provider library is installed, else CPU. */
export const DEFAULT_DEVICE = 'auto'

/**
 * Default intra-op threads: 0 lets onnxruntime choose (one per physical core).
 * Deterministic mode always uses 1.
 */
export const DEFAULT_INTRA_OP_THREADS = 0

/** Default inter-op threads (only used with parallel execution; 0 = onnxruntime's choice). */
export const DEFAULT_INTER_OP_THREADS = 0

/** Default batch size of `Trainer.evaluate`. */
export const DEFAULT_EVAL_BATCH_SIZE = 500

/** onnxruntime-node's CUDA provider library; present only when installed with ONNXRUNTIME_NODE_INSTALL=cuda12. */
export const CUDA_PROVIDER_LIBRARY: Record<string, string> = {
  linux: 'libonnxruntime_providers_cuda.so',
  win32: 'onnxruntime_providers_cuda.dll'
}

/** onnxruntime's own log threshold for our sessions: 3 = errors only (its warnings go to stderr). */
export const ORT_LOG_SEVERITY = 3 as const
