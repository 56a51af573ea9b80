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

/**
 * Accuracy of an exported classifier in onnxruntime-web on digits as they come: pixels / 255,
 * in [0, 1], nothing else — the input contract an export promises (`shoal.input`).
 */
export async function rawDigitAccuracy(
  model: Uint8Array,
  set: { images: Uint8Array; labels: Uint8Array | number[]; count: number },
  shape: number[]
): Promise<number> {
  const size = shape.reduce((a, b) => a * b, 1)
  const x = new Float32Array(set.count * size)
  for (let i = 0; i < x.length; i++) x[i] = set.images[i]! / 255
  const { outputs } = await runOrtWeb(model, { x: { type: 'float32', data: x, dims: [set.count, ...shape] } })
  const logits = outputs.logits!.data as Float32Array
  const classes = logits.length / set.count
  let correct = 0
  for (let i = 0; i < set.count; i++) {
    let best = 0
    for (let k = 1; k < classes; k++) if (logits[i * classes + k]! > logits[i * classes + best]!) best = k
    if (best === Number(set.labels[i])) correct++
  }
  return correct / set.count
}
