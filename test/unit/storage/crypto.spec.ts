import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Rng } from '../../../src/common/rng.js'
import {
  ChunkCipher,
  DecryptCore,
  EncryptCore,
  StreamDecryptor,
  StreamEncryptor,
  assertKeyCommitment,
  chunkCount,
  keyCommitment,
  sealedLength,
  type AeadAlgorithm,
  type StreamParams
} from '../../../src/storage/crypto.js'
import { TAG_BYTES } from '../../../src/storage/constants.js'

const CS = 4096

function bytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = rng.nextUint32() & 0xff
  return b
}

/** Split `data` into pieces of random sizes (1…max), as a stream would deliver them. */
function pieces(rng: Rng, data: Uint8Array, max: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let o = 0
  while (o < data.byteLength) {
    const n = 1 + rng.int(max)
    out.push(data.subarray(o, o + n))
    o += n
  }
  return out
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const b of it) out.push(b)
  return out
}

function concat(list: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(list))
}

async function seal(
  key: Uint8Array,
  params: StreamParams,
  data: Uint8Array,
  rng: Rng
): Promise<{ chunks: Uint8Array[]; length: number; sha256: Uint8Array }> {
  const enc = new StreamEncryptor(key, params)
  const chunks = await collect(enc.encrypt(pieces(rng, data, 3 * params.chunkSize)))
  return { chunks, ...enc.digest() }
}

/** Decrypt, returning what was yielded and the error (if any). */
async function open(
  key: Uint8Array,
  params: StreamParams,
  expected: { length: number; sha256: Uint8Array },
  source: Uint8Array[]
): Promise<{ out: Uint8Array; err: unknown }> {
  const got: Uint8Array[] = []
  try {
    for await (const b of new StreamDecryptor(key, params, expected).decrypt(source)) got.push(b)
    return { out: concat(got), err: undefined }
  } catch (err) {
    return { out: concat(got), err }
  }
}

function isPrefix(prefix: Uint8Array, of: Uint8Array): boolean {
  return prefix.byteLength <= of.byteLength && Buffer.from(of.subarray(0, prefix.byteLength)).equals(prefix)
}

