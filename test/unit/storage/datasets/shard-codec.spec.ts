import assert from 'node:assert/strict'
import {
  decodeShard,
  decodeShardHeader,
  encodeShard,
  ShardError,
  datasetSubset,
  joinDatasets
} from '../../../../src/storage/datasets/index.js'
import { synthetic } from './helpers.js'

function shardFailure(fn: () => unknown, reason: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ShardError, `expected ShardError, got ${String(err)}`)
    assert.equal(err.code, 'SHARD_INVALID')
    assert.equal(err.fields.reason, reason)
    return true
  })
}

describe('datasets: shard codec', () => {
  const ds = synthetic(40, { shape: [2, 3], classes: 5, seed: 3 })
  const idx = [3, 0, 39, 17, 17, 8]

  it('round-trips uint8 and float32 shards', () => {
    const bytes = encodeShard(ds, idx)
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'SHRD')
    assert.equal(bytes[4], 1)
    assert.deepEqual(decodeShard(bytes), datasetSubset(ds, idx))
    assert.deepEqual(decodeShardHeader(bytes), { count: 6, shape: [2, 3], dtype: 'uint8', classes: 5 })

    const f = synthetic(10, { shape: [4], float: true, classes: 3 })
    const back = decodeShard(encodeShard(f))
    assert.ok(back.features instanceof Float32Array)
    assert.deepEqual(back, f)
    // Decoding does not alias the input bytes.
    const again = encodeShard(f)
    const view = decodeShard(again)
    again.fill(0)
    assert.deepEqual(view, f)
  })

  it('refuses truncated, extended, corrupted and foreign bytes with SHARD_INVALID', () => {
    const bytes = encodeShard(ds, idx)
    shardFailure(() => decodeShard(bytes.subarray(0, bytes.length - 1)), 'truncated')
    shardFailure(() => decodeShard(bytes.subarray(0, 20)), 'truncated')
    shardFailure(() => decodeShard(new Uint8Array(0)), 'truncated')
    const longer = new Uint8Array(bytes.length + 1)
    longer.set(bytes)
    shardFailure(() => decodeShard(longer), 'length')

    const flip = (at: number): Uint8Array => {
      const b = Uint8Array.from(bytes)
      b[at]! ^= 0x01
      return b
    }
    shardFailure(() => decodeShard(flip(0)), 'magic')
    shardFailure(() => decodeShard(flip(4)), 'version')
    shardFailure(() => decodeShard(flip(bytes.length - 10)), 'checksum') // a feature byte
    shardFailure(() => decodeShard(flip(bytes.length - 40)), 'checksum')
    const headerLen = new DataView(bytes.buffer).getUint32(8)
    shardFailure(() => decodeShard(flip(12 + 1)), 'header') // garbled JSON
    const badLen = Uint8Array.from(bytes)
    new DataView(badLen.buffer).setUint32(8, headerLen + 4)
    shardFailure(() => decodeShard(badLen), 'header')
  })

  it('joins shards back into the dataset they were cut from, and refuses mismatched ones', () => {
    const parts = [datasetSubset(ds, [0, 1, 2]), datasetSubset(ds, [3, 4]), datasetSubset(ds, [5])]
    assert.deepEqual(joinDatasets(parts), datasetSubset(ds, [0, 1, 2, 3, 4, 5]))
    const f = synthetic(3, { shape: [6], float: true, classes: 5 })
    assert.throws(
      () => joinDatasets([parts[0]!, f]),
      /cannot join a float32 \[6\] dataset to a uint8 \[2, 3\] one/
    )
    assert.throws(() => joinDatasets([]), /nothing to join/)
  })
})
