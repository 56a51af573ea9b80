import assert from 'node:assert/strict'
import {
  WEIGHTS_MAGIC,
  decodeWeights,
  decodeWeightsEntries,
  encodeWeights,
  readWeightsHeader
} from '../../../../src/training/export/index.js'

function sample(): Map<string, Float32Array> {
  return new Map([
    ['w', Float32Array.from({ length: 6 }, (_, i) => i * 0.5 - 1)],
    ['b', Float32Array.of(1.5, -0, NaN)],
    ['a.long/name:with-symbols', Float32Array.of(Infinity)]
  ])
}

describe('training/export: weights format', () => {
  it('round-trips names, shapes and exact float bits', () => {
    const w = sample()
    const bytes = encodeWeights(w, new Map([['w', [2, 3]]]))
    const entries = decodeWeightsEntries(bytes)
    assert.deepEqual(
      entries.map((e) => [e.name, e.shape]),
      [
        ['a.long/name:with-symbols', [1]],
        ['b', [3]],
        ['w', [2, 3]]
      ]
    )
    const back = decodeWeights(bytes)
    for (const [k, v] of w) {
      const got = back.get(k)!
      assert.deepEqual(new Uint8Array(got.buffer), new Uint8Array(v.buffer), k)
    }
    assert.ok(Object.is(back.get('b')![1], -0))
  })

  it('has the documented layout and is deterministic', () => {
    const w = sample()
    const bytes = encodeWeights(w, [{ name: 'w', shape: [3, 2] }])
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), WEIGHTS_MAGIC)
    const h = new DataView(bytes.buffer).getUint32(8, true)
    assert.equal((12 + h) % 4, 0)
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + h)))
    assert.deepEqual(header.tensors[2], { name: 'w', shape: [3, 2] })
    assert.equal(bytes.length, 12 + h + 4 * 10)
    // the first stored value is the single value of the first tensor by name, little-endian
    assert.equal(new DataView(bytes.buffer).getFloat32(12 + h, true), Infinity)
    // insertion order does not matter
    const reversed = new Map([...w].reverse())
    assert.deepEqual(encodeWeights(reversed, [{ name: 'w', shape: [3, 2] }]), bytes)
    // views into larger buffers encode the same
    const big = new Float32Array(20)
    big.set(w.get('w')!, 7)
    assert.deepEqual(
      encodeWeights(new Map([...w, ['w', big.subarray(7, 13)]]), [{ name: 'w', shape: [3, 2] }]),
      bytes
    )
    assert.equal(readWeightsHeader(bytes).dataOffset, 12 + h)
    // decoding a view at an odd offset works
    const shifted = new Uint8Array(bytes.length + 1)
    shifted.set(bytes, 1)
    assert.deepEqual(decodeWeights(shifted.subarray(1)).get('w'), w.get('w'))
  })

  it('rejects malformed blobs and mismatched shapes', () => {
    const bytes = encodeWeights(sample())
    const bad = (b: Uint8Array): void =>
      assert.throws(() => decodeWeights(b), { code: 'WEIGHTS_FORMAT_INVALID' })
    bad(bytes.subarray(0, 5))
    bad(bytes.subarray(0, bytes.length - 4))
    bad(Uint8Array.from([...bytes, 0, 0, 0, 0]))
    const magic = bytes.slice()
    magic[0] = 0x41
    bad(magic)
    const len = bytes.slice()
    new DataView(len.buffer).setUint32(8, 1 << 30, true)
    bad(len)
    const json = bytes.slice()
    json[12] = 0x5b // '[' breaks the JSON object
    bad(json)
    const dup = new TextEncoder().encode('{"tensors":[{"name":"a","shape":[1]},{"name":"a","shape":[1]}]}')
    const blob = new Uint8Array(12 + 64 + 8)
    blob.set(new TextEncoder().encode(WEIGHTS_MAGIC))
    new DataView(blob.buffer).setUint32(8, 64, true)
    blob.fill(0x20, 12, 76)
    blob.set(dup, 12)
    bad(blob)
    assert.throws(() => encodeWeights(sample(), new Map([['w', [4, 2]]])), {
      code: 'WEIGHTS_FORMAT_INVALID'
    })
  })
})