describe('storage/crypto (chunked STREAM AEAD)', () => {
  const rng = new Rng(7)
  const key = bytes(rng, 32)

  for (const algorithm of ['AES-256-GCM', 'CHACHA20-POLY1305'] as AeadAlgorithm[]) {
    const params: StreamParams = { algorithm, chunkSize: CS }
    for (const size of [0, 1, CS - 1, CS, CS + 1, 2 * CS, 5 * CS + 77]) {
      it(`${algorithm}: round trip of ${size} bytes in random pieces`, async () => {
        const data = bytes(rng, size)
        const { chunks, length, sha256 } = await seal(key, params, data, rng)
        assert.equal(length, size)
        assert.deepEqual(sha256, new Uint8Array(createHash('sha256').update(data).digest()))
        assert.equal(chunks.length, chunkCount(size, CS))
        const sealed = concat(chunks)
        assert.equal(sealed.byteLength, sealedLength(size, CS))
        for (const [i, c] of chunks.entries()) {
          const expect = i < chunks.length - 1 ? CS + TAG_BYTES : size - (chunks.length - 1) * CS + TAG_BYTES
          assert.equal(c.byteLength, expect)
        }
        // Re-cut the ciphertext into random pieces: framing must not depend on the source.
        const { out, err } = await open(key, params, { length, sha256 }, pieces(rng, sealed, 2 * CS))
        assert.equal(err, undefined)
        assert.deepEqual(out, data)
      })
    }
  }

  describe('tampering', () => {
    const params: StreamParams = { algorithm: 'AES-256-GCM', chunkSize: CS }
    const data = bytes(new Rng(11), 4 * CS + 100)
    let sealed: { chunks: Uint8Array[]; length: number; sha256: Uint8Array }

    before(async () => {
      sealed = await seal(key, params, data, new Rng(12))
    })

    async function expectIntegrity(
      source: Uint8Array[],
      expected = { length: sealed.length, sha256: sealed.sha256 },
      p = params,
      k = key
    ): Promise<void> {
      const { out, err } = await open(k, p, expected, source)
      assert.equal((err as { code?: string } | undefined)?.code, 'INTEGRITY', String(err))
      assert.ok(isPrefix(out, data), 'only verified bytes of the original may be yielded')
    }

    it('flipped bit in any chunk', async () => {
      for (let i = 0; i < sealed.chunks.length; i++) {
        const chunks = sealed.chunks.map((c) => new Uint8Array(c))
        chunks[i]![rng.int(chunks[i]!.byteLength)]! ^= 0x01
        await expectIntegrity(chunks)
      }
    })

    it('truncation: drop the last chunk (with and without fixing the length)', async () => {
      const dropped = sealed.chunks.slice(0, -1)
      await expectIntegrity(dropped)
      await expectIntegrity(dropped, { length: 4 * CS, sha256: sealed.sha256 })
      // Cut in the middle of a chunk.
      const cut = concat(sealed.chunks).subarray(0, 2 * CS + 5)
      await expectIntegrity([cut])
    })

    it('reordered, duplicated and appended chunks', async () => {
      const c = sealed.chunks
      await expectIntegrity([c[1]!, c[0]!, ...c.slice(2)])
      await expectIntegrity([c[0]!, c[0]!, ...c.slice(2)])
      await expectIntegrity([...c, c[c.length - 1]!])
      await expectIntegrity([...c, new Uint8Array([0])])
    })

    it('wrong length or hash in the envelope', async () => {
      await expectIntegrity(sealed.chunks, { length: sealed.length + 1, sha256: sealed.sha256 })
      await expectIntegrity(sealed.chunks, { length: sealed.length - 1, sha256: sealed.sha256 })
      const badHash = new Uint8Array(sealed.sha256)
      badHash[0]! ^= 0xff
      const { out, err } = await open(key, params, { length: sealed.length, sha256: badHash }, sealed.chunks)
      assert.equal((err as { code?: string }).code, 'INTEGRITY')
      // Every chunk verified, so all bytes were yielded before the final hash check failed.
      assert.deepEqual(out, data)
    })

    it('wrong chunk size, algorithm or key', async () => {
      await expectIntegrity(sealed.chunks, undefined, { algorithm: 'AES-256-GCM', chunkSize: CS * 2 })
      await expectIntegrity(sealed.chunks, undefined, { algorithm: 'CHACHA20-POLY1305', chunkSize: CS })
      await expectIntegrity(sealed.chunks, undefined, params, bytes(rng, 32))
    })

    it('a chunk from another object with the same key is rejected (final flag, length)', async () => {
      const other = await seal(key, params, bytes(rng, CS + 100), new Rng(3))
      // Splice the other object's final chunk in as ours.
      await expectIntegrity([...sealed.chunks.slice(0, -1), other.chunks[1]!])
    })
  })

  it('push keeps no reference to its argument (a source may reuse one buffer)', () => {
    const params: StreamParams = { algorithm: 'AES-256-GCM', chunkSize: CS }
    const data = bytes(new Rng(21), 3 * CS + 500)
    const scratch = new Uint8Array(1000)
    const enc = new EncryptCore(key, params)
    const sealed: Uint8Array[] = []
    for (let o = 0; o < data.byteLength; o += scratch.byteLength) {
      const n = Math.min(scratch.byteLength, data.byteLength - o)
      scratch.set(data.subarray(o, o + n))
      sealed.push(...enc.push(scratch.subarray(0, n)))
      scratch.fill(0xee)
    }
    const fin = enc.finish()
    sealed.push(fin.sealed)
    const all = concat(sealed)
    const dec = new DecryptCore(key, params, fin.digest)
    const out: Uint8Array[] = []
    for (let o = 0; o < all.byteLength; o += scratch.byteLength) {
      const n = Math.min(scratch.byteLength, all.byteLength - o)
      scratch.set(all.subarray(o, o + n))
      out.push(...dec.push(scratch.subarray(0, n)).map((p) => new Uint8Array(p)))
      scratch.fill(0xee)
    }
    dec.finish()
    assert.deepEqual(concat(out), data)
  })

  it('key commitment accepts the right key and refuses another', () => {
    const c = keyCommitment(key)
    assertKeyCommitment(key, c)
    assert.throws(() => assertKeyCommitment(bytes(rng, 32), c), { code: 'NOT_AUTHORIZED' })
    assert.throws(() => assertKeyCommitment(bytes(rng, 16), c), { code: 'NOT_AUTHORIZED' })
  })

  it('nonce and AAD encode index, final flag and length', () => {
    const c = new ChunkCipher(key, { algorithm: 'AES-256-GCM', chunkSize: CS })
    assert.equal(c.nonce(0x1_0000_0002, true).toString('hex'), '000000' + '0000000100000002' + '01')
    assert.equal(c.nonce(3, false).toString('hex'), '000000' + '0000000000000003' + '00')
    const aad = c.aad(1, true, 2 ** 40 + 5)
    assert.equal(aad.subarray(0, 15).toString(), 'shoal/stream/v1')
    assert.equal(
      aad.subarray(15).toString('hex'),
      '00001000' + '0000000000000001' + '01' + '0000010000000005'
    )
    assert.equal(c.aad(1, false, 99).subarray(27).toString('hex'), '00' + '0000000000000000')
  })

  it('rejects out-of-range parameters', () => {
    assert.throws(() => new ChunkCipher(key, { algorithm: 'AES-256-GCM', chunkSize: 10 }), {
      code: 'INVALID_PARAMETERS'
    })
    assert.throws(() => new ChunkCipher(key.subarray(1), { algorithm: 'AES-256-GCM', chunkSize: CS }), {
      code: 'INVALID_PARAMETERS'
    })
    assert.throws(() => new ChunkCipher(key, { algorithm: 'ROT13' as AeadAlgorithm, chunkSize: CS }), {
      code: 'INVALID_PARAMETERS'
    })
  })
})
