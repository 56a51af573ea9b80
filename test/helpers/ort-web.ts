/**
 * Run a model in onnxruntime-web (WASM) — an independent ONNX runtime — inside a worker thread.
 * Importing onnxruntime-web in the test process itself would register its `cpu` backend in the
 * onnxruntime-common registry that onnxruntime-node also uses, and later sessions of the
 * process would silently run on WASM.
 */
import { Worker } from 'node:worker_threads'

export interface WebTensor {
  type: 'float32' | 'int64'
  data: Float32Array | BigInt64Array
  dims: number[]
}

export interface WebRun {
  outputs: Record<string, { type: string; data: Float32Array | BigInt64Array; dims: number[] }>
  inputNames: string[]
}

export async function runOrtWeb(model: Uint8Array, feeds: Record<string, WebTensor>): Promise<WebRun> {
  const worker = new Worker(new URL('./ort-web-worker.mjs', import.meta.url), {
    workerData: { model, feeds }
  })
  try {
    const msg = await new Promise<{ ok: boolean; error?: string } & Partial<WebRun>>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    if (!msg.ok) throw new Error(`onnxruntime-web failed: ${msg.error}`)
    return { outputs: msg.outputs!, inputNames: msg.inputNames! }
  } finally {
    await worker.terminate()
  }
}
