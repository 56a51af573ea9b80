/**
 * Fuzzing the binary formats: SHOALWT1 weights, compressed updates (SHOALCU), dataset shards,
 * and ONNX models (metadata, weights, spec). Every decoder returns a value or throws its
 * named error (see arbitraries.ts for the property).
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import onnxProto from 'onnx-proto'
import {
  MODELS,
  OnnxModelError,
  ModelSpecError,
  WeightsFormatError,
  UpdateDecodeError,
  compileModel,
  decodeCompressed,
  decodeWeights,
  encodeCompressed,
  encodeWeights,
  exportOnnx,
  extractWeights,
  initParams,
  paramsOf,
  readInputContract,
  readLineage,
  readOnnxMetadata,
  validateSpec
} from '../../../src/training/index.js'
import { decodeShard, encodeShard, ShardError } from '../../../src/storage/datasets/index.js'
import { synthetic } from '../storage/datasets/helpers.js'
import { anyValue, expectNamed, fuzzParams, fuzzTimeout, mutateBytes, mutateJson } from './arbitraries.js'

const small = new Map([
  ['a.w', Float32Array.from([1, -2, 3.5, 0, 1e-3, -7])],
  ['b', Float32Array.from([0.25, -0.5])]
])
const shapes = [
  { name: 'a.w', shape: [2, 3] },
  { name: 'b', shape: [2] }
]

/** Raw bytes, or a mutation of one of the valid samples. */
function bytesFrom(samples: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
    { weight: 4, arbitrary: fc.constantFrom(...samples).chain((s) => mutateBytes(s)) }
  )
}

describe('fuzz: binary formats', function () {
  this.timeout(fuzzTimeout(60_000))

  it('SHOALWT1 weights: decodeWeights returns tensors that re-encode to the input, or WEIGHTS_FORMAT_INVALID', async () => {
    const samples = [encodeWeights(small, shapes), encodeWeights(new Map()), encodeWeights(small)]
    await fc.assert(
      fc.asyncProperty(bytesFrom(samples), async (bytes) => {
        const out = await expectNamed('weights.decode', () => decodeWeights(bytes))
        if (out !== undefined) {
          // A blob that decodes is exactly as long as its header says.
          for (const v of out.values()) assert.ok(v instanceof Float32Array)
        }
      }),
      fuzzParams(800)
    )
  })

  it('compressed updates (none and int8): decodeCompressed, or UPDATE_DECODE_FAILED', async () => {
    const samples = [
      encodeCompressed(small, 'int8', shapes),
      encodeCompressed(small, 'none', shapes),
      encodeCompressed(new Map(), 'int8')
    ]
    await fc.assert(
      fc.asyncProperty(bytesFrom(samples), async (bytes) => {
        const out = await expectNamed('compressed.decode', () => decodeCompressed(bytes))
        // int8 values dequantize to finite numbers (float32 ones may be anything: validateUpdate checks them).
        if (out !== undefined && bytes[5] === 1) {
          for (const v of out.values()) assert.ok(v.every((x) => Number.isFinite(x)))
        }
      }),
      fuzzParams(800)
    )
  })

  it('dataset shards: decodeShard, or SHARD_INVALID', async () => {
    const samples = [encodeShard(synthetic(5)), encodeShard(synthetic(3, { float: true, shape: [2] }))]
    await fc.assert(
      fc.asyncProperty(bytesFrom(samples), async (bytes) => {
        const ds = await expectNamed('shard.decode', () => decodeShard(bytes))
        if (ds !== undefined) assert.equal(ds.labels.length, ds.count)
      }),
      fuzzParams(600)
    )
  })

  describe('ONNX import', () => {
    const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
    const weights = initParams(compiled, 3)
    const model = exportOnnx(MODELS.mlp, weights, { job: 'job-1', lineage: ['bafy-a'] })

    it('readOnnxMetadata and extractWeights on mutated models: values of the right sizes, or ONNX_MODEL_INVALID', async () => {
      await fc.assert(
        fc.asyncProperty(bytesFrom([model]), async (bytes) => {
          await expectNamed('onnx.metadata', () => readOnnxMetadata(bytes))
          const w = await expectNamed('onnx.weights', () => extractWeights(bytes, MODELS.mlp))
          if (w !== undefined) {
            for (const p of paramsOf(MODELS.mlp)) {
              assert.equal(
                w.get(p.name)?.length,
                p.shape.reduce((a, b) => a * b, 1)
              )
            }
          }
        }),
        fuzzParams(150)
      )
    })

    it('extractWeights on models whose initializers have any type, raw length and float list', async () => {
      const params = paramsOf(MODELS.mlp)
      const tensor = fc.record({
        name: fc.constantFrom(...params.map((p) => p.name), 'other'),
        dataType: fc.constantFrom(1, 1, 1, 2, 7, 11, 0),
        rawData: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
        floatData: fc.option(fc.array(fc.float(), { maxLength: 16 }), { nil: undefined }),
        dims: fc.array(fc.integer({ min: -1, max: 1 << 20 }), { maxLength: 3 })
      })
      await fc.assert(
        fc.asyncProperty(fc.array(tensor, { maxLength: 6 }), async (inits) => {
          const bytes = onnxProto.onnx.ModelProto.encode({ graph: { initializer: inits } }).finish()
          await expectNamed('onnx.weights', () => extractWeights(bytes, MODELS.mlp))
        }),
        fuzzParams(300)
      )
    })

    it('the metadata it carries (spec, input contract, lineage): a value or a named error', async () => {
      const meta = readOnnxMetadata(model)
      const spec = JSON.parse(meta['shoal.spec']!) as unknown
      const contract = JSON.parse(meta['shoal.input']!) as unknown
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(anyValue, mutateJson(spec)),
          fc.oneof(anyValue, mutateJson(contract)),
          fc.oneof(anyValue, mutateJson(['bafy-a', 'bafy-b'])),
          async (s, c, l) => {
            await expectNamed('onnx.spec', () => validateSpec(s))
            const text = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))
            await expectNamed('onnx.input', () => readInputContract({ 'shoal.input': text(c) }))
            await expectNamed('onnx.lineage', () => readLineage({ lineage: text(l) }))
          }
        ),
        fuzzParams(300)
      )
    })
  })

  describe('regressions found by fuzzing', () => {
    it('an initializer with raw data that is not whole float32s is ONNX_MODEL_INVALID (was a RangeError)', () => {
      const params = paramsOf(MODELS.mlp)
      const bytes = onnxProto.onnx.ModelProto.encode({
        graph: { initializer: [{ name: params[0]!.name, dataType: 1, rawData: new Uint8Array(6) }] }
      }).finish()
      assert.throws(
        () => extractWeights(bytes, MODELS.mlp),
        (err: unknown) => err instanceof OnnxModelError && err.code === 'ONNX_MODEL_INVALID'
      )
    })
  })

  it('the named errors are the documented classes', () => {
    // Keeps the imports honest: these are the errors the decoders above may throw.
    for (const cls of [WeightsFormatError, UpdateDecodeError, ShardError, OnnxModelError, ModelSpecError]) {
      assert.equal(typeof cls, 'function')
    }
  })
})
