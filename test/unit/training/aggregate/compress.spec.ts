import assert from 'node:assert/strict'
import { Rng } from '../../../../src/common/rng.js'
import {
  COMPRESSED_MAGIC,
  applyDelta,
  decodeCompressed,
  dequantizeInt8,
  encodeCompressed,
  quantizeInt8,
  readCompressedHeader,
  weightsDelta
} from '../../../../src/training/aggregate/index.js'
import { assertBitIdentical, gaussianModel, maxAbsDiff, type Model } from './helpers.js'

/** ~100k parameters in three tensors of different scales. */
function bigModel(seed: number): Model {
  const rng = new Rng(seed)
  const t = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => s * rng.gaussian())
  return new Map([
    ['dense0.weight', t(784 * 120, 0.05)],
    ['dense0.bias', t(120, 0.001)],
    ['dense2.weight', t(1200, 3)]
  ])
}

function expectDecodeFailure(bytes: Uint8Array, label: string): void {
  assert.throws(() => decodeCompressed(bytes), { code: 'UPDATE_DECODE_FAILED' }, label)
}

describe('aggregate: compression', () => {
  it('int8 round trip: error ≤ scale/2 per coordinate', () => {
    const model = bigModel(1)
    const q = quantizeInt8(model)
    const back = dequantizeInt8(q)
    let worst = 0
    for (const { name, scale, data } of q.tensors) {
      const x = model.get(name)!
      const y = back.get(name)!
      let max = 0
      for (const v of x) max = Math.max(max, Math.abs(v))
      assert.equal(scale, Math.fround(max / 127))
      assert.ok(data.every((v) => v >= -127 && v <= 127))
      for (let i = 0; i < x.length; i++) {
        const err = Math.abs(x[i]! - y[i]!)
        // scale/2 from rounding q, plus at most half a float32 ulp from rounding q·scale
        assert.ok(err <= scale / 2 + Math.abs(x[i]!) * 2 ** -24, `${name}[${i}]: ${err} > ${scale / 2}`)
        worst = Math.max(worst, err / (scale / 2))
      }
    }
    console.log(`      worst int8 error: ${worst.toFixed(6)} × scale/2`)
    assert.ok(worst > 0.9) // the bound is tight
  })

  it('int8 keeps zero tensors exact and rejects non-finite values', () => {
    const q = quantizeInt8(new Map([['z', new Float32Array(4)]]))
    assert.equal(q.tensors[0]!.scale, 0)
    assert.deepEqual([...dequantizeInt8(q).get('z')!], [0, 0, 0, 0])
    assert.throws(() => quantizeInt8(new Map([['x', Float32Array.of(1, NaN)]])), {
      code: 'UPDATE_NON_FINITE',
      fields: { param: 'x', index: 1 }
    })
    assert.throws(() => encodeCompressed(new Map([['x', Float32Array.of(-Infinity)]]), 'int8'), {
      code: 'UPDATE_NON_FINITE'
    })
  })

  it('int8 encoding is ~4× smaller and decodes to the dequantized values', () => {
    const model = bigModel(2)
    const int8 = encodeCompressed(model, 'int8')
    const none = encodeCompressed(model, 'none')
    const ratio = none.length / int8.length
    console.log(`      ${none.length} bytes float32 → ${int8.length} bytes int8 (${ratio.toFixed(3)}×)`)
    assert.ok(ratio > 3.95 && ratio <= 4)
    assertBitIdentical(decodeCompressed(int8), dequantizeInt8(quantizeInt8(model)))
    assertBitIdentical(decodeCompressed(none), new Map([...model].sort(([a], [b]) => (a < b ? -1 : 1))))
  })

  it('is canonical and carries shapes and scales in the header', () => {
    const a = gaussianModel(3)
    const b = new Map([...a].reverse())
    assert.deepEqual(encodeCompressed(a, 'int8'), encodeCompressed(b, 'int8'))
    const shapes = [
      { name: 'a', shape: [3, 4] },
      { name: 'b', shape: [5] }
    ]
    const header = readCompressedHeader(encodeCompressed(a, 'int8', shapes))
    assert.equal(header.kind, 'int8')
    assert.deepEqual(
      header.tensors.map((t) => t.shape),
      [[3, 4], [5]]
    )
    assert.deepEqual(
      header.tensors.map((t) => t.scale),
      quantizeInt8(a).tensors.map((t) => t.scale)
    )
    assert.equal(readCompressedHeader(encodeCompressed(a, 'none')).tensors[0]!.scale, undefined)
    assert.throws(() => encodeCompressed(a, 'int8', [{ name: 'a', shape: [5, 5] }]), {
      code: 'AGGREGATION_INVALID'
    })
    assert.throws(() => encodeCompressed(a, 'fp16' as 'none'), { code: 'AGGREGATION_INVALID' })
  })

  it('quantizing the delta against a base is more precise', () => {
    const base = bigModel(4)
    const rng = new Rng(5)
    const model = new Map([...base].map(([name, x]) => [name, x.map((v) => v + 0.001 * rng.gaussian())]))
    const delta = weightsDelta(model, base)
    const viaDelta = applyDelta(base, decodeCompressed(encodeCompressed(delta, 'int8')))
    const direct = decodeCompressed(encodeCompressed(model, 'int8'))
    const errDelta = maxAbsDiff(model, viaDelta)
    const errDirect = maxAbsDiff(model, direct)
    console.log(`      max error: delta ${errDelta.toExponential(2)}, direct ${errDirect.toExponential(2)}`)
    assert.ok(errDelta < errDirect / 10)
    assert.throws(() => weightsDelta(model, new Map([...base].slice(1))), { code: 'AGGREGATION_INVALID' })
    assert.throws(() => applyDelta(base, new Map([['x', new Float32Array(1)]])), {
      code: 'AGGREGATION_INVALID'
    })
  })

  it('rejects truncated input with UPDATE_DECODE_FAILED', () => {
    for (const kind of ['int8', 'none'] as const) {
      const bytes = encodeCompressed(gaussianModel(6), kind)
      decodeCompressed(bytes)
      for (let len = 0; len < bytes.length; len++)
        expectDecodeFailure(bytes.subarray(0, len), `${kind} ${len}`)
      const longer = new Uint8Array(bytes.length + 1)
      longer.set(bytes)
      expectDecodeFailure(longer, `${kind} + 1 byte`)
    }
  })

  it('rejects garbled input with UPDATE_DECODE_FAILED', () => {
    const good = encodeCompressed(gaussianModel(7), 'int8')
    const h = new DataView(good.buffer).getUint32(8, true)
    const garble = (f: (b: Uint8Array) => void): Uint8Array => {
      const b = good.slice()
      f(b)
      return b
    }
    const header = (text: string): Uint8Array => {
      const json = new TextEncoder().encode(text)
      const padded = new Uint8Array(Math.ceil((12 + json.length) / 4) * 4 - 12).fill(0x20)
      padded.set(json)
      const b = new Uint8Array(12 + padded.length)
      b.set(good.subarray(0, 8))
      new DataView(b.buffer).setUint32(8, padded.length, true)
      b.set(padded, 12)
      return b
    }
    const cases: Record<string, Uint8Array> = {
      magic: garble((b) => (b[0] = 0x58)),
      version: garble((b) => (b[4] = 2)),
      kind: garble((b) => (b[5] = 7)),
      reserved: garble((b) => (b[7] = 1)),
      'header length': garble((b) => new DataView(b.buffer).setUint32(8, 0xfffffff0, true)),
      'unaligned header length': garble((b) => new DataView(b.buffer).setUint32(8, h - 1, true)),
      'header not JSON': garble((b) => (b[12] = 0x7b + 1)),
      'header not UTF-8': garble((b) => (b[13] = 0xff)),
      'int8 value -128': garble((b) => (b[b.length - 1] = 0x80)),
      'no tensors list': header('{"t":[]}'),
      'duplicate names': header(
        '{"tensors":[{"name":"a","shape":[0],"scale":1},{"name":"a","shape":[0],"scale":1}]}'
      ),
      'unsorted names': header(
        '{"tensors":[{"name":"b","shape":[0],"scale":1},{"name":"a","shape":[0],"scale":1}]}'
      ),
      'bad shape': header('{"tensors":[{"name":"a","shape":[-1],"scale":1}]}'),
      'fractional dim': header('{"tensors":[{"name":"a","shape":[0.5],"scale":1}]}'),
      'missing scale': header('{"tensors":[{"name":"a","shape":[0]}]}'),
      'negative scale': header('{"tensors":[{"name":"a","shape":[0],"scale":-1}]}'),
      'non-float32 scale': header('{"tensors":[{"name":"a","shape":[0],"scale":0.1}]}'),
      'null header': header('null'),
      'huge shape': header('{"tensors":[{"name":"a","shape":[2147483647,2147483647,2147483647],"scale":1}]}')
    }
    for (const [label, bytes] of Object.entries(cases)) expectDecodeFailure(bytes, label)
    // an empty but well-formed update decodes
    assert.equal(
      decodeCompressed(header('{"tensors":[{"name":"a","shape":[0],"scale":1}]}')).get('a')!.length,
      0
    )
    const rng = new Rng(8)
    for (let i = 0; i < 200; i++) {
      expectDecodeFailure(
        Uint8Array.from({ length: rng.int(64) }, () => rng.int(256)),
        `random ${i}`
      )
    }
    expectDecodeFailure('SHCU' as unknown as Uint8Array, 'a string')
    assert.equal(COMPRESSED_MAGIC, 'SHCU')
  })
})
