// Runs an ONNX model with onnxruntime-web (WASM) in a worker thread, so that its backend
// registry (shared through onnxruntime-common) never replaces onnxruntime-node's in the tests.
import { parentPort, workerData } from 'node:worker_threads'
import * as ort from 'onnxruntime-web'

ort.env.wasm.numThreads = 1
const { model, feeds } = workerData
try {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] })
  const inputs = {}
  for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.type, t.data, t.dims)
  const out = await session.run(inputs)
  const outputs = {}
  for (const [name, t] of Object.entries(out))
    outputs[name] = { type: t.type, data: t.data, dims: [...t.dims] }
  const inputNames = [...session.inputNames]
  await session.release()
  parentPort.postMessage({ ok: true, outputs, inputNames })
} catch (err) {
  parentPort.postMessage({ ok: false, error: String(err?.stack ?? err) })
}
